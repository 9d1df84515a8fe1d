"""A store written by the code as it stood before the layered layout opens and answers the same.

tests/stores/main-dc151c5/ was made by that code's own CLI (main at commit dc151c5), nothing
edited by hand:
    python -m core --home H train --preset seed --layers dense:8:relu:0 --epochs 1 --train-size 1000
    python -m core --home H data import shapes.zip --name "old shapes"   (tests/picture_sets.py's
        shape_entries(12): 3 classes, 2 pictures refused as blank)
    python -m core --home H train --preset seed --dataset "old shapes" --layers dense:8:relu:0
        --epochs 2 --batch-size 8
    PLAYGROUND_HOME=H python -m core --home H sweep --dataset "old shapes" --layers dense:8:relu:0
        --epochs 2 --batch-size 8 --param learning_rate=0.001,0.01 --sampler grid --trials 2
        --name old-sweep
Every test works on a copy, so the checked-in store never changes. Run ids and fingerprints must
come out byte for byte: they are what finds a person's stored runs again.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core.data.catalog import find_dataset, list_datasets
from core.data.registry import dataset_names, load_dataset
from core.store import RunStore
from core.sweeps.study import list_sweeps
from core.workspace import runs_using

ROOT = Path(__file__).resolve().parent.parent
OLD_STORE = ROOT / "tests" / "stores" / "main-dc151c5"
FASHION_RUN = "5110d04f1431"
SHAPES_RUN = "642a8c1b5535"
SWEEP_RUNS = {"fa1ab4e06890": 0.01, "31abfb02da9c": 0.001}  # run id -> its learning rate
RUNS = {FASHION_RUN: "fashion_mnist", SHAPES_RUN: "old shapes"} | dict.fromkeys(
    SWEEP_RUNS, "old shapes"
)
SHAPES_ID = "324f0d4e9681b313"


@pytest.fixture
def old_home(tmp_path):
    home = tmp_path / "home"
    shutil.copytree(OLD_STORE, home)
    return home


def test_every_run_is_listed_whole_and_keeps_its_id(old_home, full_data):
    store = RunStore(old_home)
    rows = {row["run_id"]: row for row in store.list_runs()}
    assert set(rows) == set(RUNS)
    assert all(row["damage"] == "" for row in rows.values())
    for run_id, dataset in RUNS.items():
        result = store.get(run_id)
        assert result.ok and result.cached and result.config.dataset == dataset
        data = full_data if dataset == "fashion_mnist" else load_dataset(dataset, home=old_home)
        # today's code derives the same id from the same config and the same pictures
        assert result.data_id == data.fingerprint
        assert result.config.run_id_for(data.fingerprint) == run_id
        probabilities = store.load_probabilities(run_id)
        assert probabilities.shape == (len(data.x_test), data.num_classes)
    assert rows[FASHION_RUN]["backend"] == "jax" and rows[FASHION_RUN]["executor"] == "local"


def test_the_models_still_give_the_answers_they_stored(old_home, full_data):
    from core.learn.explain import probabilities

    store = RunStore(old_home)
    for run_id, dataset in RUNS.items():
        data = full_data if dataset == "fashion_mnist" else load_dataset(dataset, home=old_home)
        model = store.load_model(run_id)
        now = probabilities(model, data.x_test[:200])
        stored = store.load_probabilities(run_id)[:200]  # kept as float16 on disk
        np.testing.assert_allclose(now, stored, atol=2e-3)
        assert (now.argmax(1) == stored.argmax(1)).mean() > 0.99


def test_the_imported_dataset_is_found_by_name_and_by_fingerprint(old_home):
    info = find_dataset("old shapes", old_home)
    assert info is not None and info.dataset_id == SHAPES_ID
    assert find_dataset(SHAPES_ID, old_home).name == "old shapes"
    assert [d.name for d in list_datasets(old_home)] == ["old shapes"]
    assert dataset_names(old_home) == ["fashion_mnist", "mnist", "old shapes"]
    data = load_dataset("old shapes", home=old_home)
    assert data.fingerprint == SHAPES_ID
    assert data.class_names == ("circle", "square", "triangle") and data.input_shape == (28, 28)
    assert (len(data.x_train), len(data.x_test)) == (28, 6)
    assert len(info.skipped) == 2  # the report of the import is kept with it
    assert runs_using("old shapes", old_home) == 3


def test_the_sweep_reads_back_with_its_trials_and_best_run(old_home):
    [sweep] = list_sweeps(old_home)
    assert sweep.name == "old-sweep" and not sweep.running
    assert len(sweep.finished) == 2 and sweep.spec.trials == 2
    assert {t.run_id: t.params["learning_rate"] for t in sweep.finished} == SWEEP_RUNS
    assert sweep.best.run_id == "fa1ab4e06890" and sweep.best.value == 1.0
    assert [p.text() for p in sweep.spec.space] == ["learning_rate=0.001,0.01"]
    assert RunStore(old_home).get(sweep.best.run_id) is not None


def test_the_cli_answers_the_old_runs_from_the_store(old_home):
    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "core", "--home", str(old_home), *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )

    listed = cli("runs", "--json")
    assert listed.returncode == 0, listed.stderr
    assert {row["run_id"] for row in json.loads(listed.stdout)} == set(RUNS)
    for run_id in (FASHION_RUN, SHAPES_RUN):  # the same config again: the store answers
        config = old_home / "runs" / run_id / "config.json"
        again = cli("train", "--config", str(config), "--json")
        assert again.returncode == 0, again.stderr
        summary = json.loads(again.stdout.strip().splitlines()[-1])
        assert summary["cached"] is True and summary["run_id"] == run_id
    sweeps = cli("sweeps", "--json")
    assert sweeps.returncode == 0 and json.loads(sweeps.stdout)[0]["best_run_id"] == "fa1ab4e06890"
    datasets = cli("data", "list", "--json")
    assert json.loads(datasets.stdout)[0]["dataset_id"] == SHAPES_ID


def test_a_new_sweep_over_the_old_space_is_answered_by_the_old_runs(old_home):
    """Through --home alone (the sweep command once looked the dataset up in PLAYGROUND_HOME
    instead), and with every trial found in the store: the ids did not move."""
    env = {k: v for k, v in os.environ.items() if k != "PLAYGROUND_HOME"}
    args = ["sweep", "--dataset", "old shapes", "--layers", "dense:8:relu:0", "--epochs", "2"]
    args += ["--batch-size", "8", "--param", "learning_rate=0.001,0.01", "--sampler", "grid"]
    args += ["--trials", "2", "--name", "again", "--json"]
    done = subprocess.run(
        [sys.executable, "-m", "core", "--home", str(old_home), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-800:]
    lines = [json.loads(line) for line in done.stdout.strip().splitlines()]
    trials, summary = lines[:-1], lines[-1]
    assert {t["run_id"] for t in trials} == set(SWEEP_RUNS)
    assert all(t["cached"] for t in trials)
    assert summary["best_run_id"] == "fa1ab4e06890"
    assert len(RunStore(old_home).run_ids()) == len(RUNS)  # nothing trained again
