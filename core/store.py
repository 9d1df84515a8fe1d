"""Run store: a SQLite index (WAL) plus one artifact folder per finished run.

A run counts as stored only when its index row exists, and the row is committed only after the
folder has been renamed into place. A crash at any point therefore leaves at most an orphan folder
(cleaned up later), never a run that looks finished. Writers serialise on SQLite's write lock
(BEGIN IMMEDIATE), so processes saving the same run at once end with exactly one.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import uuid
from pathlib import Path

import numpy as np

from core.config import RunConfig
from core.results import RunResult

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    created_at REAL NOT NULL,
    dataset TEXT NOT NULL,
    architecture TEXT NOT NULL,
    params INTEGER NOT NULL,
    epochs INTEGER NOT NULL,
    test_accuracy REAL NOT NULL,
    test_loss REAL NOT NULL,
    train_seconds REAL NOT NULL,
    images_per_second REAL NOT NULL,
    device TEXT NOT NULL,
    data_source TEXT NOT NULL,
    train_size INTEGER NOT NULL,
    config_json TEXT NOT NULL
)
"""
MODEL_FILE = "model.keras"
RESULT_FILE = "result.json"
CONFIG_FILE = "config.json"
PREDICTIONS_FILE = "test_probabilities.npy"


def default_home() -> Path:
    """PLAYGROUND_HOME, else a folder in the user's cache directory."""
    if os.environ.get("PLAYGROUND_HOME"):
        return Path(os.environ["PLAYGROUND_HOME"]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "dl-playground"


class RunStore:
    def __init__(self, home: str | Path | None = None) -> None:
        self.home = Path(home) if home is not None else default_home()
        self.runs_dir = self.home / "runs"
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        self.index_path = self.home / "index.sqlite"
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(SCHEMA)
        self._remove_abandoned()

    def __repr__(self) -> str:
        return f"RunStore({str(self.home)!r})"

    def _connect(self) -> sqlite3.Connection:
        # One short-lived connection per operation: safe from any thread and any process.
        db = sqlite3.connect(self.index_path, timeout=60, isolation_level=None)
        db.row_factory = sqlite3.Row
        return db

    def run_dir(self, run_id: str) -> Path:
        return self.runs_dir / run_id

    # ------------------------------------------------------------------ writing
    def save(self, result: RunResult, model, evaluation) -> RunResult:
        """Store a finished run atomically. If the run is already stored, keep the first one."""
        assert result.status == "finished", "only finished runs are stored"
        staging = self.runs_dir / f".tmp-{result.run_id}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        staging.mkdir()
        try:
            model.save(staging / MODEL_FILE)
            np.save(staging / PREDICTIONS_FILE, evaluation.probabilities.astype(np.float16))
            (staging / CONFIG_FILE).write_text(result.config.to_json())
            record = {**result.summary(), "cached": False}
            record.update(history=result.history, confusion=result.confusion)
            (staging / RESULT_FILE).write_text(json.dumps(record, indent=1))
            _fsync_dir(staging)
            db = self._connect()
            try:
                db.execute("BEGIN IMMEDIATE")
                row = db.execute("SELECT 1 FROM runs WHERE run_id = ?", (result.run_id,)).fetchone()
                final = self.run_dir(result.run_id)
                if row is not None and final.exists():
                    db.execute("ROLLBACK")
                    return self.get(result.run_id) or result
                if final.exists():  # orphan of a crashed save: never indexed, safe to replace
                    _discard(final, self.runs_dir)
                os.rename(staging, final)
                db.execute("DELETE FROM runs WHERE run_id = ?", (result.run_id,))
                db.execute(
                    "INSERT INTO runs VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        result.run_id,
                        result.created_at,
                        result.config.dataset,
                        result.config.describe(),
                        result.params,
                        result.epochs_trained,
                        result.test_accuracy,
                        result.test_loss,
                        result.train_seconds,
                        result.images_per_second,
                        result.device,
                        result.data_source,
                        result.train_size,
                        result.config.to_json(),
                    ),
                )
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
            finally:
                db.close()
            return result
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)

    def delete(self, run_id: str) -> bool:
        """Remove a run: the index row first (it stops counting), then its folder."""
        with self._connect() as db:
            deleted = db.execute("DELETE FROM runs WHERE run_id = ?", (run_id,)).rowcount
        folder = self.run_dir(run_id)
        if folder.exists():
            _discard(folder, self.runs_dir)
        return bool(deleted)

    # ------------------------------------------------------------------ reading
    def get(self, run_id: str) -> RunResult | None:
        """The stored run with this id, marked cached; None if absent or incomplete."""
        with self._connect() as db:
            row = db.execute("SELECT 1 FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        folder = self.run_dir(run_id)
        if row is None or not (folder / RESULT_FILE).exists():
            return None
        record = json.loads((folder / RESULT_FILE).read_text())
        config = RunConfig.from_json((folder / CONFIG_FILE).read_text())
        fields = set(RunResult.__dataclass_fields__) - {"config", "cached"}
        result = RunResult(
            config=config, cached=True, **{k: record[k] for k in fields if k in record}
        )
        return result

    def list_runs(self) -> list[dict]:
        """Index rows of every stored run, newest first, as plain dicts (no TensorFlow needed)."""
        with self._connect() as db:
            rows = db.execute("SELECT * FROM runs ORDER BY created_at DESC").fetchall()
        return [dict(row) for row in rows]

    def run_ids(self) -> list[str]:
        return [row["run_id"] for row in self.list_runs()]

    def model_path(self, run_id: str) -> Path:
        return self.run_dir(run_id) / MODEL_FILE

    def load_model(self, run_id: str):
        """The trained Keras model of a stored run (imports Keras)."""
        from core.model import keras  # sets the backend before Keras loads

        path = self.model_path(run_id)
        if self.get(run_id) is None or not path.exists():
            raise KeyError(f"No stored run '{run_id}'.")
        return keras.saving.load_model(path)

    def load_probabilities(self, run_id: str) -> np.ndarray:
        """The stored test-set softmax outputs of a run, float32 (n_test, classes)."""
        return np.load(self.run_dir(run_id) / PREDICTIONS_FILE).astype(np.float32)

    # ------------------------------------------------------------------ housekeeping
    def _remove_abandoned(self) -> None:
        """Delete staging folders whose writer process no longer exists (killed mid-save)."""
        for path in self.runs_dir.glob(".tmp-*"):
            try:
                pid = int(path.name.split("-")[2])
            except (IndexError, ValueError):
                continue
            if not _alive(pid):
                shutil.rmtree(path, ignore_errors=True)
        for path in self.runs_dir.glob(".trash-*"):
            shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _discard(folder: Path, parent: Path) -> None:
    # Rename first so the name is free at once; the slow delete can then fail harmlessly.
    trash = parent / f".trash-{folder.name}-{uuid.uuid4().hex[:8]}"
    os.rename(folder, trash)
    shutil.rmtree(trash, ignore_errors=True)


def _fsync_dir(folder: Path) -> None:
    for path in folder.iterdir():
        with open(path, "rb") as f:
            os.fsync(f.fileno())
