"""An imported dataset trains on a Ray cluster whose machines keep their own PLAYGROUND_HOME.

The pictures travel with the job (the driver puts the loaded Dataset into Ray's object store),
so nothing on the cluster may look the dataset up by name in its own home. Before the layered
layout it did: validate() asked the default home's registry, and the run ended "failed" with
"Unknown dataset 'letters'. Choose one of: fashion_mnist, mnist." Checked against a real local
head started with another PLAYGROUND_HOME, as a second machine has.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from picture_sets import simple_entries, zip_bytes
from ray_cluster import ray_head

from core.data.importer import import_zip
from core.store import RunStore

ROOT = Path(__file__).resolve().parent.parent


def test_an_imported_dataset_trains_on_a_cluster_whose_home_is_elsewhere(tmp_path):
    here, elsewhere = tmp_path / "here", tmp_path / "elsewhere"
    report = import_zip(zip_bytes(simple_entries({"a": 12, "b": 12})), "letters", home=here)
    env = {k: v for k, v in os.environ.items() if k != "PLAYGROUND_HOME"}
    with ray_head(env={"PLAYGROUND_HOME": str(elsewhere)}) as (address, _):
        args = ["train", "--preset", "seed", "--dataset", "letters", "--layers", "dense:8:relu:0"]
        args += ["--epochs", "1", "--batch-size", "8", "--ray", address, "--json"]
        done = subprocess.run(
            [sys.executable, "-m", "core", "--home", str(here), *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert done.returncode == 0, done.stdout[-800:] + done.stderr[-800:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["status"] == "finished" and summary["executor"] == "ray", summary
    assert summary["data_id"] == report.dataset_id
    stored = RunStore(here).get(summary["run_id"])
    assert stored is not None and stored.config.dataset == "letters"
    assert not (elsewhere / "datasets").exists()  # the cluster never looked for it at home
