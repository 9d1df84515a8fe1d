"""The run store under crashes and concurrency, with real processes and real training."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import core.store as store_module
from core import store_index
from core.files import format_size
from core.learn.evaluation import evaluate
from core.learn.training import train
from core.spec.config import LayerSpec, RunConfig
from core.spec.presets import PRESETS
from core.store import RunStore, StoreError

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "core"]


def cli_env(home: Path) -> dict:
    return {**os.environ, "PLAYGROUND_HOME": str(home), "TF_CPP_MIN_LOG_LEVEL": "3"}


@pytest.mark.slow
def test_sigkill_mid_training_leaves_no_finished_run(tmp_path, full_data):
    home = tmp_path / "home"
    proc = subprocess.Popen(
        CLI + ["train", "--preset", "seed", "--epochs", "500", "--train-size", "20000"],
        cwd=ROOT,
        env=cli_env(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # killed mid-training: its progress line shows the second of 500 epochs (minutes of training
    # left, so the run cannot have finished, however fast the machine)
    deadline = time.monotonic() + 120
    seen = ""
    while time.monotonic() < deadline and "epoch 2/500" not in seen:
        seen += proc.stderr.read(1)
    assert "epoch 2/500" in seen, seen
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    store = RunStore(home)
    config = PRESETS["seed"].replace(epochs=500, train_size=20000)
    run_id = config.run_id_for(full_data.fingerprint)
    assert store.list_runs() == []
    assert store.get(run_id) is None
    assert not store.run_dir(run_id).exists()
    listed = subprocess.run(
        CLI + ["runs", "--json"],
        cwd=ROOT,
        env=cli_env(home),
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(listed.stdout) == []


@pytest.mark.slow
def test_three_processes_one_config_end_with_one_valid_run(tmp_path, full_data):
    home = tmp_path / "home"
    args = ["train", "--preset", "seed", "--epochs", "1", "--train-size", "3000", "--json"]
    procs = [
        subprocess.Popen(
            CLI + args,
            cwd=ROOT,
            env=cli_env(home),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [err[-500:] for _, err in outputs]
    answers = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
    assert len({a["run_id"] for a in answers}) == 1
    # each process trained; all report the one run that was kept
    assert len({a["test_accuracy"] for a in answers}) == 1

    store = RunStore(home)
    rows = store.list_runs()
    assert len(rows) == 1 and rows[0]["run_id"] == answers[0]["run_id"]
    assert not [p for p in store.runs_dir.iterdir() if p.name.startswith(".")]
    model = store.load_model(rows[0]["run_id"])
    logits = model.predict(full_data.x_test[:500] / 255.0, verbose=0)
    accuracy = (logits.argmax(axis=1) == full_data.y_test[:500]).mean()
    assert accuracy > 0.6
    assert store.load_probabilities(rows[0]["run_id"]).shape == (10_000, 10)


def test_orphan_folder_from_a_crashed_save_is_not_a_run(store, full_data):
    config = PRESETS["seed"].replace(epochs=1, train_size=2000)
    run_id = config.run_id_for(full_data.fingerprint)
    orphan = store.run_dir(run_id)
    orphan.mkdir()
    (orphan / "result.json").write_text("{half written")
    assert store.get(run_id) is None and store.list_runs() == []

    result = train(config, full_data, store=store)
    assert result.ok and not result.cached
    assert not [p for p in store.runs_dir.iterdir() if p.name.startswith(".")]
    again = store.get(run_id)
    assert again is not None and again.test_accuracy == result.test_accuracy


def test_abandoned_staging_folders_are_cleaned(tmp_path):
    home = tmp_path / "home"
    RunStore(home)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = home / "runs" / f".tmp-abc123-{dead.pid}-deadbeef"
    stale.mkdir()
    live = home / "runs" / f".tmp-abc123-{os.getpid()}-cafef00d"
    live.mkdir()
    RunStore(home)
    assert not stale.exists()
    assert live.exists()  # a writer that is still alive keeps its folder


def test_list_load_delete(store, full_data):
    a = train(PRESETS["seed"].replace(epochs=1, train_size=2000), full_data, store=store)
    b = train(PRESETS["seed"].replace(epochs=1, train_size=2500), full_data, store=store)
    rows = store.list_runs()
    assert [r["run_id"] for r in rows] == [b.run_id, a.run_id]  # newest first
    assert rows[0]["architecture"] == "Dense(128, relu)" and rows[0]["params"] == 101_770
    loaded = store.get(a.run_id)
    assert loaded.cached and loaded.config == a.config and loaded.history == a.history
    probabilities = store.load_probabilities(a.run_id)
    assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-2)

    assert store.delete(a.run_id)
    assert store.get(a.run_id) is None and not store.run_dir(a.run_id).exists()
    assert [r["run_id"] for r in store.list_runs()] == [b.run_id]
    assert not store.delete(a.run_id)


# ------------------------------------------------------------------ replace, limits, migration
SMALL = RunConfig(layers=(LayerSpec(units=16),), train_size=2000, epochs=1, batch_size=128)


def test_force_retrain_replaces_the_stored_run(store, full_data):
    first = train(SMALL, full_data, store=store)
    other = train(SMALL.replace(seed=7), full_data, store=store)
    assert train(SMALL, full_data, store=store).cached  # without force: the stored one

    again = train(SMALL, full_data, store=store, force=True)
    assert again.ok and not again.cached and again.created_at > first.created_at
    assert store.get(first.run_id).created_at == again.created_at
    assert sorted(store.run_ids()) == sorted([first.run_id, other.run_id])
    assert not [p for p in store.runs_dir.iterdir() if p.name.startswith(".")]

    # the folder really is the new one: save another network's weights under this run's id
    model = store.load_model(other.run_id)
    swapped = dataclasses.replace(again, test_accuracy=0.125, created_at=time.time())
    kept = store.save(swapped, model, evaluate(model, full_data))  # no replace: first one stays
    assert kept.test_accuracy == again.test_accuracy
    store.save(swapped, model, evaluate(model, full_data), replace=True)
    assert store.get(first.run_id).test_accuracy == 0.125
    assert (
        next(r for r in store.list_runs() if r["run_id"] == first.run_id)["test_accuracy"] == 0.125
    )
    reloaded = store.load_model(first.run_id)
    for mine, theirs in zip(reloaded.get_weights(), model.get_weights(), strict=True):
        assert np.array_equal(mine, theirs)
    assert len(store.list_runs()) == 2


def test_model_over_the_cap_is_refused_and_nothing_is_stored(tmp_path, full_data, monkeypatch):
    monkeypatch.setenv("PLAYGROUND_MAX_MODEL_MB", "0.02")
    store = RunStore(tmp_path / "home")
    assert store.max_model_bytes == 20_000
    assert RunStore(tmp_path / "home", max_model_bytes=123).max_model_bytes == 123  # args win

    result = train(SMALL, full_data, store=store)
    assert result.status == "failed"
    assert re.fullmatch(
        r"This network's model file is \d+ kB, over the 20 kB a run may store; "
        r"use fewer units or filters, or more pooling\.",
        result.message,
    ), result.message
    assert store.list_runs() == [] and list(store.runs_dir.iterdir()) == []

    monkeypatch.setenv("PLAYGROUND_MAX_MODEL_MB", "lots")
    with pytest.raises(StoreError, match="PLAYGROUND_MAX_MODEL_MB='lots' is not a positive"):
        RunStore(tmp_path / "home")


def test_store_over_its_limit_evicts_the_least_recently_used_runs(tmp_path, full_data, monkeypatch):
    monkeypatch.setattr(store_module, "USE_RESOLUTION_S", 0.0)  # every get() counts as a use
    probe = RunStore(tmp_path / "probe")
    one = train(SMALL, full_data, store=probe)
    size = probe.size_bytes()
    assert size == sum(p.stat().st_size for p in probe.run_dir(one.run_id).iterdir())

    store = RunStore(tmp_path / "home", limit_bytes=int(size * 2.5))
    oldest = train(SMALL.replace(seed=1), full_data, store=store)
    middle = train(SMALL.replace(seed=2), full_data, store=store)
    assert store.get(oldest.run_id) is not None  # used: now the middle one is the least recent
    newest = train(SMALL.replace(seed=3), full_data, store=store)
    assert newest.ok
    assert newest.message == (
        f"To stay within the store's limit of {format_size(store.limit_bytes)}, the least "
        f"recently used run(s) {middle.run_id} were removed."
    )
    assert sorted(store.run_ids()) == sorted([oldest.run_id, newest.run_id])
    assert not store.run_dir(middle.run_id).exists()
    assert store.size_bytes() <= store.limit_bytes

    tiny = RunStore(tmp_path / "home", limit_bytes=1000)
    with pytest.raises(StoreError, match=r"^This run needs \d+ kB but the whole store may hold"):
        tiny.save(newest, store.load_model(newest.run_id), evaluate_stored(store, newest.run_id))
    assert sorted(store.run_ids()) == sorted([oldest.run_id, newest.run_id])  # nothing evicted


def evaluate_stored(store: RunStore, run_id: str):
    return SimpleNamespace(probabilities=store.load_probabilities(run_id))


OLD_SCHEMA = store_index.SCHEMA  # the first release's table, before ADDED_COLUMNS


def test_an_old_index_gains_the_new_columns(tmp_path, full_data):
    home = tmp_path / "home"
    run = train(SMALL, full_data, store=RunStore(home))
    current = RunStore(home).list_runs()[0]
    # rewrite the index as the first release wrote it
    (home / "index.sqlite").unlink()
    with closing(sqlite3.connect(home / "index.sqlite")) as db, db:
        db.execute(OLD_SCHEMA)
        old_columns = [c for c in current if c not in store_index.ADDED_COLUMNS]
        old_columns.remove("damage")
        db.execute(
            f"INSERT INTO runs ({', '.join(old_columns)}) VALUES "
            f"({', '.join('?' for _ in old_columns)})",
            [current[c] for c in old_columns],
        )
    reader = RunStore(home, read_only=True)  # cannot migrate, still reads
    assert reader.list_runs()[0]["backend"] == "" and reader.size_bytes() == current["size_bytes"]

    row = RunStore(home).list_runs()[0]
    assert row["size_bytes"] == current["size_bytes"] and row["used_at"] == row["created_at"]
    assert row["owner"] == "" and row["backend"] == ""
    with closing(sqlite3.connect(home / "index.sqlite")) as db:
        columns = [c[1] for c in db.execute("PRAGMA table_info(runs)")]
    assert set(store_index.ADDED_COLUMNS) <= set(columns)
    assert RunStore(home).get(run.run_id).backend == run.backend  # result.json has it


# ------------------------------------------------------------------ connections are closed
def test_every_connection_the_store_opens_is_closed(tmp_path, full_data, monkeypatch):
    opened = []
    connect = sqlite3.connect

    def tracked(*args, **kwargs):
        opened.append(connect(*args, **kwargs))
        return opened[-1]

    monkeypatch.setattr(sqlite3, "connect", tracked)
    monkeypatch.setattr(store_module, "USE_RESOLUTION_S", 0.0)
    store = RunStore(tmp_path / "home")
    run = train(SMALL, full_data, store=store)
    train(SMALL, full_data, store=store, force=True)
    store.get(run.run_id)
    store.list_runs()
    store.size_bytes()
    store.set_owner(run.run_id, "me")
    store.load_probabilities(run.run_id)
    (store.home / "index.sqlite").write_bytes(b"garbage" * 100)
    RunStore(store.home)  # rebuilds
    RunStore(store.home, read_only=True).get(run.run_id)
    store.delete(run.run_id)
    assert len(opened) > 10
    for db in opened:
        with pytest.raises(sqlite3.ProgrammingError, match="closed"):
            db.execute("SELECT 1")


RESOURCE_PROBE = """
import gc, sys
from types import SimpleNamespace
sys.path.insert(0, sys.argv[2])
from core.store import RunStore


class StoredModel:  # keeps TensorFlow, and its own warnings, out of the process under test
    def __init__(self, path):
        self.data = path.read_bytes()

    def save(self, path):
        path.write_bytes(self.data)


store = RunStore(sys.argv[1])
run_id = store.run_ids()[0]
result = store.get(run_id)
evaluation = SimpleNamespace(probabilities=store.load_probabilities(run_id))
store.save(result, StoredModel(store.model_path(run_id)), evaluation, replace=True)
store.list_runs(), store.size_bytes(), store.set_owner(run_id, "me"), store.model_bytes(run_id)
(store.home / "index.sqlite").write_bytes(b"garbage" * 100)
RunStore(store.home).get(run_id)
RunStore(store.home, read_only=True).list_runs()
store.delete(run_id)
del store
gc.collect()
print("done")
"""


def test_no_resource_warning(tmp_path, full_data):
    home = tmp_path / "home"
    train(SMALL, full_data, store=RunStore(home))
    probe = subprocess.run(
        [
            sys.executable,
            "-W",
            "error::ResourceWarning",
            "-c",
            RESOURCE_PROBE,
            str(home),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert probe.returncode == 0 and probe.stdout.strip() == "done", probe.stderr[-2000:]
    assert "ResourceWarning" not in probe.stderr and "unclosed" not in probe.stderr
