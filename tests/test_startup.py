"""Start-up paid once: the decompressed copy of Debian's Fashion-MNIST (core.data.idx_cache) gives
exactly the arrays and fingerprint of the normal read, is rewritten when damaged or stale, and
never stands in the way; the CLI starts without Keras, pandas or PIL, and Keras without pandas.
Real files throughout, each test with its own cache folder.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core.data import dataset, idx_cache, sources
from core.data.sources import IDX_FILES, load_from_sources, load_idx_dir
from core.spec.presets import PRESETS

ROOT = Path(__file__).resolve().parent.parent
DEBIAN = sources.DEBIAN_DIR / "fashion-mnist"
KEYS = ("x_train", "y_train", "x_test", "y_test")


@pytest.fixture(scope="module")
def reference():
    """The normal read of Debian's files, no cache involved: (Dataset, its fingerprint)."""
    assert DEBIAN.is_dir(), "apt-get install dataset-fashion-mnist: these tests read its files"
    source = sources.Source("debian", str(DEBIAN), lambda: load_idx_dir(DEBIAN))
    data = load_from_sources("fashion_mnist", [source])
    return data, data.fingerprint


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """An empty cache folder of the user's (XDG_CACHE_HOME) for this test alone."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg" / "playground-data"


class Counting:
    """A folder of IDX files as a source, counting how often its files are really read."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.reads = folder, 0

    def load(self):
        self.reads += 1
        return load_idx_dir(self.folder)

    def __call__(self):
        source = sources.Source("debian", str(self.folder), self.load, idx_folder=self.folder)
        return load_from_sources("fashion_mnist", [source])


def assert_same(data, reference) -> None:
    expected, fingerprint = reference
    for key in KEYS:
        got, want = getattr(data, key), getattr(expected, key)
        assert got.dtype == want.dtype and got.shape == want.shape
        assert np.array_equal(got, want), key
        assert not got.flags.writeable  # read-only, as the normal read's arrays are
    assert data.fingerprint == fingerprint
    assert (data.source, data.source_detail) == (expected.source, expected.source_detail)


def the_copy(cache: Path) -> Path:
    (path,) = cache.glob("fashion_mnist-*.idx")
    return path


def test_a_cache_hit_gives_the_same_arrays_fingerprint_and_run_ids(cache, reference):
    read = Counting(DEBIAN)
    first = read()
    assert read.reads == 1 and the_copy(cache).stat().st_size > 50_000_000
    assert_same(first, reference)
    second = read()
    assert read.reads == 1, "the second load must come from the copy"
    assert "fingerprint" in second.__dict__  # kept beside the copy, not hashed again
    assert_same(second, reference)
    for config in PRESETS.values():
        assert config.run_id_for(second.fingerprint) == config.run_id_for(reference[1])


def flip_a_pixel(path: Path) -> None:
    middle = path.stat().st_size // 2  # inside the training images
    with open(path, "r+b") as f:
        f.seek(middle)
        byte = f.read(1)
        f.seek(middle)
        f.write(bytes([byte[0] ^ 0x01]))


def flip_the_header(path: Path) -> None:
    raw = bytearray(path.read_bytes()[:200])
    raw[60] ^= 0x01
    with open(path, "r+b") as f:
        f.write(raw)


def cut_in_half(path: Path) -> None:
    os.truncate(path, path.stat().st_size // 2)


def append(path: Path) -> None:
    with open(path, "ab") as f:
        f.write(b"more")


def empty(path: Path) -> None:
    path.write_bytes(b"")


def not_a_copy(path: Path) -> None:
    path.write_bytes(b"garbage " * 1000)


@pytest.mark.parametrize(
    "damage", [flip_a_pixel, flip_the_header, cut_in_half, append, empty, not_a_copy]
)
def test_a_damaged_copy_is_ignored_and_rewritten(cache, reference, damage):
    read = Counting(DEBIAN)
    read()
    copy = the_copy(cache)
    damage(copy)
    assert_same(read(), reference)
    assert read.reads == 2, "a damaged copy must never answer"
    assert_same(read(), reference)
    assert read.reads == 2, "the damaged copy was rewritten, and the new one answers"
    assert the_copy(cache) == copy


def test_changed_source_files_are_read_again(cache, reference, tmp_path):
    folder = tmp_path / "fashion-mnist"
    shutil.copytree(DEBIAN, folder)
    read = Counting(folder)
    first = read()
    assert read.reads == 1 and first.source_detail == str(folder)
    os.utime(folder / IDX_FILES["y_test"])  # the same bytes, touched: no longer provably the same
    read()
    assert read.reads == 2
    path = folder / IDX_FILES["y_test"]  # other labels: the copy must not hide them
    labels = bytearray(gzip.decompress(path.read_bytes()))
    labels[8:18] = bytes((labels[8 + i] + 1) % 10 for i in range(10))
    path.write_bytes(gzip.compress(bytes(labels)))
    changed = read()
    assert read.reads == 3
    assert np.array_equal(changed.y_test[10:], reference[0].y_test[10:])
    assert not np.array_equal(changed.y_test[:10], reference[0].y_test[:10])
    assert changed.fingerprint != reference[1]
    assert changed.fingerprint == dataset.content_fingerprint(
        "fashion_mnist", {key: getattr(changed, key) for key in KEYS}
    )
    Counting(DEBIAN)()
    assert len(list(cache.glob("fashion_mnist-*.idx"))) == 2  # one copy per source folder


def test_a_copy_goes_when_its_source_folder_goes(cache, reference, tmp_path):
    folder = tmp_path / "fashion-mnist"
    shutil.copytree(DEBIAN, folder)
    Counting(folder)()
    gone = the_copy(cache)
    shutil.rmtree(folder)
    assert_same(Counting(DEBIAN)(), reference)  # writing the next copy sweeps the dead one
    assert not gone.exists() and the_copy(cache) != gone


@pytest.mark.parametrize("where", ["proc", "under-a-file"])
def test_a_cache_folder_that_cannot_be_written_is_no_obstacle(
    reference, tmp_path, monkeypatch, capfd, where
):
    if where == "proc":  # exists, and nobody may make a folder in it, root neither
        monkeypatch.setenv("XDG_CACHE_HOME", "/proc")
    else:  # cannot exist: a file is where a folder would have to be
        (tmp_path / "a-file").write_text("")
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "a-file" / "cache"))
    read = Counting(DEBIAN)
    assert_same(read(), reference)
    assert_same(read(), reference)
    assert read.reads == 2
    assert capfd.readouterr() == ("", "")  # silently


def test_a_missing_cache_folder_is_made_and_a_read_only_copy_still_answers(cache, reference):
    assert not cache.parent.exists()
    read = Counting(DEBIAN)
    read()
    copy = the_copy(cache)
    copy.chmod(0o444)
    cache.chmod(0o555)
    try:
        assert_same(read(), reference)
        assert read.reads == 1
    finally:
        cache.chmod(0o755)


def test_a_kept_fingerprint_of_another_rule_is_never_used(cache, reference, monkeypatch):
    read = Counting(DEBIAN)
    read()
    rule = dataset.content_fingerprint
    monkeypatch.setattr(dataset, "content_fingerprint", lambda tag, arrays: rule(tag, arrays)[::-1])
    data = read()
    assert data.fingerprint == reference[1][::-1], "the new rule's value, not the kept one"
    assert read.reads == 2


def test_small_folders_are_not_copied(cache, reference, tmp_path):
    folder = tmp_path / "small"
    folder.mkdir()
    data = reference[0]
    parts = {"x_train": data.x_train[:300], "y_train": data.y_train[:300]}
    parts |= {"x_test": data.x_test[:100], "y_test": data.y_test[:100]}
    for key, name in IDX_FILES.items():
        header = (2051 if key.startswith("x") else 2049).to_bytes(4, "big")
        header += b"".join(n.to_bytes(4, "big") for n in parts[key].shape)
        (folder / name).write_bytes(gzip.compress(header + parts[key].tobytes()))
    read = Counting(folder)
    assert len(read().x_train) == 300
    assert not cache.exists() or not list(cache.iterdir())


def test_the_copy_says_what_it_holds(cache, reference):
    Counting(DEBIAN)()
    raw = the_copy(cache).read_bytes()
    _, length, _ = idx_cache.PREFIX.unpack_from(raw)
    header = json.loads(raw[idx_cache.PREFIX.size : idx_cache.PREFIX.size + length])
    assert header["fingerprint"] == reference[1] and header["dataset"] == "fashion_mnist"
    assert [shape for _, shape, _ in header["arrays"]] == [
        [60000, 28, 28],
        [60000],
        [10000, 28, 28],
        [10000],
    ]
    assert [path for path, *_ in header["sources"]] == [
        str((DEBIAN / name).resolve()) for name in IDX_FILES.values()
    ]


def run_python(code: str) -> str:
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout.strip()


def test_the_cli_starts_without_keras_pandas_or_pil():
    loaded = run_python(
        "import sys; import core.cli.main as m; m.make_parser()\n"
        "print(sorted({'keras', 'pandas', 'PIL', 'optuna', 'ray'} & set(sys.modules)))"
    )
    assert loaded == "[]"


def test_keras_starts_without_pandas_frozen_and_pandas_still_imports_afterwards():
    answer = run_python(
        "import sys\n"
        "from core.runtime import import_keras, use_backend\n"
        "use_backend('jax'); import_keras()\n"
        "before = 'pandas' in sys.modules\n"
        "import gc, pandas\n"
        "from core.learn.evaluation import per_class_report\n"
        "report = per_class_report([[3, 1], [0, 4]], ('a', 'b'))\n"
        "print(before, type(report).__name__, report['support'].tolist())\n"
        "print(gc.get_freeze_count())"
    )
    pandas, frozen = answer.splitlines()
    assert pandas == "False DataFrame [4, 4]"
    assert int(frozen) > 50_000  # Keras's own objects, out of every later full collection


def test_pandas_imported_first_is_what_keras_sees():
    answer = run_python(
        "import pandas\n"
        "from core.runtime import import_keras, use_backend\n"
        "use_backend('jax'); import_keras()\n"
        "from keras.src.trainers.data_adapters import array_slicing\n"
        "print(array_slicing.pandas is pandas)"
    )
    assert answer == "True"
