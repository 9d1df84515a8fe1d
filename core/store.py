"""Run store: a SQLite index (WAL) plus one artifact folder per finished run.

A run counts as stored only when its index row exists, and the row is committed only after the
folder has been renamed into place. A crash at any point therefore leaves at most an orphan folder
(cleaned up later), never a run that looks finished. Writers serialise on SQLite's write lock
(BEGIN IMMEDIATE), so processes saving the same run at once end with exactly one. A forced retrain
(`save(..., replace=True)`) swaps the new folder in with one rename(2) exchange and replaces the row
in the same transaction, so a reader sees the old run or the new one, never half of each.

Damage is answered in sentences: every read turns a damaged store into StoreError, one sentence
naming the run and the file. The index holds nothing that the run folders do not (every column
comes from result.json, config.json and the folder's size), so a garbage index.sqlite is moved
aside to index.sqlite.damaged-<time> and rebuilt from the folders instead of refusing: refusing
would lock a person out of runs that are intact on disk, and the garbage stays for inspection.
A damaged run folder spoils only that run: list_runs keeps listing it (its row's "damage" says
what is missing) and the other runs stay usable.

A store whose folder this process may not write (or one opened with read_only=True) is opened with
a read-only SQLite URI: it can be read, skips the clean-up of abandoned folders, and refuses
writes with a sentence. Being unable to rebuild, it refuses a damaged index with a sentence too.

Limits. A model file over the per-run cap (PLAYGROUND_MAX_MODEL_MB, default 200) is refused with
a sentence and nothing is stored. When a new run would take the store over its limit
(PLAYGROUND_STORE_LIMIT_GB, default 5), the least recently used runs are evicted until it fits;
"used" means saved or read with get(), kept in the used_at column. Evicting rather than refusing,
because a run is reproducible from its config (seeded), so the store is a cache of training time:
refusing would throw away the run that was just trained and send the person off to clean up by
hand. A single run larger than the whole limit is refused. Constructor arguments override the
environment, so tests can use limits of a few kilobytes.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import shutil
import sqlite3
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote

import numpy as np

from core.errors import PlaygroundError
from core.files import (
    discard,
    discard_quietly,
    folder_size,
    format_size,
    fsync_folder,
    process_alive,
    swap_in,
)
from core.home import default_home, limit_text
from core.spec.config import RunConfig
from core.spec.results import RunResult
from core.store_index import (
    ADDED_COLUMNS,
    ROW_DEFAULTS,
    SCHEMA,
    insert_statement,
    is_garbage,
    row_of,
)

INDEX_FILE = "index.sqlite"
MODEL_FILE = "model.keras"
RESULT_FILE = "result.json"
CONFIG_FILE = "config.json"
PREDICTIONS_FILE = "test_probabilities.npy"
RUN_FILES = (RESULT_FILE, CONFIG_FILE, MODEL_FILE, PREDICTIONS_FILE)

DEFAULT_LIMIT_GB = 5.0
DEFAULT_MAX_MODEL_MB = 200.0
# get() rewrites used_at at most this often per run: every page rerun reads runs, and a write per
# read would queue readers behind SQLite's single write lock for an eviction hint.
USE_RESOLUTION_S = 60.0

T = TypeVar("T")


class StoreError(PlaygroundError):
    """The store cannot do what was asked; the message is one sentence for the person."""


class RunStore:
    """The runs stored under `home`.

    read_only: None decides from the folder's permissions; True opens it for reading only.
    limit_bytes, max_model_bytes: override PLAYGROUND_STORE_LIMIT_GB / PLAYGROUND_MAX_MODEL_MB.
    Raises StoreError when `home` cannot be a store (a file, or a folder that cannot be made).
    """

    def __init__(
        self,
        home: str | Path | None = None,
        *,
        read_only: bool | None = None,
        limit_bytes: int | None = None,
        max_model_bytes: int | None = None,
    ) -> None:
        self.home = Path(home) if home is not None else default_home()
        self.runs_dir = self.home / "runs"
        self.index_path = self.home / INDEX_FILE
        self.limit_bytes = (
            limit_bytes
            if limit_bytes is not None
            else round(_env_number("PLAYGROUND_STORE_LIMIT_GB", DEFAULT_LIMIT_GB, "GB") * 1e9)
        )
        self.max_model_bytes = (
            max_model_bytes
            if max_model_bytes is not None
            else round(_env_number("PLAYGROUND_MAX_MODEL_MB", DEFAULT_MAX_MODEL_MB, "MB") * 1e6)
        )
        self.notice = ""  # a sentence about something the store repaired on its own
        _check_folder(self.home)
        self.read_only = read_only if read_only is not None else not self._may_write()
        if self.read_only:
            return  # nothing to create, migrate or clean: a reader takes the store as it is
        try:
            self.runs_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"The run store folder {self.home} cannot be created ({exc.strerror}); "
                "point PLAYGROUND_HOME at a folder you may write."
            ) from None
        self._index(self._prepare)
        self._remove_abandoned()

    def __repr__(self) -> str:
        return f"RunStore({str(self.home)!r})"

    def run_dir(self, run_id: str) -> Path:
        return self.runs_dir / run_id

    def model_path(self, run_id: str) -> Path:
        return self.run_dir(run_id) / MODEL_FILE

    # ------------------------------------------------------------------ the index
    def _may_write(self) -> bool:
        existing = self.home
        while not existing.exists():
            existing = existing.parent
        paths = [existing] + [p for p in (self.runs_dir, self.index_path) if p.exists()]
        return all(os.access(p, os.W_OK) for p in paths)

    def _connect(self, timeout: float = 60) -> sqlite3.Connection:
        # One short-lived connection per operation, always closed: safe from any thread and any
        # process, and no file handle outlives the operation.
        if self.read_only:
            uri = f"file:{quote(str(self.index_path))}?mode=ro"
            wal_files = [self.index_path.with_name(INDEX_FILE + s) for s in ("-wal", "-shm")]
            if not os.access(self.home, os.W_OK) and not all(p.exists() for p in wal_files):
                # SQLite cannot make the WAL's shared-memory file in a folder it may not write;
                # nobody writes there either, so the file may be read as immutable.
                uri += "&immutable=1"
            db = sqlite3.connect(uri, uri=True, timeout=timeout, isolation_level=None)
        else:
            db = sqlite3.connect(self.index_path, timeout=timeout, isolation_level=None)
        db.row_factory = sqlite3.Row
        return db

    def _index(self, work: Callable[[sqlite3.Connection], T], empty: T = None) -> T:
        """Run `work` on a fresh connection, closed afterwards; damage becomes StoreError.

        A garbage index is rebuilt from the run folders once, then `work` runs again.
        `empty` is the answer of a read-only store that has no index file yet.
        """
        if self.read_only and not self.index_path.exists():
            return empty
        for attempt in (1, 2):
            try:
                with contextlib.closing(self._connect()) as db:
                    return work(db)
            except sqlite3.DatabaseError as exc:
                if attempt == 1 and is_garbage(exc) and not self.read_only:
                    try:
                        self._rebuild_index()
                    except (OSError, sqlite3.Error) as again:
                        raise StoreError(
                            f"The run index {self.index_path} is damaged ({exc}) and could not "
                            f"be rebuilt ({again}); delete it to start an empty index."
                        ) from None
                    continue
                raise StoreError(self._index_sentence(exc)) from exc
        raise AssertionError("unreachable")

    def _index_sentence(self, exc: sqlite3.DatabaseError) -> str:
        where = self.index_path
        if is_garbage(exc) and self.read_only:
            return (
                f"The run index {where} is damaged ({exc}) and this store is read-only, so it "
                "cannot be rebuilt; make the folder writable or delete the file."
            )
        if is_garbage(exc):
            return f"The run index {where} is still damaged ({exc}) after a rebuild; delete it."
        if "locked" in str(exc) or "busy" in str(exc):
            return f"The run index {where} is busy (another process is writing); try again."
        if "unable to open" in str(exc):
            return f"The run index {where} cannot be opened ({exc}); check the folder's rights."
        if "readonly" in str(exc) or "read-only" in str(exc):
            return f"The run index {where} is read-only ({exc}); nothing can be stored there."
        return f"The run index {where} could not be used ({exc})."

    def _prepare(self, db: sqlite3.Connection) -> None:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(SCHEMA)
        db.execute("BEGIN IMMEDIATE")  # two processes opening an old index migrate it once
        try:
            present = {row["name"] for row in db.execute("PRAGMA table_info(runs)")}
            for name, declaration in ADDED_COLUMNS.items():
                if name not in present:
                    db.execute(f"ALTER TABLE runs ADD COLUMN {name} {declaration}")
            if "size_bytes" not in present:
                for row in db.execute("SELECT run_id FROM runs").fetchall():
                    size = folder_size(self.run_dir(row["run_id"]))
                    db.execute(
                        "UPDATE runs SET size_bytes = ? WHERE run_id = ?", (size, row["run_id"])
                    )
            if "used_at" not in present:
                db.execute("UPDATE runs SET used_at = created_at")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def _rebuild_index(self) -> None:
        """Move a garbage index aside and index every run folder that reads back whole."""
        with open(self.home / ".index.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be rebuilding it right now
            try:
                with contextlib.closing(self._connect()) as db:
                    db.execute("SELECT count(*) FROM runs").fetchone()
                return  # healthy now: the other process rebuilt it while we waited
            except sqlite3.DatabaseError as exc:
                if not is_garbage(exc):
                    return  # e.g. no table yet; _prepare makes it
            stamp = time.strftime("%Y%m%d-%H%M%S")
            aside = self.index_path.with_name(f"{INDEX_FILE}.damaged-{stamp}")
            for suffix in ("", "-wal", "-shm"):
                source = self.index_path.with_name(INDEX_FILE + suffix)
                if source.exists():
                    os.replace(source, aside.with_name(aside.name + suffix))
            with contextlib.closing(self._connect()) as db:
                self._prepare(db)
                recovered, skipped = 0, 0
                db.execute("BEGIN IMMEDIATE")
                for folder in sorted(self.runs_dir.iterdir()):
                    if folder.name.startswith(".") or not folder.is_dir():
                        continue
                    try:
                        result = self._read_result(folder.name)
                    except StoreError:
                        skipped += 1
                        continue
                    row = row_of(result, folder_size(folder), used_at=result.created_at)
                    db.execute(*insert_statement(row))
                    recovered += 1
                db.execute("COMMIT")
        self.notice = (
            f"The run index {self.index_path} was damaged; it was moved to {aside.name} and "
            f"rebuilt from the run folders ({recovered} run(s) recovered, {skipped} unreadable)."
        )

    def _refuse_if_read_only(self, what: str) -> None:
        if self.read_only:
            raise StoreError(f"The run store {self.home} is read-only here, so {what} is refused.")

    # ------------------------------------------------------------------ writing
    def save(self, result: RunResult, model, evaluation, replace: bool = False) -> RunResult:
        """Store a finished run atomically and return it; StoreError if it may not be stored.

        If the run is already stored, keep the first one, unless `replace` (a forced retrain):
        then the new folder and row take its place. Over the store's limit, the least recently
        used other runs are evicted first; the returned result's message names them.
        """
        assert result.status == "finished", "only finished runs are stored"
        self._refuse_if_read_only(f"storing run {result.run_id}")
        self._index(lambda db: db.execute("SELECT count(*) FROM runs").fetchone())  # heal first
        staging = self.runs_dir / f".tmp-{result.run_id}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            staging.mkdir()
            model.save(staging / MODEL_FILE)
            self._check_model_size(staging / MODEL_FILE)
            np.save(staging / PREDICTIONS_FILE, evaluation.probabilities.astype(np.float16))
            (staging / CONFIG_FILE).write_text(result.config.to_json())
            record = {**result.summary(), "cached": False}
            record.update(history=result.history, confusion=result.confusion)
            (staging / RESULT_FILE).write_text(json.dumps(record, indent=1))
            fsync_folder(staging)
            size = folder_size(staging)
            if size > self.limit_bytes:
                raise StoreError(
                    f"This run needs {format_size(size)} but the whole store may hold only "
                    f"{format_size(self.limit_bytes)}; raise PLAYGROUND_STORE_LIMIT_GB."
                )
            row = row_of(result, size, used_at=time.time())
            evicted = self._index(lambda db: self._commit(db, row, staging, replace))
        except OSError as exc:
            raise StoreError(
                f"Run {result.run_id} could not be stored in {self.home} ({exc.strerror or exc})."
            ) from None
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
        if evicted is None:  # another process stored it first: everyone reports that one
            return self.get(result.run_id) or result
        for run_id in evicted:  # rows are gone, so these folders no longer count
            discard_quietly(self.run_dir(run_id), self.runs_dir)
        if evicted:
            result.message = (
                f"To stay within the store's limit of {format_size(self.limit_bytes)}, the least "
                f"recently used run(s) {', '.join(evicted)} were removed."
            )
        return result

    def _check_model_size(self, path: Path) -> None:
        size = path.stat().st_size
        if size > self.max_model_bytes:
            raise StoreError(
                f"This network's model file is {format_size(size)}, over the "
                f"{format_size(self.max_model_bytes)} a run may store; use fewer units or "
                "filters, or more pooling."
            )

    def _commit(self, db: sqlite3.Connection, row: dict, staging: Path, replace: bool):
        """Under the write lock: evict, put the folder in place, write the row. None if kept."""
        run_id = row["run_id"]
        db.execute("BEGIN IMMEDIATE")
        try:
            stored = db.execute("SELECT 1 FROM runs WHERE run_id = ?", (run_id,)).fetchone()
            final = self.run_dir(run_id)
            if stored is not None and final.exists() and not replace:
                db.execute("ROLLBACK")
                return None
            others = db.execute(
                "SELECT run_id, size_bytes FROM runs WHERE run_id != ? "
                "ORDER BY used_at, created_at",
                (run_id,),
            ).fetchall()
            total = sum(other["size_bytes"] for other in others)
            evicted = []
            for other in others:
                if total + row["size_bytes"] <= self.limit_bytes:
                    break
                db.execute("DELETE FROM runs WHERE run_id = ?", (other["run_id"],))
                evicted.append(other["run_id"])
                total -= other["size_bytes"]
            if final.exists():  # the run being replaced, or an orphan of a crashed save
                swap_in(staging, final)
                discard_quietly(staging, self.runs_dir)  # now holds the old folder
            else:
                os.rename(staging, final)
            db.execute("DELETE FROM runs WHERE run_id = ?", (run_id,))
            db.execute(*insert_statement(row))
            db.execute("COMMIT")
            return evicted
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    def delete(self, run_id: str) -> bool:
        """Remove a run, damaged or not: the row first (it stops counting), then its folder."""
        self._refuse_if_read_only(f"deleting run {run_id}")
        deleted = self._index(
            lambda db: db.execute("DELETE FROM runs WHERE run_id = ?", (run_id,)).rowcount
        )
        folder = self.run_dir(run_id)
        if folder.exists():
            try:
                discard(folder, self.runs_dir)
            except OSError as exc:
                raise StoreError(
                    f"Run {run_id}'s folder {folder} could not be removed ({exc.strerror})."
                ) from None
        return bool(deleted)

    def set_owner(self, run_id: str, owner: str) -> bool:
        """Record which session started a run (shared server); False if it is not stored."""
        self._refuse_if_read_only(f"recording who trained run {run_id}")
        return bool(
            self._index(
                lambda db: (
                    db.execute(
                        "UPDATE runs SET owner = ? WHERE run_id = ?", (owner, run_id)
                    ).rowcount
                )
            )
        )

    # ------------------------------------------------------------------ reading
    def index_row(self, run_id: str) -> dict | None:
        """The run's index row (no folder is read), or None if it is not stored."""
        row = self._index(
            lambda db: db.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        )
        return None if row is None else {**ROW_DEFAULTS, **dict(row)}

    def get(self, run_id: str) -> RunResult | None:
        """The stored run with this id, marked cached; None if not stored.

        Raises StoreError, naming the file, when the run is indexed but its folder is damaged.
        """
        row = self.index_row(run_id)
        if row is None:
            return None
        try:
            result = self._read_result(run_id)
        except StoreError:
            if self.index_row(run_id) is None:
                return None  # deleted while we read it: delete drops the row before the folder
            raise
        self._mark_used(row)
        return result

    def _read_result(self, run_id: str) -> RunResult:
        record = json.loads(self._read_text(run_id, RESULT_FILE, "not valid JSON"))
        if not isinstance(record, dict):
            raise self._damaged(run_id, RESULT_FILE, "not a JSON object")
        if record.get("run_id") != run_id:
            raise self._damaged(run_id, RESULT_FILE, f"it describes run {record.get('run_id')}")
        try:
            config = RunConfig.from_json(self._read_text(run_id, CONFIG_FILE, "not valid JSON"))
        except StoreError:
            raise
        except Exception as exc:  # ConfigError and whatever a mangled field raises
            raise self._damaged(run_id, CONFIG_FILE, str(exc).rstrip(".")) from None
        fields = set(RunResult.__dataclass_fields__) - {"config", "cached"}
        known = {k: record[k] for k in fields if k in record}
        return RunResult(config=config, cached=True, **known)

    def _read_text(self, run_id: str, name: str, why_invalid: str) -> str:
        """A run file's text, checked to be JSON; StoreError if missing or damaged."""
        path = self.run_dir(run_id) / name
        try:
            text = path.read_text()
            json.loads(text)
        except FileNotFoundError:
            raise self._missing(run_id, name) from None
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise self._damaged(run_id, name, why_invalid) from None
        except OSError as exc:
            raise self._damaged(run_id, name, exc.strerror or str(exc)) from None
        return text

    def _missing(self, run_id: str, name: str) -> StoreError:
        if not self.run_dir(run_id).is_dir():
            return StoreError(
                f"Run {run_id}'s folder {self.run_dir(run_id)} is missing; "
                "delete the run or train it again."
            )
        return StoreError(f"Run {run_id}'s {name} is missing; delete the run or train it again.")

    def _damaged(self, run_id: str, name: str, why: str) -> StoreError:
        return StoreError(
            f"Run {run_id}'s {name} is damaged ({why}); delete the run or train it again."
        )

    def _mark_used(self, row: dict) -> None:
        now = time.time()
        if self.read_only or now - row["used_at"] < USE_RESOLUTION_S:
            return
        # A hint for eviction only: give up at once rather than wait behind a writer.
        with contextlib.suppress(sqlite3.Error), contextlib.closing(self._connect(0.5)) as db:
            db.execute("UPDATE runs SET used_at = ? WHERE run_id = ?", (now, row["run_id"]))

    def list_runs(self) -> list[dict]:
        """Index rows of every stored run, newest first, as plain dicts (no TensorFlow needed).

        Each row's "damage" is "" or a sentence saying which of the run's files is missing.
        """
        rows = self._index(
            lambda db: db.execute("SELECT * FROM runs ORDER BY created_at DESC").fetchall(),
            empty=[],
        )
        listed = []
        for row in rows:
            row = {**ROW_DEFAULTS, **dict(row)}
            row["damage"] = self._damage_of(row["run_id"])
            listed.append(row)
        return listed

    def _damage_of(self, run_id: str) -> str:
        """A cheap look (sizes only, no parsing) at whether a run's files are all there."""
        for name in RUN_FILES:
            try:
                if (self.run_dir(run_id) / name).stat().st_size == 0:
                    return str(self._damaged(run_id, name, "empty"))
            except OSError:
                return str(self._missing(run_id, name))
        return ""

    def run_ids(self) -> list[str]:
        return [row["run_id"] for row in self.list_runs()]

    def size_bytes(self) -> int:
        """What the stored runs take on disk, as measured when each was saved."""
        # Rows of an index too old to have size_bytes (a read-only store) are measured now.
        return sum(
            row["size_bytes"] or folder_size(self.run_dir(row["run_id"]))
            for row in self.list_runs()
        )

    def _stored_file(self, run_id: str, name: str) -> Path:
        path = self.run_dir(run_id) / name
        if path.exists():
            return path
        if self.index_row(run_id) is None:
            raise StoreError(f"There is no stored run {run_id} in {self.home}; choose another.")
        raise self._missing(run_id, name)

    def model_bytes(self, run_id: str) -> bytes:
        """The run's .keras file as bytes (for a download); StoreError if it is missing."""
        path = self._stored_file(run_id, MODEL_FILE)
        try:
            return path.read_bytes()
        except OSError as exc:
            raise self._damaged(run_id, MODEL_FILE, exc.strerror or str(exc)) from None

    def load_model(self, run_id: str):
        """The trained Keras model of a stored run (imports Keras); StoreError if unusable."""
        from core.runtime import import_keras

        keras = import_keras()

        path = self._stored_file(run_id, MODEL_FILE)
        try:
            return keras.saving.load_model(path)
        except Exception as exc:  # zipfile, h5py, ValueError...: all mean the file is damaged
            raise self._damaged(run_id, MODEL_FILE, f"{type(exc).__name__}: {exc}") from None

    def load_probabilities(self, run_id: str) -> np.ndarray:
        """The stored test-set softmax outputs of a run, float32 (n_test, classes)."""
        path = self._stored_file(run_id, PREDICTIONS_FILE)
        try:
            probabilities = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            raise self._damaged(run_id, PREDICTIONS_FILE, str(exc).rstrip(".")) from None
        if probabilities.ndim != 2:
            raise self._damaged(run_id, PREDICTIONS_FILE, "not a table of probabilities")
        return probabilities.astype(np.float32)

    # ------------------------------------------------------------------ housekeeping
    def _remove_abandoned(self) -> None:
        """Delete staging folders whose writer process no longer exists (killed mid-save)."""
        for path in self.runs_dir.glob(".tmp-*"):
            try:
                pid = int(path.name.split("-")[2])
            except (IndexError, ValueError):
                continue
            if not process_alive(pid):
                shutil.rmtree(path, ignore_errors=True)
        for path in self.runs_dir.glob(".trash-*"):
            shutil.rmtree(path, ignore_errors=True)


def _check_folder(home: Path) -> None:
    """StoreError unless `home` is, or can become, a folder."""
    existing = home
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        where = "is a file" if existing == home else f"is inside {existing}, which is a file"
        raise StoreError(
            f"The run store {home} {where}, not a folder; point PLAYGROUND_HOME at a folder."
        )


def _env_number(name: str, default: float, unit: str) -> float:
    raw = limit_text(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise StoreError(
            f"{name}={raw!r} is not a positive number of {unit}; unset it or give one like "
            f"{default:g}."
        )
    return value
