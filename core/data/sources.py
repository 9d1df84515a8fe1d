"""The built-in datasets: real Fashion-MNIST (and MNIST) from whichever source is present.

Sources are tried in a fixed order and the first one that loads cleanly wins; a broken source is
reported (file and fault) and skipped. The last resort is a small real sample shipped in data/, so
the playground always starts, offline too.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import lzma
import os
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.data import idx_cache
from core.data.dataset import DataError, Dataset, DatasetUnavailable
from core.home import data_folder, downloads_allowed

REPO_ROOT = Path(__file__).resolve().parents[2]  # core/data/sources.py -> the checkout
DATA_DIR = REPO_ROOT / "data"
DEBIAN_DIR = Path("/usr/share/datasets")

IDX_IMAGES_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions
IDX_LABELS_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension

# The four files of the original distribution; Keras's cache and Debian's package use these names.
IDX_FILES = {
    "x_train": "train-images-idx3-ubyte.gz",
    "y_train": "train-labels-idx1-ubyte.gz",
    "x_test": "t10k-images-idx3-ubyte.gz",
    "y_test": "t10k-labels-idx1-ubyte.gz",
}

FASHION_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
DIGIT_CLASSES = tuple(str(d) for d in range(10))


@dataclass(frozen=True)
class Source:
    """One place a dataset may be found. `load` returns the four arrays or raises DataError."""

    key: str
    detail: str
    load: Callable[[], tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]
    # A folder of IDX files (what `load` reads): its decompressed copy in the user's cache
    # answers first while it matches the files (core.data.idx_cache).
    idx_folder: Path | None = None


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    title: str
    class_names: tuple[str, ...]
    sources: Callable[[], list[Source]] = field(repr=False)
    full_set_hint: str = ""


def _read_bytes(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc.strerror or exc}).") from None
    if path.suffix == ".gz":
        try:
            return gzip.decompress(raw)
        except (EOFError, OSError, zlib.error) as exc:
            fault = "truncated" if isinstance(exc, EOFError) else "not a valid gzip file"
            raise DataError(f"{path}: the file is {fault} ({exc}).") from None
    return raw


def read_idx(path: Path, expected_magic: int) -> np.ndarray:
    """Parse one IDX file (optionally gzipped) into a uint8 array, checking magic and length."""
    raw = _read_bytes(path)
    ndim = 3 if expected_magic == IDX_IMAGES_MAGIC else 1
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: the file is truncated ({len(raw)} bytes, no complete header).")
    magic = struct.unpack(">i", raw[:4])[0]
    if magic != expected_magic:
        kind = "image" if expected_magic == IDX_IMAGES_MAGIC else "label"
        raise DataError(
            f"{path}: wrong IDX magic number {magic} (an {kind} file starts with {expected_magic})."
        )
    dims = struct.unpack(">" + "i" * ndim, raw[4:header])
    expected = int(np.prod(dims))
    if len(raw) - header != expected:
        raise DataError(
            f"{path}: the file is truncated or padded: the header promises {expected} bytes of "
            f"data for shape {dims}, the file holds {len(raw) - header}."
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def idx_paths(directory: Path) -> dict[str, Path]:
    """The four IDX files of a Fashion-MNIST-style directory, each gzipped or not."""
    if not directory.is_dir():
        raise DataError(f"{directory}: no such directory.")
    paths = {}
    for key, filename in IDX_FILES.items():
        path = directory / filename
        if not path.exists() and (directory / filename.removesuffix(".gz")).exists():
            path = directory / filename.removesuffix(".gz")
        if not path.exists():
            raise DataError(f"{path}: the file is missing.")
        paths[key] = path
    return paths


def load_idx_dir(directory: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Load the four IDX files of a Fashion-MNIST-style directory."""
    arrays = {}
    for key, path in idx_paths(directory).items():
        magic = IDX_IMAGES_MAGIC if key.startswith("x") else IDX_LABELS_MAGIC
        arrays[key] = read_idx(path, magic)
    for split in ("train", "test"):
        n_images, n_labels = len(arrays[f"x_{split}"]), len(arrays[f"y_{split}"])
        if n_images != n_labels:
            raise DataError(
                f"{directory / IDX_FILES['y_' + split]}: {n_labels} labels for {n_images} images "
                f"in {IDX_FILES['x_' + split]}."
            )
    return arrays["x_train"], arrays["y_train"], arrays["x_test"], arrays["y_test"]


def load_npz(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Load Keras's mnist.npz layout (x_train, y_train, x_test, y_test)."""
    if not path.exists():
        raise DataError(f"{path}: the file is missing.")
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = tuple(np.asarray(f[k], dtype=np.uint8) for k in IDX_FILES)
    except Exception as exc:  # zipfile, KeyError, ValueError: all mean a damaged file
        raise DataError(f"{path}: the file is damaged ({type(exc).__name__}: {exc}).") from None
    if len(arrays[0]) != len(arrays[1]) or len(arrays[2]) != len(arrays[3]):
        raise DataError(f"{path}: image and label counts differ.")
    return arrays  # type: ignore[return-value]


def sample_path(name: str) -> Path:
    return DATA_DIR / f"{name}-sample.npz.xz"


def write_sample(path: Path, x_train, y_train, x_test, y_test) -> None:
    """Store a sample as an xz-compressed .npz; images column-major (xz models them better)."""
    buffer = io.BytesIO()
    np.savez(
        buffer,
        x_train=np.ascontiguousarray(x_train.transpose(0, 2, 1)),
        y_train=y_train,
        x_test=np.ascontiguousarray(x_test.transpose(0, 2, 1)),
        y_test=y_test,
    )
    filters = [{"id": lzma.FILTER_LZMA2, "preset": 9 | lzma.PRESET_EXTREME, "lc": 4, "pb": 0}]
    path.write_bytes(lzma.compress(buffer.getvalue(), format=lzma.FORMAT_XZ, filters=filters))


def load_sample(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    if not path.exists():
        raise DataError(f"{path}: the bundled sample is missing from this checkout.")
    try:
        raw = lzma.decompress(path.read_bytes())
        with np.load(io.BytesIO(raw), allow_pickle=False) as f:
            x_train = np.ascontiguousarray(f["x_train"].transpose(0, 2, 1))
            x_test = np.ascontiguousarray(f["x_test"].transpose(0, 2, 1))
            return x_train, f["y_train"], x_test, f["y_test"]
    except Exception as exc:
        raise DataError(f"{path}: the bundled sample is damaged ({exc}).") from None


def keras_home() -> Path:
    return Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras")


def _keras_download(module: str) -> Callable:
    def load():
        if not downloads_allowed():
            raise DataError("downloading is switched off (PLAYGROUND_NO_DOWNLOAD is set).")
        from core.runtime import import_keras  # only here: the other sources need no Keras

        keras = import_keras()

        try:
            (x_train, y_train), (x_test, y_test) = getattr(keras.datasets, module).load_data()
        except Exception as exc:  # no network shows up as many different exception types
            raise DataError(f"download failed ({type(exc).__name__}: {exc}).") from None
        return x_train, y_train, x_test, y_test

    return load


def idx_source(key: str, folder: Path) -> Source:
    """A folder of IDX files as a source (its decompressed copy is kept: core.data.idx_cache)."""
    return Source(key, str(folder), lambda: load_idx_dir(folder), idx_folder=folder)


def _env_sources(variable: str) -> list[Source]:
    """A folder of IDX files named by an environment variable, first in line when set."""
    folder = data_folder(variable)
    return [idx_source("env", Path(folder))] if folder else []


def _fashion_sources() -> list[Source]:
    sources = _env_sources("PLAYGROUND_DATA_DIR")
    cache = keras_home() / "datasets" / "fashion-mnist"
    debian = DEBIAN_DIR / "fashion-mnist"
    sample = sample_path("fashion_mnist")
    sources += [
        idx_source("keras-cache", cache),
        idx_source("debian", debian),
        Source("download", "keras.datasets.fashion_mnist", _keras_download("fashion_mnist")),
        Source("sample", str(sample), lambda: load_sample(sample)),
    ]
    return sources


def _mnist_sources() -> list[Source]:
    sources = _env_sources("PLAYGROUND_MNIST_DIR")
    cache = keras_home() / "datasets" / "mnist.npz"
    sources += [
        Source("keras-cache", str(cache), lambda: load_npz(cache)),
        Source("download", "keras.datasets.mnist", _keras_download("mnist")),
    ]
    return sources


DATASETS: dict[str, DatasetSpec] = {
    "fashion_mnist": DatasetSpec(
        name="fashion_mnist",
        title="Fashion-MNIST",
        class_names=FASHION_CLASSES,
        sources=_fashion_sources,
        full_set_hint=(
            "For the full 70,000 images install Debian's package (sudo apt-get install "
            "dataset-fashion-mnist), or set PLAYGROUND_DATA_DIR to a folder holding the four "
            "original .gz files."
        ),
    ),
    "mnist": DatasetSpec(
        name="mnist",
        title="MNIST digits",
        class_names=DIGIT_CLASSES,
        sources=_mnist_sources,
        full_set_hint="Place Keras's mnist.npz in ~/.keras/datasets/ (or let Keras download it).",
    ),
}


def load_from_sources(name: str, sources: list[Source]) -> Dataset:
    """Try each source in order; return the first that loads, remembering why others failed."""
    spec = DATASETS[name]
    problems: list[str] = []
    for source in sources:
        try:
            return _load(name, source, tuple(problems))
        except DataError as exc:
            problems.append(f"{source.key}: {exc}")
    raise DatasetUnavailable(
        f"No source of {spec.title} could be loaded. Tried:\n  " + "\n  ".join(problems)
    )


def _load(name: str, source: Source, problems: tuple[str, ...]) -> Dataset:
    """One source's Dataset. A folder of IDX files is answered from its decompressed copy while
    that matches the files (0.26 s of gunzip spared on every start), else read and then kept."""
    folder, key = source.idx_folder, None
    if folder is not None:
        with contextlib.suppress(DataError):  # a missing file: source.load() says so below
            key = idx_cache.source_key(list(idx_paths(folder).values()))
    cached = idx_cache.read(name, folder, key) if key else None
    arrays, fingerprint = cached if cached else (source.load(), "")
    x_train, y_train, x_test, y_test = arrays
    data = Dataset(
        name=name,
        x_train=x_train,
        y_train=np.asarray(y_train, dtype=np.uint8),
        x_test=x_test,
        y_test=np.asarray(y_test, dtype=np.uint8),
        class_names=DATASETS[name].class_names,
        source=source.key,
        source_detail=source.detail,
        problems=problems,
    )
    if fingerprint:
        return data.with_known_fingerprint(fingerprint)
    if key:
        idx_cache.write(name, folder, key, data)
    return data
