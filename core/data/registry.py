"""The dataset registry: every dataset by name, built-in or imported, loaded through one door.

Datasets people import (core.data.catalog) join the registry beside the built-in ones:
dataset_names() lists them after the built-ins and load_dataset() loads them through the same
Dataset type, so every page and command works with them without asking where the data came from.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from core.data import catalog
from core.data.catalog import MODES, ImportRefused, find_dataset, info_at, list_datasets
from core.data.dataset import Dataset, DatasetUnavailable
from core.data.sources import DATASETS, load_from_sources

_cache: dict[str, Dataset] = {}
_cache_lock = threading.Lock()


def dataset_names(home: str | Path | None = None) -> list[str]:
    """The built-in datasets' names, then the imported ones' (oldest first)."""
    return list(DATASETS) + [info.name for info in list_datasets(home)]


def dataset_title(name: str) -> str:
    """For select boxes: a built-in dataset's title, an imported one's name."""
    return DATASETS[name].title if name in DATASETS else name


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


# (folder, dataset id, name) -> Dataset: every call looks the name up on disk first, so a rename,
# delete or re-import is seen at once; what this process changed also empties the cache, so a
# deleted set does not linger in memory.
_imported_cache: dict[tuple[str, str, str], Dataset] = {}
_imported_generation = 0  # catalog.changes() when the cache was last emptied
IMPORTED_CACHE_SIZE = 2  # an imported set may take hundreds of megabytes


def forget_imported() -> None:
    """Drop every imported dataset loaded in this process."""
    global _imported_generation
    with _cache_lock:
        _imported_cache.clear()
        _imported_generation = catalog.changes()


def _load_imported(name: str, home, refresh: bool) -> Dataset:
    if catalog.changes() != _imported_generation:
        forget_imported()
    info = find_dataset(name, home)
    if info is None:
        known = ", ".join(dataset_names(home))
        raise DatasetUnavailable(f"Unknown dataset '{name}'. Choose one of: {known}.")
    key = (str(info.path), info.dataset_id, info.name)
    with _cache_lock:
        if not refresh and key in _imported_cache:
            return _imported_cache[key]
    try:
        arrays = catalog.load_arrays(info)
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
