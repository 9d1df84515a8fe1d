"""Data sources in their fixed order, broken files that are named and skipped, and the bundled
sample as the last resort. The files are real Fashion-MNIST images written by the test."""

from __future__ import annotations

import gzip
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core.data import sources
from core.data.dataset import DataError, DatasetUnavailable
from core.data.registry import describe_source
from core.data.sources import FASHION_CLASSES, IDX_FILES, load_from_sources, read_idx, sample_path

ROOT = Path(__file__).resolve().parent.parent


def write_idx_dir(folder: Path, data, n_train=300, n_test=100) -> Path:
    """Write the first images of the real set as the four original gzipped IDX files."""
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        "x_train": data.x_train[:n_train],
        "y_train": data.y_train[:n_train],
        "x_test": data.x_test[:n_test],
        "y_test": data.y_test[:n_test],
    }
    for key, name in IDX_FILES.items():
        array = arrays[key]
        if key.startswith("x"):
            header = struct.pack(">iiii", 2051, *array.shape)
        else:
            header = struct.pack(">ii", 2049, len(array))
        (folder / name).write_bytes(gzip.compress(header + array.tobytes()))
    return folder


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No real source is visible: empty Keras home, a missing Debian dir, downloads off."""
    monkeypatch.delenv("PLAYGROUND_DATA_DIR", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))
    monkeypatch.setattr(sources, "DEBIAN_DIR", tmp_path / "no-debian")
    monkeypatch.setenv("PLAYGROUND_NO_DOWNLOAD", "1")
    return tmp_path


def load():
    return load_from_sources("fashion_mnist", sources.DATASETS["fashion_mnist"].sources())


def test_full_set_from_debian_package(full_data):
    assert full_data.x_train.shape == (60_000, 28, 28) and full_data.x_train.dtype == np.uint8
    assert full_data.x_test.shape == (10_000, 28, 28)
    assert np.bincount(full_data.y_train).tolist() == [6000] * 10
    assert full_data.class_names == FASHION_CLASSES
    assert full_data.input_shape == (28, 28) and full_data.num_classes == 10


def test_source_order(isolated, monkeypatch, full_data):
    env_dir = write_idx_dir(isolated / "env", full_data, n_train=200)
    cache_dir = write_idx_dir(
        isolated / "keras-home" / "datasets" / "fashion-mnist", full_data, 250
    )
    debian_dir = write_idx_dir(isolated / "no-debian" / "fashion-mnist", full_data, n_train=300)

    monkeypatch.setenv("PLAYGROUND_DATA_DIR", str(env_dir))
    data = load()
    assert (data.source, len(data.x_train)) == ("env", 200)

    monkeypatch.delenv("PLAYGROUND_DATA_DIR")
    data = load()
    assert (data.source, len(data.x_train), data.source_detail) == (
        "keras-cache",
        250,
        str(cache_dir),
    )
    np.testing.assert_array_equal(data.x_train, full_data.x_train[:250])

    for f in cache_dir.iterdir():
        f.unlink()
    data = load()
    assert (data.source, len(data.x_train)) == ("debian", 300)
    assert str(debian_dir) in data.source_detail

    for f in debian_dir.iterdir():
        f.unlink()
    data = load()
    assert data.source == "sample" and data.is_sample
    tried = [p.split(":")[0] for p in data.problems]
    assert tried == ["keras-cache", "debian", "download"]
    assert "switched off" in data.problems[-1]
    assert "bundled sample" in describe_source(data)
    assert "apt-get install dataset-fashion-mnist" in describe_source(data)


def corrupt_truncated(path: Path):
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])


def corrupt_short_payload(path: Path):
    raw = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(raw[:-100]))


def corrupt_magic(path: Path):
    raw = bytearray(gzip.decompress(path.read_bytes()))
    raw[3] = 0x99
    path.write_bytes(gzip.compress(bytes(raw)))


def corrupt_not_gzip(path: Path):
    path.write_bytes(b"this is not a gzip file at all")


def corrupt_count(path: Path):
    raw = gzip.decompress(path.read_bytes())
    n = struct.unpack(">i", raw[4:8])[0]
    path.write_bytes(gzip.compress(struct.pack(">ii", 2049, n - 10) + raw[8 : 8 + n - 10]))


@pytest.mark.parametrize(
    "target, damage, fault",
    [
        ("x_train", corrupt_truncated, "truncated"),
        ("x_test", corrupt_short_payload, "truncated or padded"),
        ("y_train", corrupt_magic, "wrong IDX magic number"),
        ("x_train", corrupt_not_gzip, "not a valid gzip file"),
        ("y_test", corrupt_count, "labels for 100 images"),
        ("y_train", Path.unlink, "missing"),
    ],
)
def test_broken_source_is_named_and_skipped(isolated, full_data, target, damage, fault):
    cache_dir = write_idx_dir(isolated / "keras-home" / "datasets" / "fashion-mnist", full_data)
    write_idx_dir(isolated / "no-debian" / "fashion-mnist", full_data, n_train=400)
    damage(cache_dir / IDX_FILES[target])
    data = load()
    assert (data.source, len(data.x_train)) == ("debian", 400)  # fell through to the next one
    problem = data.problems[0]
    assert problem.startswith("keras-cache: ")
    assert fault in problem
    assert str(cache_dir) in problem  # the message names the file (or its folder)


def test_read_idx_rejects_label_file_as_images(full_data, tmp_path):
    folder = write_idx_dir(tmp_path / "d", full_data)
    with pytest.raises(DataError, match="wrong IDX magic number 2049"):
        read_idx(folder / IDX_FILES["y_train"], 2051)


def test_nothing_at_all_is_a_clear_error(isolated, monkeypatch, tmp_path):
    monkeypatch.setattr(sources, "DATA_DIR", tmp_path / "no-sample")
    with pytest.raises(DatasetUnavailable) as info:
        load()
    assert "No source of Fashion-MNIST could be loaded" in str(info.value)
    assert "bundled sample is missing" in str(info.value)


def test_bundled_sample_is_real_stratified_and_small(full_data):
    path = sample_path("fashion_mnist")
    # The issue asks for at most 2 MB. 6,000 real images do not fit: xz on column-major pixels
    # gives 2.14 MB (WebP/PNG/JPEG 2000 lossless, bz2 and context models did worse; see
    # data/make_sample.py). This bound keeps the file from growing past what was measured.
    assert path.stat().st_size <= 2_150_000
    x_train, y_train, x_test, y_test = sources.load_sample(path)
    assert np.bincount(y_train, minlength=10).min() >= 500
    assert np.bincount(y_test, minlength=10).min() >= 100
    # real images: each sample image is one of the full set's, with the same label
    full_index = {img.tobytes(): label for img, label in zip(full_data.x_train, full_data.y_train)}
    assert all(full_index.get(img.tobytes()) == label for img, label in zip(x_train, y_train))
    test_index = {img.tobytes(): label for img, label in zip(full_data.x_test, full_data.y_test)}
    assert all(test_index.get(img.tobytes()) == label for img, label in zip(x_test, y_test))


def test_sample_script_reproduces_the_file(tmp_path, full_data):
    """data/make_sample.py rebuilds the bundled file byte for byte from the full set."""
    rebuilt = tmp_path / "sample.npz.xz"
    subprocess.run(
        [sys.executable, str(ROOT / "data" / "make_sample.py"), "--out", str(rebuilt)],
        check=True,
        capture_output=True,
    )
    assert rebuilt.read_bytes() == sample_path("fashion_mnist").read_bytes()


def test_mnist_is_a_registry_entry(isolated, full_data):
    """MNIST loads from Keras's mnist.npz; its input shape comes from the data."""
    folder = isolated / "keras-home" / "datasets"
    folder.mkdir(parents=True)
    np.savez(
        folder / "mnist.npz",
        x_train=full_data.x_train[:50],
        y_train=full_data.y_train[:50],
        x_test=full_data.x_test[:20],
        y_test=full_data.y_test[:20],
    )
    data = load_from_sources("mnist", sources.DATASETS["mnist"].sources())
    assert data.source == "keras-cache" and data.class_names[3] == "3"
    assert data.input_shape == (28, 28) and len(data.x_test) == 20


# What the fingerprints of the two built-in sources were when the layout moved (main at dc151c5).
# Every stored run id includes its data's fingerprint: if one of these changes, every run a person
# stored stops being found, so a change here needs a CONFIG_VERSION-like migration, not a new value.
FULL_SET_FINGERPRINT = "6e9cd78fd18a1214"
SAMPLE_FINGERPRINT = "d019a1d465a55337"


def test_fingerprints_stay_byte_for_byte(full_data):
    assert full_data.fingerprint == FULL_SET_FINGERPRINT
    sample = load_from_sources(
        "fashion_mnist",
        [
            sources.Source(
                "sample", "bundled", lambda: sources.load_sample(sample_path("fashion_mnist"))
            )
        ],
    )
    assert sample.is_sample and sample.fingerprint == SAMPLE_FINGERPRINT
