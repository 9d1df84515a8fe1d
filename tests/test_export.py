"""The exported plain-Keras script runs on its own, builds the planned network and loads the run's
own dataset."""

from __future__ import annotations

import gzip
import os
import re
import struct
import subprocess
import sys

import numpy as np
import pytest

from core.data.sources import DATASETS, IDX_FILES, load_idx_dir
from core.learn.training import train
from core.show.export import DATA_LOADERS, reproduce_script
from core.spec.config import LayerSpec, RunConfig
from core.spec.plan import count_params
from core.spec.presets import PRESETS
from core.spec.settings import ConfigError

CONV = LayerSpec(kind="conv", filters=8, kernel_size=3)
# Option-rich networks; with MNIST_CONFIG below every optimizer trains at least once.
RICH_CONFIGS = {
    "adam-l2-bn-augment": RunConfig(
        layers=(
            LayerSpec(kind="conv", filters=8, kernel_size=3, dropout=0.25),
            LayerSpec(kind="conv", filters=8, kernel_size=3, pool=False, activation="elu"),
            LayerSpec(units=32, activation="gelu", dropout=0.3),
        ),
        batch_norm=True,
        augment_flip=True,
        augment_translate=0.1,
        weight_decay=1e-3,
        validation_split=0.1,
        early_stopping=2,
        batch_size=64,
    ),
    "sgd-l2-kernel5": RunConfig(
        layers=(
            LayerSpec(kind="conv", filters=6, kernel_size=5, pool=False, activation="tanh"),
            LayerSpec(units=16, activation="sigmoid"),
        ),
        augment_translate=0.15,
        optimizer="sgd",
        learning_rate=0.01,
        weight_decay=1e-4,
    ),
    "adamw-bn-dropout": RunConfig(
        layers=(CONV, LayerSpec(units=24, activation="linear", dropout=0.2)),
        batch_norm=True,
        augment_flip=True,
        optimizer="adamw",
        weight_decay=1e-4,
        validation_split=0.2,
        early_stopping=1,
    ),
}
MNIST_CONFIG = RunConfig(
    dataset="mnist",
    layers=(LayerSpec(kind="conv", filters=4, kernel_size=3, dropout=0.1), LayerSpec(units=16)),
    batch_norm=True,
    optimizer="rmsprop",
    weight_decay=1e-4,
    validation_split=0.1,
)


def write_idx(path, array: np.ndarray) -> None:
    """An IDX file as the original distribution ships it: magic 0x08 0x0N, sizes, bytes."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = struct.pack(">i", 0x0800 + array.ndim) + struct.pack(f">{array.ndim}i", *array.shape)
    raw = header + array.tobytes()
    path.write_bytes(gzip.compress(raw) if path.suffix == ".gz" else raw)


def write_idx_dir(folder, x_train, y_train, x_test, y_test, *, gzipped: bool = True):
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
    for key, name in IDX_FILES.items():
        write_idx(folder / (name if gzipped else name.removesuffix(".gz")), arrays[key])
    return folder


@pytest.fixture(scope="module")
def fashion_dir(tmp_path_factory, full_data):
    """A small Fashion-MNIST folder of real images, so a script reads it in a blink."""
    folder = tmp_path_factory.mktemp("fashion")
    return write_idx_dir(
        folder,
        full_data.x_train[:1000],
        full_data.y_train[:1000],
        full_data.x_test[:200],
        full_data.y_test[:200],
    )


def run_script(source: str, folder, *args: str, env: dict | None = None):
    script = folder / "playground.py"
    script.write_text(source)
    out = subprocess.run(
        [sys.executable, str(script), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})},
        cwd=folder,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def printed(pattern: str, stdout: str) -> str:
    match = re.search(pattern, stdout)
    assert match, f"no {pattern!r} in:\n{stdout[-2000:]}"
    return match.group(1)


REPRODUCED = {
    "tutorial": PRESETS["seed"].replace(epochs=1, train_size=5000),
    "conv-options": RunConfig(
        layers=(CONV, LayerSpec(units=32, dropout=0.2)),
        conv_padding="same",
        augment_flip=True,
        optimizer="sgd",
        learning_rate=0.01,
        weight_decay=1e-3,
        validation_split=0.1,
        early_stopping=1,
        epochs=2,
        train_size=2000,
        batch_size=64,
    ),
    # the schedule's length comes from the script's own data: n_fit and BATCH_SIZE
    "cosine-schedule": PRESETS["fast"].replace(epochs=2, train_size=3000, validation_split=0.1),
    # strided convolutions (Conv2D strides=2, no pooling layer) on the cosine schedule
    "strided-cnn": PRESETS["cnn"].replace(epochs=1, train_size=2000, validation_split=0.1),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", REPRODUCED)
def test_exported_script_reproduces_the_run(name, tmp_path, full_data):
    """Same seed, same subset and split, same layers and optimizer: the same numbers.

    On one machine the script's test accuracy and loss have come out equal to the playground's
    to all four printed decimals; the margins below only allow for floating-point order.
    """
    config = REPRODUCED[name]
    result = train(config, full_data)
    source = reproduce_script(config, config.run_id_for(full_data.fingerprint))
    assert f"playground_{result.run_id}.py" in source
    stdout = run_script(source, tmp_path)
    assert int(printed(r"params (\d+)", stdout)) == result.params
    assert int(printed(r"data: (\d+) training", stdout)) == result.train_size
    assert float(printed(r"test accuracy ([0-9.]+)", stdout)) == pytest.approx(
        result.test_accuracy, abs=0.003
    )
    assert float(printed(r"test loss ([0-9.]+)", stdout)) == pytest.approx(
        result.test_loss, abs=0.01
    )


@pytest.mark.slow
@pytest.mark.parametrize("name", RICH_CONFIGS)
def test_option_rich_script_runs_and_builds_the_plan(name, tmp_path, fashion_dir):
    config = RICH_CONFIGS[name]
    stdout = run_script(
        reproduce_script(config),
        tmp_path,
        *("--epochs", "1", "--train-size", "500", "--test-size", "100"),
        env={"PLAYGROUND_DATA_DIR": str(fashion_dir)},
    )
    assert f"data: Fashion-MNIST from {fashion_dir}" in stdout
    assert int(printed(r"params (\d+)", stdout)) == count_params(config, (28, 28), 10)
    n_val = round(500 * config.validation_split)
    assert f"data: {500 - n_val} training, {n_val} validation, 100 test images" in stdout
    assert 0.0 <= float(printed(r"test accuracy ([0-9.]+)", stdout)) <= 1.0


@pytest.mark.slow
def test_mnist_script_loads_mnist(tmp_path, fashion_dir):
    """The MNIST script reads the MNIST folder (PLAYGROUND_MNIST_DIR, as the registry does) even
    when Fashion-MNIST's folder variable is set too.

    MNIST cannot be downloaded here, so the folder holds random 28x28 "digits" in the real IDX
    format (uncompressed, which the registry also accepts): this proves which files the script
    reads and that it trains on them, not how well it learns real digits.
    """
    rng = np.random.default_rng(0)
    digits = write_idx_dir(
        tmp_path / "mnist",
        rng.integers(0, 256, (300, 28, 28)),
        np.arange(300) % 10,
        rng.integers(0, 256, (50, 28, 28)),
        np.arange(50) % 10,
        gzipped=False,
    )
    assert len(load_idx_dir(digits)[0]) == 300  # the registry's own reader accepts these files
    stdout = run_script(
        reproduce_script(MNIST_CONFIG),
        tmp_path,
        *("--epochs", "1", "--train-size", "500"),
        env={
            "PLAYGROUND_MNIST_DIR": str(digits),
            "PLAYGROUND_DATA_DIR": str(fashion_dir),  # Fashion-MNIST's: must be ignored
            "KERAS_HOME": str(tmp_path / "empty-keras-home"),  # no cached set to fall back on
        },
    )
    assert f"data: MNIST digits from {digits}" in stdout
    assert "data: 270 training, 30 validation, 50 test images" in stdout  # all 300, split 0.1
    assert int(printed(r"params (\d+)", stdout)) == count_params(MNIST_CONFIG, (28, 28), 10)


def test_each_dataset_gets_its_own_loader():
    """The fallbacks (a download) cannot run here, so this reads the scripts' source."""
    mnist = reproduce_script(MNIST_CONFIG)
    assert "keras.datasets.mnist.load_data()" in mnist
    assert "fashion" not in mnist.lower() and "PLAYGROUND_DATA_DIR" not in mnist
    fashion = reproduce_script(PRESETS["cnn"])
    assert "keras.datasets.fashion_mnist.load_data()" in fashion
    assert (
        '"/usr/share/datasets/fashion-mnist"' in fashion and "PLAYGROUND_MNIST_DIR" not in fashion
    )
    with pytest.raises(ConfigError, match="no loader for 'emnist'"):
        reproduce_script(RunConfig(dataset="emnist"))


def test_script_loaders_follow_the_registry(monkeypatch):
    """Each script looks where core.data.sources looks: the same folder variable and folders, and
    the same keras.datasets module (whose loader also reads Keras's cache, the registry's other
    source)."""
    for name, loader in DATA_LOADERS.items():
        monkeypatch.setenv(loader.env_var, f"/elsewhere/{name}")
        sources = DATASETS[name].sources()
        env = [s.detail for s in sources if s.key == "env"]
        assert env == [f"/elsewhere/{name}"], name
        folders = [s.detail for s in sources if s.key == "debian"]
        assert list(loader.folders) == folders, name
        downloads = [s.detail for s in sources if s.key == "download"]
        assert downloads == [f"keras.datasets.{loader.keras_module}"], name
        monkeypatch.delenv(loader.env_var)


def test_script_names_and_style():
    config = RICH_CONFIGS["adam-l2-bn-augment"]
    named = reproduce_script(config, "0123456789ab")
    assert "run 0123456789ab" in named and "python playground_0123456789ab.py" in named
    unnamed = reproduce_script(config)
    assert "a playground run" in unnamed and "python playground.py" in unnamed
    assert "None" not in unnamed.split('"""')[1]
    # the script is written as the playground's own code is: ruff-clean and ruff-formatted
    for source in (named, reproduce_script(RICH_CONFIGS["sgd-l2-kernel5"])):
        for command in (["check", "-"], ["format", "--check", "-"]):
            ruff = [sys.executable, "-m", "ruff", *command, "--line-length", "100"]
            out = subprocess.run(ruff, input=source, capture_output=True, text=True)
            assert out.returncode == 0, out.stdout + out.stderr
