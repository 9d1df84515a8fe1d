"""The run store under crashes and concurrency, with real processes and real training."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from core.config import PRESETS
from core.store import RunStore
from core.training import train

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "core"]


def cli_env(home: Path) -> dict:
    return {**os.environ, "PLAYGROUND_HOME": str(home), "TF_CPP_MIN_LOG_LEVEL": "3"}


def test_sigkill_mid_training_leaves_no_finished_run(tmp_path):
    home = tmp_path / "home"
    proc = subprocess.Popen(
        CLI + ["train", "--preset", "seed", "--epochs", "30", "--train-size", "20000"],
        cwd=ROOT,
        env=cli_env(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # wait until it is training: its progress line shows an epoch
    deadline = time.monotonic() + 120
    seen = ""
    while time.monotonic() < deadline and "epoch 1/30" not in seen:
        seen += proc.stderr.read(1)
    assert "epoch 1/30" in seen, seen
    time.sleep(1.0)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    store = RunStore(home)
    config = PRESETS["seed"].replace(epochs=30, train_size=20000)
    assert store.list_runs() == []
    assert store.get(config.run_id) is None
    assert not store.run_dir(config.run_id).exists()
    listed = subprocess.run(
        CLI + ["runs", "--json"],
        cwd=ROOT,
        env=cli_env(home),
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(listed.stdout) == []


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
    orphan = store.run_dir(config.run_id)
    orphan.mkdir()
    (orphan / "result.json").write_text("{half written")
    assert store.get(config.run_id) is None and store.list_runs() == []

    result = train(config, full_data, store=store)
    assert result.ok and not result.cached
    again = store.get(config.run_id)
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
