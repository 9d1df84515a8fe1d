"""Dataset registry and loaders: real Fashion-MNIST (and MNIST) from whichever source is present.

Sources are tried in a fixed order and the first one that loads cleanly wins; a broken source is
reported (file and fault) and skipped. The last resort is a small real sample shipped in data/, so
the playground always starts, offline too.

Datasets people import (core.imports) join the registry beside the built-in ones: dataset_names()
lists them after the built-ins and load_dataset() loads them through the same Dataset type, so
every page and command works with them without asking where the data came from.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import io
import json
import lzma
import os
import struct
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
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


class DataError(Exception):
    """A data source exists but cannot be used; the message names the file and the fault."""


class DatasetUnavailable(Exception):
    """No source of a dataset could be loaded; the message lists what was tried."""


@dataclass(frozen=True)
class Dataset:
    """Images as uint8 arrays (N, H, W), labels as uint8 (N,), and where they came from."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]
    source: str  # short key: env, keras-cache, debian, download, sample, imported
    source_detail: str  # where exactly (a path or a sentence)
    problems: tuple[str, ...] = ()  # sources tried before this one and why they failed
    # How pictures become input: "fashion" (28x28 grey, light on dark; the built-ins) or "plain"
    # (colour squares, letterboxed); an uploaded picture is prepared the same way (imports.py).
    mode: str = "fashion"

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def channels(self) -> int:
        return 1 if self.x_train.ndim == 3 else int(self.x_train.shape[-1])

    @property
    def is_sample(self) -> bool:
        return self.source == "sample"

    @property
    def is_imported(self) -> bool:
        return self.source == "imported"

    @functools.cached_property
    def fingerprint(self) -> str:
        """Identity of the content (not the source): part of every run id trained on it.

        The same images from Keras's cache or Debian's folder give the same fingerprint; the
        bundled sample and the full set give different ones. About 0.1 s for Fashion-MNIST.
        An imported dataset's is its folder's name; renaming the dataset does not change it.
        """
        tag = imported_tag(self.mode, self.class_names) if self.is_imported else self.name
        arrays = {"x_train": self.x_train, "y_train": self.y_train}
        arrays |= {"x_test": self.x_test, "y_test": self.y_test}
        return content_fingerprint(tag, arrays)


def content_fingerprint(tag: str, arrays: dict[str, np.ndarray]) -> str:
    """sha256 of a tag and the four arrays (dtype, shape and bytes), 16 hex digits."""
    digest = hashlib.sha256(tag.encode())
    for key in ("x_train", "y_train", "x_test", "y_test"):
        array = arrays[key]
        digest.update(str((array.dtype.str, array.shape)).encode())
        digest.update(np.ascontiguousarray(array).data)
    return digest.hexdigest()[:16]


def imported_tag(mode: str, class_names) -> str:
    """What an imported dataset's fingerprint covers besides the pixels: not its (changeable)
    name, but how the pictures were prepared and what the classes are called."""
    return "imported:" + json.dumps([mode, list(class_names)], ensure_ascii=False)


@dataclass(frozen=True)
class Source:
    """One place a dataset may be found. `load` returns the four arrays or raises DataError."""

    key: str
    detail: str
    load: Callable[[], tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    title: str
    class_names: tuple[str, ...]
    sources: Callable[[], list[Source]] = field(repr=False)
    full_set_hint: str = ""


# ----------------------------------------------------------------------------- IDX files


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


def load_idx_dir(directory: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Load the four IDX files of a Fashion-MNIST-style directory."""
    if not directory.is_dir():
        raise DataError(f"{directory}: no such directory.")
    arrays = {}
    for key, filename in IDX_FILES.items():
        path = directory / filename
        if not path.exists() and (directory / filename.removesuffix(".gz")).exists():
            path = directory / filename.removesuffix(".gz")
        if not path.exists():
            raise DataError(f"{path}: the file is missing.")
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


# ----------------------------------------------------------------------------- bundled sample


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


# ----------------------------------------------------------------------------- registry


def keras_home() -> Path:
    return Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras")


def _keras_download(module: str) -> Callable:
    def load():
        if os.environ.get("PLAYGROUND_NO_DOWNLOAD"):
            raise DataError("downloading is switched off (PLAYGROUND_NO_DOWNLOAD is set).")
        os.environ.setdefault("KERAS_BACKEND", "tensorflow")
        import keras  # only here: every other source works without TensorFlow

        try:
            (x_train, y_train), (x_test, y_test) = getattr(keras.datasets, module).load_data()
        except Exception as exc:  # no network shows up as many different exception types
            raise DataError(f"download failed ({type(exc).__name__}: {exc}).") from None
        return x_train, y_train, x_test, y_test

    return load


def _env_sources(variable: str) -> list[Source]:
    """A folder of IDX files named by an environment variable, first in line when set."""
    folder = os.environ.get(variable)
    return [Source("env", folder, lambda: load_idx_dir(Path(folder)))] if folder else []


def _fashion_sources() -> list[Source]:
    sources = _env_sources("PLAYGROUND_DATA_DIR")
    cache = keras_home() / "datasets" / "fashion-mnist"
    debian = DEBIAN_DIR / "fashion-mnist"
    sample = sample_path("fashion_mnist")
    sources += [
        Source("keras-cache", str(cache), lambda: load_idx_dir(cache)),
        Source("debian", str(debian), lambda: load_idx_dir(debian)),
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

_cache: dict[str, Dataset] = {}
_cache_lock = threading.Lock()


def dataset_names(home: str | Path | None = None) -> list[str]:
    """The built-in datasets' names, then the imported ones' (oldest first)."""
    from core.imports import list_datasets

    return list(DATASETS) + [info.name for info in list_datasets(home)]


def dataset_title(name: str) -> str:
    """For select boxes: a built-in dataset's title, an imported one's name."""
    return DATASETS[name].title if name in DATASETS else name


def known_dataset(name: str, home: str | Path | None = None) -> bool:
    """Whether load_dataset can be asked for this name: built-in, imported, or loaded here."""
    if name in DATASETS:
        return True
    with _cache_lock:
        if any(data.name == name for data in _imported_cache.values()):
            return True
    from core.imports import find_dataset

    return find_dataset(name, home) is not None


def load_from_sources(name: str, sources: list[Source]) -> Dataset:
    """Try each source in order; return the first that loads, remembering why others failed."""
    spec = DATASETS[name]
    problems = []
    for source in sources:
        try:
            x_train, y_train, x_test, y_test = source.load()
        except DataError as exc:
            problems.append(f"{source.key}: {exc}")
            continue
        return Dataset(
            name=name,
            x_train=x_train,
            y_train=np.asarray(y_train, dtype=np.uint8),
            x_test=x_test,
            y_test=np.asarray(y_test, dtype=np.uint8),
            class_names=spec.class_names,
            source=source.key,
            source_detail=source.detail,
            problems=tuple(problems),
        )
    raise DatasetUnavailable(
        f"No source of {spec.title} could be loaded. Tried:\n  " + "\n  ".join(problems)
    )


def load_dataset(
    name: str = "fashion_mnist", *, refresh: bool = False, home: str | Path | None = None
) -> Dataset:
    """Load a registered dataset from the first working source; cached for the process.

    A name that is not built in is looked up among the datasets imported into `home` (default:
    PLAYGROUND_HOME); each call looks again, so a rename, delete or re-import shows at once.
    """
    if name not in DATASETS:
        return _load_imported(name, home, refresh)
    with _cache_lock:
        if refresh or name not in _cache:
            _cache[name] = load_from_sources(name, DATASETS[name].sources())
        return _cache[name]


# (home, dataset id, name) -> Dataset; cleared whenever a dataset is imported, renamed or deleted
_imported_cache: dict[tuple[str, str, str], Dataset] = {}
IMPORTED_CACHE_SIZE = 2  # an imported set may take hundreds of megabytes


def forget_imported() -> None:
    """Drop every imported dataset loaded in this process (core.imports calls it on changes)."""
    with _cache_lock:
        _imported_cache.clear()


def _load_imported(name: str, home, refresh: bool) -> Dataset:
    from core.imports import ImportRefused, find_dataset, load_arrays

    info = find_dataset(name, home)
    if info is None:
        known = ", ".join(dataset_names(home))
        raise DatasetUnavailable(f"Unknown dataset '{name}'. Choose one of: {known}.")
    key = (str(info.path), info.dataset_id, info.name)
    with _cache_lock:
        if not refresh and key in _imported_cache:
            return _imported_cache[key]
    try:
        arrays = load_arrays(info)
    except ImportRefused as exc:
        raise DatasetUnavailable(f"The dataset '{info.name}' cannot be loaded: {exc}") from None
    data = Dataset(
        name=info.name,
        x_train=arrays["x_train"],
        y_train=np.asarray(arrays["y_train"], dtype=np.uint8),
        x_test=arrays["x_test"],
        y_test=np.asarray(arrays["y_test"], dtype=np.uint8),
        class_names=info.class_names,
        source="imported",
        source_detail=str(info.path),
        mode=info.mode,
    )
    if data.fingerprint != info.dataset_id:  # the arrays changed since the import
        raise DatasetUnavailable(
            f"The dataset '{info.name}' is damaged: {info.path} no longer holds the pictures "
            "it was imported with. Delete it and import it again."
        )
    with _cache_lock:
        while len(_imported_cache) >= IMPORTED_CACHE_SIZE:
            _imported_cache.pop(next(iter(_imported_cache)))
        _imported_cache[key] = data
    return data


def describe_source(data: Dataset) -> str:
    """One sentence for people: which data is in use, and how to get the full set if needed."""
    sizes = f"{len(data.x_train):,} training and {len(data.x_test):,} test images"
    if data.is_imported:
        from core.imports import MODES, info_at

        info = info_at(Path(data.source_detail))
        where = f" ({info.source})" if info is not None and info.source else ""
        shape = "x".join(map(str, data.input_shape))
        return (
            f"Your dataset '{data.name}'{where}: {data.num_classes} classes, {sizes}, "
            f"prepared {MODES.get(data.mode, data.mode)} ({shape})."
        )
    spec = DATASETS[data.name]
    if data.is_sample:
        return (
            f"Running on the bundled sample of {spec.title} ({sizes}), not the full set. "
            + spec.full_set_hint
        )
    labels = {
        "env": "PLAYGROUND_DATA_DIR",
        "keras-cache": "Keras's cache",
        "debian": "Debian's dataset package",
        "download": "a fresh download",
    }
    return (
        f"{spec.title} from {labels.get(data.source, data.source)} ({data.source_detail}): {sizes}."
    )
