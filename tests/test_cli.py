"""`python -m core`: the JSON contract, exit codes, and answers that need no TensorFlow."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent


def run(args, home, **kw):
    env = {**os.environ, "PLAYGROUND_HOME": str(home), "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run(
        [sys.executable, "-m", "core", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        **kw,
    )


@pytest.mark.slow
def test_train_json_then_cached_then_runs(tmp_path, full_data):
    args = ["train", "--preset", "fast", "--epochs", "1", "--train-size", "4000", "--json"]
    first = run(args, tmp_path)
    assert first.returncode == 0, first.stderr[-800:]
    answer = json.loads(first.stdout.strip().splitlines()[-1])
    for key in (
        "run_id",
        "test_accuracy",
        "test_loss",
        "train_seconds",
        "cached",
        "train_size",
        "data_source",
        "device",
    ):
        assert key in answer
    assert answer["cached"] is False and answer["train_size"] == 4000
    assert answer["data_source"] != "sample" and answer["test_accuracy"] > 0.6

    second = run(args, tmp_path)
    again = json.loads(second.stdout.strip().splitlines()[-1])
    assert again["cached"] is True
    assert again["test_accuracy"] == answer["test_accuracy"]

    listed = run(["runs", "--json"], tmp_path)
    runs = json.loads(listed.stdout)
    assert [(r["run_id"], r["test_accuracy"]) for r in runs] == [
        (answer["run_id"], answer["test_accuracy"])
    ]
    human = run(["runs"], tmp_path)
    assert answer["run_id"] in human.stdout and str(tmp_path) in human.stdout


@pytest.mark.slow
def test_cached_answer_does_not_import_tensorflow(tmp_path, full_data):
    args = ["train", "--preset", "seed", "--epochs", "1", "--train-size", "2000", "--json"]
    assert run(args, tmp_path).returncode == 0
    code = (
        "import sys, json; from core.__main__ import main; "
        f"rc = main({args!r}); "
        "assert rc == 0; assert 'tensorflow' not in sys.modules, 'TensorFlow was imported'"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PLAYGROUND_HOME": str(tmp_path)},
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1])["cached"] is True


def test_human_output_has_progress_and_summary(tmp_path, full_data):
    out = run(["train", "--preset", "seed", "--epochs", "1", "--train-size", "1000"], tmp_path)
    assert out.returncode == 0
    assert "epoch 1/1 [" in out.stderr and "60,000 training" in out.stderr
    assert "test accuracy" in out.stdout and "trained" in out.stdout


def test_bad_arguments_exit_2_with_usage(tmp_path):
    for args in (
        ["train"],
        ["train", "--preset", "nope"],
        ["fly"],
        [],
        ["train", "--preset", "seed", "--epochs", "ten"],
    ):
        out = run(args, tmp_path)
        assert out.returncode == 2, args
        assert "usage:" in out.stderr
        assert "Traceback" not in out.stderr


def test_user_error_exits_1_with_a_sentence(tmp_path):
    out = run(["train", "--preset", "seed", "--epochs", "0"], tmp_path)
    assert out.returncode == 1
    assert out.stderr.strip().splitlines()[-1] == "error: Train for at least 1 epoch (asked for 0)."
    out = run(["train", "--preset", "seed", "--train-size", "70000"], tmp_path)
    assert out.returncode == 1 and "dataset has 60,000" in out.stderr


@pytest.mark.slow
def test_divergence_exits_1_with_advice(tmp_path, full_data):
    args = [
        "train",
        "--preset",
        "seed",
        "--epochs",
        "2",
        "--train-size",
        "2000",
        "--optimizer",
        "sgd",
        "--learning-rate",
        "1e4",
    ]
    out = run(args, tmp_path)
    assert out.returncode == 1 and "Traceback" not in out.stderr + out.stdout
    assert "diverged" in out.stdout and "Lower the learning rate" in out.stdout
    answer = json.loads(run([*args, "--json"], tmp_path).stdout.strip().splitlines()[-1])
    assert answer["status"] == "diverged" and answer["test_accuracy"] is None
    assert json.loads(run(["runs", "--json"], tmp_path).stdout) == []


# ------------------------------------------------------------------------------ classify
@pytest.fixture(scope="module")
def pictures(tmp_path_factory, full_data):
    """Photo-like files of a boot and a trouser, and a few files that are not pictures."""
    from tests.photos import photo_like

    folder = tmp_path_factory.mktemp("pictures")
    rng = np.random.default_rng(7)
    boot = full_data.x_test[np.flatnonzero(full_data.y_test == 9)[0]]
    trouser = full_data.x_test[np.flatnonzero(full_data.y_test == 1)[0]]
    (folder / "boot.jpg").write_bytes(photo_like(boot, rng))
    (folder / "trouser.png").write_bytes(photo_like(trouser, rng, "PNG"))
    (folder / "notes.txt").write_text("not a picture\n")
    (folder / "empty.png").write_bytes(b"")
    return folder


@pytest.mark.slow
def test_classify_json_lines_in_order_with_bad_files_mixed_in(trained, pictures):
    home, dense, _ = trained
    files = [
        pictures / "boot.jpg",
        pictures / "notes.txt",
        pictures / "trouser.png",
        pictures / "empty.png",
        pictures / "absent.gif",
    ]
    out = run(["classify", "--run", dense.run_id, "--json", *map(str, files)], home)
    assert out.returncode == 1, out.stderr[-800:]
    lines = [json.loads(line) for line in out.stdout.strip().splitlines()]
    assert [line["file"] for line in lines] == [str(f) for f in files]
    boot, notes, trouser, empty, absent = lines
    for good, label, index in ((boot, "Ankle boot", 9), (trouser, "Trouser", 1)):
        assert {"file", "label", "index", "confidence", "top"} <= set(good)
        assert (good["label"], good["index"]) == (label, index)
        assert len(good["top"]) == 5 and good["top"][0] == [label, good["confidence"]]
        probabilities = [p for _, p in good["top"]]
        assert probabilities == sorted(probabilities, reverse=True)
        assert len({name for name, _ in good["top"]}) == 5 and good["confidence"] > 0.5
    assert set(notes) == {"file", "error"} and "text file" in notes["error"]
    assert "empty" in empty["error"] and "no such file" in absent["error"]
    assert "Traceback" not in out.stderr


@pytest.mark.slow
def test_classify_exit_codes_and_plain_output(trained, pictures):
    home, dense, _ = trained
    good = run(["classify", "--run", dense.run_id, str(pictures / "boot.jpg")], home)
    assert good.returncode == 0, good.stderr[-800:]
    assert good.stdout.startswith(f"{pictures / 'boot.jpg'}: Ankle boot (")
    bad = run(["classify", "--run", dense.run_id, str(pictures / "notes.txt")], home)
    assert bad.returncode == 1 and "refused: it is a text file" in bad.stdout
    unknown = run(["classify", "--run", "nosuchrun", str(pictures / "boot.jpg")], home)
    assert unknown.returncode == 2 and "no stored run 'nosuchrun'" in unknown.stderr
    no_files = run(["classify", "--run", dense.run_id], home)
    assert no_files.returncode == 2 and "FILE" in no_files.stderr
    for result in (good, bad, unknown, no_files):
        assert "Traceback" not in result.stderr


def test_a_reader_that_goes_away_is_not_an_error(trained, tmp_path):
    """`python -m core ... | head -1`: the pipe closes early; no BrokenPipeError traceback."""
    home, dense, _ = trained
    bad = tmp_path / "notes.txt"
    bad.write_text("not a picture\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "core", "--home", str(home), "classify", "--run", dense.run_id]
        + [str(bad)] * 2000,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().startswith(str(bad))  # like `head -1`: one line, then gone
    proc.stdout.close()
    err = proc.stderr.read()
    proc.wait(timeout=120)
    assert "Traceback" not in err and "BrokenPipe" not in err
    assert proc.returncode == 0
