"""`python -m core data ...` and `train --dataset NAME`: exit codes, the JSON contract, and a
dataset imported, trained on, classified, renamed and deleted through the command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from picture_sets import shape_entries, simple_entries, write_folder, write_zip

from core.spec.config import LayerSpec, RunConfig

ROOT = Path(__file__).resolve().parent.parent
TINY = RunConfig(layers=(LayerSpec(units=8),), epochs=1, batch_size=8)


def run(args, home, **kw):
    env = {**os.environ, "PLAYGROUND_HOME": str(home), "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run(
        [sys.executable, "-m", "core", *map(str, args)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        **kw,
    )


def last_json(out):
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_json_then_list_rename_delete(tmp_path):
    home = tmp_path / "home"
    entries = simple_entries({"cats": 12, "dogs": 10})
    entries["dogs/notes.txt"] = b"not a picture\n"
    entries["dogs/dup.png"] = entries["dogs/000.png"]
    archive = write_zip(tmp_path / "pets.zip", entries)
    first = run(["data", "import", archive, "--name", "pets", "--json"], home)
    assert first.returncode == 0, first.stderr[-1500:]
    report = last_json(first)
    assert report["name"] == "pets" and report["classes"] == ["cats", "dogs"]
    assert report["images"] == {"cats": 12, "dogs": 10}
    assert {row["file"] for row in report["skipped"]} == {"dogs/notes.txt", "dogs/dup.png"}
    assert all(set(row) == {"file", "reason"} and row["reason"] for row in report["skipped"])
    assert report["existed"] is False and len(report["dataset_id"]) == 16

    human = run(["data", "import", archive, "--name", "again"], home)
    assert human.returncode == 0
    assert "already imported as 'pets'" in human.stdout and "dogs/notes.txt" in human.stdout

    listed = run(["data", "list", "--json"], home)
    rows = last_json(listed)
    assert [(r["name"], r["dataset_id"], r["images"]) for r in rows] == [
        ("pets", report["dataset_id"], {"cats": 12, "dogs": 10})
    ]
    assert rows[0]["mode"] == "fashion" and rows[0]["size"] == 28 and rows[0]["channels"] == 1
    assert "pets" in run(["data", "list"], home).stdout

    renamed = run(["data", "rename", "pets", "animals"], home)
    assert renamed.returncode == 0 and "'animals'" in renamed.stdout
    clash = run(["data", "rename", "animals", "mnist"], home)
    assert clash.returncode == 1 and "built-in" in clash.stderr
    deleted = run(["data", "delete", "animals"], home)
    assert deleted.returncode == 0 and "0 run(s)" in deleted.stdout
    assert last_json(run(["data", "list", "--json"], home)) == []
    gone = run(["data", "delete", "animals"], home)
    assert gone.returncode == 1 and "no imported dataset named 'animals'" in gone.stderr


def test_exit_codes_refused_and_bad_arguments(tmp_path):
    home = tmp_path / "home"
    one_class = write_zip(tmp_path / "one.zip", simple_entries({"cats": 15}))
    refused = run(["data", "import", one_class, "--name", "one", "--json"], home)
    assert refused.returncode == 1
    answer = last_json(refused)
    assert "at least 2 classes" in answer["refused"] and answer["skipped"] == []
    assert refused.stderr.startswith("error: ") and "Traceback" not in refused.stderr
    short = write_zip(tmp_path / "short.zip", simple_entries({"cats": 12, "dogs": 3}))
    human = run(["data", "import", short, "--name", "short"], home)
    assert human.returncode == 1 and "dogs (3)" in human.stderr

    good = write_zip(tmp_path / "good.zip", simple_entries({"a": 10, "b": 10}))
    for args in (
        ["data", "import", good, "--name", "x", "--mode", "sepia"],
        ["data", "import", good, "--name", "x", "--mode", "plain", "--size", "40"],
        ["data", "import", good, "--name", "x", "--size", "32"],  # fashion is 28x28
        ["data", "import", good, "--name", "x", "--test-fraction", "0.9"],
        ["data", "import", good, "--name", "x", "--test-fraction", "many"],
        ["data", "import", tmp_path / "missing.zip", "--name", "x"],
        ["data", "import", good],  # no --name
        ["data"],
        ["data", "rename", "only-one"],
    ):
        out = run(args, home)
        assert out.returncode == 2, (args, out.stdout, out.stderr)
        assert "Traceback" not in out.stderr and out.stderr.strip()
    assert last_json(run(["data", "list", "--json"], home)) == []


@pytest.mark.slow
def test_train_on_an_imported_dataset_through_the_cli(tmp_path):
    """Import a folder "as they are", train a preset and a config file on it, classify a picture
    with the run, and delete the dataset together with its runs."""
    home = tmp_path / "home"
    entries = shape_entries(15, seed=2)
    folder = write_folder(tmp_path / "shapes", entries)
    imported = run(
        ["data", "import", folder, "--name", "shapes", "--mode", "plain", "--size", "32", "--json"],
        home,
    )
    assert imported.returncode == 0, imported.stderr[-1500:]
    report = last_json(imported)
    assert report["mode"] == "plain" and report["size"] == 32

    args = ["train", "--preset", "seed", "--dataset", "shapes", "--epochs", "1", "--json"]
    trained = run(args, home)
    assert trained.returncode == 0, trained.stderr[-1500:]
    result = last_json(trained)
    assert result["data_source"] == "imported" and result["cached"] is False
    expected = RunConfig(dataset="shapes", epochs=1).run_id_for(report["dataset_id"])
    assert result["run_id"] == expected  # keyed by the dataset's content fingerprint
    assert last_json(run(args, home))["cached"] is True

    config = tmp_path / "config.json"
    config.write_text(TINY.replace(dataset="shapes").to_json())
    from_file = run(["train", "--config", config, "--json"], home)
    assert from_file.returncode == 0, from_file.stderr[-1500:]
    runs = last_json(run(["runs", "--json"], home))
    assert {row["dataset"] for row in runs} == {"shapes"} and len(runs) == 2

    picture = tmp_path / "circle.png"
    picture.write_bytes(entries["circle/0000.png"])
    answer = run(["classify", "--run", result["run_id"], "--json", picture], home)
    assert answer.returncode == 0, answer.stderr[-1500:]
    line = last_json(answer)
    assert line["label"] in ("circle", "square", "triangle")
    assert {name for name, _ in line["top"]} == {"circle", "square", "triangle"}

    unknown = run(["train", "--preset", "seed", "--dataset", "nope", "--epochs", "1"], home)
    assert unknown.returncode == 1 and "Unknown dataset 'nope'" in unknown.stderr
    assert "shapes" in unknown.stderr

    deleted = run(["data", "delete", "shapes", "--remove-runs"], home)
    assert deleted.returncode == 0 and "2 run(s)" in deleted.stdout
    assert last_json(run(["runs", "--json"], home)) == []


def test_home_option_points_at_the_datasets_too(tmp_path):
    home, elsewhere = tmp_path / "home", tmp_path / "elsewhere"
    archive = write_zip(tmp_path / "ab.zip", simple_entries({"a": 10, "b": 10}))
    out = run(["--home", elsewhere, "data", "import", archive, "--name", "ab", "--json"], home)
    assert out.returncode == 0, out.stderr[-1500:]
    assert (elsewhere / "datasets" / last_json(out)["dataset_id"] / "arrays.npz").is_file()
    assert last_json(run(["data", "list", "--json"], home)) == []
    trained = run(
        ["--home", elsewhere, "train", "--config", _tiny_config(tmp_path, "ab"), "--json"], home
    )
    assert trained.returncode == 0, trained.stderr[-1500:]
    with np.load(elsewhere / "datasets" / last_json(out)["dataset_id"] / "arrays.npz") as stored:
        assert stored["x_train"].shape == (16, 28, 28)


def _tiny_config(tmp_path, dataset: str) -> Path:
    path = tmp_path / f"{dataset}.json"
    path.write_text(TINY.replace(dataset=dataset).to_json())
    return path
