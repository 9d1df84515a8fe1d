"""Your own pictures -> a stored dataset: a zip of class folders, a folder, or per-class uploads.

Every picture goes through core.data.images (the readers and refusals that uploads get), so a
file that cannot be used costs only itself: it is listed in the report with its reason and the
import goes on. The zip is never unpacked to disk: each entry is read into memory, at most one
picture's worth at a time, so nothing can be written outside the store whatever its names say;
limits on entries, sizes and compression ratio keep a zip bomb from taking the memory. The
result is stored by core.data.catalog.
"""

from __future__ import annotations

import hashlib
import io
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from core import errors
from core.data import images
from core.data.archive import (
    MAX_ENTRIES,
    Candidate,
    bytes_reader,
    check_entry_count,
    class_name,
    folder_candidates,
    layout,
    zip_candidates,
)
from core.data.catalog import (
    MANIFEST_VERSION,
    MODES,
    PLAIN_SIZES,
    ImportRefused,
    check_name,
    save_dataset,
)
from core.data.images import prepare_picture
from core.data.reading import ImageRefused

if TYPE_CHECKING:
    pass


DEFAULT_TEST_FRACTION = 0.2
# Below, a class of 10 gets no test picture of its own; above, too little is left to learn from.
TEST_FRACTION_RANGE = (0.05, 0.5)
MIN_CLASSES = 2
MAX_CLASSES = 100
MIN_PER_CLASS = 10  # fewer and neither training nor the test accuracy mean anything
IMBALANCE_RATIO = 5  # a class this many times the smallest gets a warning


@dataclass
class ImportReport:
    name: str  # the dataset's name as listed (unique among imported datasets)
    dataset_id: str  # content fingerprint; the folder name; == Dataset.fingerprint
    classes: dict[str, int]  # class name -> usable images (train + test)
    skipped: list[tuple[str, str]]  # (file inside the zip/folder, reason sentence)
    warnings: list[str]
    mode: str
    size: int
    train_count: int
    test_count: int
    existed: bool  # the same pictures (same mode/size/split) were already imported

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "dataset_id": self.dataset_id,
            "classes": list(self.classes),
            "images": dict(self.classes),
            "skipped": [{"file": file, "reason": reason} for file, reason in self.skipped],
            "warnings": list(self.warnings),
            "mode": self.mode,
            "size": self.size,
            "train": self.train_count,
            "test": self.test_count,
            "existed": self.existed,
        }


Progress = Callable[[int, int], None]  # (files done, files in all)


@dataclass(frozen=True)
class _Options:
    mode: str
    size: int
    test_fraction: float
    seed: int


# ----------------------------------------------------------------------------- the three sources
def import_zip(
    source: bytes | str | Path,
    name: str,
    *,
    mode: str = "fashion",
    size: int | None = None,
    test_fraction: float = DEFAULT_TEST_FRACTION,
    seed: int = 0,
    home: str | Path | None = None,
    filename: str = "",
    progress: Progress | None = None,
) -> ImportReport:
    """Import a zip whose folders are the classes (one wrapping folder is looked through).

    source: the zip's bytes (an upload) or its path. filename: how to name an upload's source.
    Raises ImportRefused with one sentence when the zip or the result cannot be used.
    """
    options = _options(mode, size, test_fraction, seed)
    name = check_name(name)
    if isinstance(source, bytes | bytearray):
        handle, label = io.BytesIO(source), f"zip: {filename or 'uploaded'}"
    else:
        path = Path(source)
        try:
            handle = path.open("rb")
        except OSError as exc:
            raise ImportRefused(f"{path} cannot be read ({exc.strerror or exc}).") from None
        label = f"zip: {filename or path.name}"
    with handle:
        check_entry_count(handle)
        try:
            archive = zipfile.ZipFile(handle)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
            raise ImportRefused(
                f"This is not a zip file, or it is damaged ({errors.short_reason(exc)})."
            ) from None
        with archive:
            files, skipped = zip_candidates(archive)
            return _import(files, skipped, name, label, options, home, progress)


def import_folder(
    path: str | Path,
    name: str,
    *,
    mode: str = "fashion",
    size: int | None = None,
    test_fraction: float = DEFAULT_TEST_FRACTION,
    seed: int = 0,
    home: str | Path | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    """Import a local folder of class folders (one wrapping folder is looked through)."""
    options = _options(mode, size, test_fraction, seed)
    name = check_name(name)
    root = Path(path).expanduser()
    if not root.is_dir():
        raise ImportRefused(f"{root} is not a folder; give a folder of class folders or a .zip.")
    files, skipped = folder_candidates(root.resolve())
    return _import(files, skipped, name, f"folder: {root.resolve()}", options, home, progress)


def import_pictures(
    pictures: dict[str, list[tuple[str, bytes]]],
    name: str,
    *,
    mode: str = "fashion",
    size: int | None = None,
    test_fraction: float = DEFAULT_TEST_FRACTION,
    seed: int = 0,
    home: str | Path | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    """Import pictures given per class: the app's per-class uploads and camera shots.

    pictures: class name -> [(file name, file bytes)].
    """
    options = _options(mode, size, test_fraction, seed)
    name = check_name(name)
    count = sum(len(files) for files in pictures.values())
    if count > MAX_ENTRIES:
        raise ImportRefused(
            f"{count:,} pictures are too many at once; the limit is {MAX_ENTRIES:,}."
        )
    paths = []
    for label, files in pictures.items():
        label = class_name(label)
        if not label:
            raise ImportRefused("Every class needs a name; one of them has none.")
        for filename, data in files:
            paths.append((f"{label}/{filename}", bytes_reader(data)))
    files, skipped = layout(paths, wrapped=False)
    return _import(files, skipped, name, "uploads", options, home, progress)


# ----------------------------------------------------------------------------- the import itself
def _options(mode: str, size: int | None, test_fraction: float, seed: int) -> _Options:
    if mode not in MODES:
        raise ImportRefused(f"Unknown mode '{mode}'; choose one of: {', '.join(MODES)}.")
    if mode == "fashion":
        if size not in (None, images.SIDE):
            raise ImportRefused(
                f"Like Fashion-MNIST means {images.SIDE}x{images.SIDE} pixels; "
                f"the size {size} is for pictures kept as they are."
            )
        size = images.SIDE
    else:
        size = PLAIN_SIZES[0] if size is None else size
        if size not in PLAIN_SIZES:
            raise ImportRefused(
                f"Pictures as they are become squares of {', '.join(map(str, PLAIN_SIZES))} "
                f"pixels, not {size}."
            )
    low, high = TEST_FRACTION_RANGE
    if not low <= test_fraction <= high:
        raise ImportRefused(
            f"The test fraction must be between {low:g} and {high:g} (it is {test_fraction:g})."
        )
    return _Options(mode, int(size), float(test_fraction), int(seed))


def _read_and_prepare(
    files: list[Candidate], options: _Options, skipped: list, progress: Progress | None
) -> dict[str, list[tuple[str, np.ndarray]]]:
    """Class -> [(content digest, pixels)] of the usable pictures; the rest go to skipped."""
    usable: dict[str, list[tuple[str, np.ndarray]]] = {file.label: [] for file in files}
    first_seen: dict[str, str] = {}
    for done, file in enumerate(sorted(files, key=lambda f: f.path), start=1):
        try:
            data = file.read()
            digest = hashlib.sha256(data).hexdigest()
            if digest in first_seen:
                raise ImageRefused(f"the same picture as {first_seen[digest]}")
            first_seen[digest] = file.path
            if data[:4] == b"PK\x03\x04" or file.path.lower().endswith(".zip"):
                raise ImageRefused("a zip inside the zip is not opened; unpack it first")
            pixels = prepare_picture(data, options.mode, options.size).pixels
        except ImageRefused as exc:
            skipped.append((file.path, str(exc)))
        except (MemoryError, ImportRefused):
            raise
        except Exception as exc:  # a reader bug must cost one picture, not the import
            skipped.append((file.path, f"it could not be read ({type(exc).__name__}: {exc})"))
        else:
            usable[file.label].append((digest, pixels))
        if progress is not None:
            progress(done, len(files))
    return usable


def _import(
    files: list[Candidate],
    skipped: list[tuple[str, str]],
    name: str,
    source: str,
    options: _Options,
    home,
    progress: Progress | None,
) -> ImportReport:
    class_names = sorted({file.label for file in files}, key=lambda c: (c.casefold(), c))
    _check_class_count(class_names, skipped)
    usable = _read_and_prepare(files, options, skipped, progress)
    counts = {label: len(usable[label]) for label in class_names}
    short = [f"{label} ({n})" for label, n in counts.items() if n < MIN_PER_CLASS]
    if short:
        raise ImportRefused(
            f"Each class needs at least {MIN_PER_CLASS} usable pictures; short of that: "
            f"{', '.join(short)}.",
            skipped,
        )
    warnings = _imbalance(counts)
    arrays, train_counts, test_counts = _split(
        [usable[label] for label in class_names], options.test_fraction, options.seed
    )
    from core.data.dataset import content_fingerprint, imported_tag

    dataset_id = content_fingerprint(imported_tag(options.mode, class_names), arrays)
    manifest = {
        "version": MANIFEST_VERSION,
        "name": name,
        "dataset_id": dataset_id,
        "class_names": class_names,
        "train_counts": train_counts,
        "test_counts": test_counts,
        "mode": options.mode,
        "size": options.size,
        "channels": 3 if options.mode == "plain" else 1,
        "test_fraction": options.test_fraction,
        "seed": options.seed,
        "source": source,
        "created_at": time.time(),
        "skipped": [list(row) for row in skipped],
        "warnings": warnings,
        "former_names": [],
    }
    stored_name, existed = save_dataset(arrays, manifest, home)
    if existed and stored_name != name:
        warnings = [
            f"These pictures were already imported as '{stored_name}'; that dataset is used "
            "and nothing new was stored.",
            *warnings,
        ]
    return ImportReport(
        name=stored_name,
        dataset_id=dataset_id,
        classes=counts,
        skipped=skipped,
        warnings=warnings,
        mode=options.mode,
        size=options.size,
        train_count=sum(train_counts),
        test_count=sum(test_counts),
        existed=existed,
    )


def _check_class_count(class_names: list[str], skipped) -> None:
    if len(class_names) < MIN_CLASSES:
        found = f"only one class folder ({class_names[0]})" if class_names else "no class folder"
        raise ImportRefused(
            f"Found {found}; at least {MIN_CLASSES} classes are needed, one folder of pictures "
            "per class (cats/001.jpg, dogs/001.jpg, ...).",
            skipped,
        )
    if len(class_names) > MAX_CLASSES:
        raise ImportRefused(
            f"Found {len(class_names)} class folders; the limit is {MAX_CLASSES}.", skipped
        )


def _imbalance(counts: dict[str, int]) -> list[str]:
    smallest = min(counts, key=counts.get)
    big = [c for c, n in counts.items() if n >= IMBALANCE_RATIO * counts[smallest]]
    if not big:
        return []
    listed = ", ".join(f"{c} ({counts[c]})" for c in big)
    return [
        f"The classes are unbalanced: {listed} {'has' if len(big) == 1 else 'have'} "
        f"{IMBALANCE_RATIO} or more times as many pictures as {smallest} ({counts[smallest]}); "
        f"the network may learn to favour the big classes."
    ]


def _split(per_class: list[list[tuple[str, np.ndarray]]], test_fraction: float, seed: int):
    """A stratified, seeded split: each class gives the same fraction to the test set.

    Pictures are ordered by content first, so neither file names nor the order of a zip's entries
    change the result: the same pictures always give the same split (and the same fingerprint).
    """
    rng = np.random.default_rng(seed)
    train_x, train_y, test_x, test_y = [], [], [], []
    train_counts, test_counts = [], []
    for label, pictures in enumerate(per_class):
        pixels = [p for _, p in sorted(pictures, key=lambda item: item[0])]
        order = rng.permutation(len(pixels))
        n_test = max(1, round(len(pixels) * test_fraction))
        for rank, index in enumerate(order):
            (test_x if rank < n_test else train_x).append(pixels[index])
            (test_y if rank < n_test else train_y).append(label)
        train_counts.append(len(pixels) - n_test)
        test_counts.append(n_test)
    # Mixed, so a validation split taken off the end of the training set holds every class.
    train_order, test_order = rng.permutation(len(train_x)), rng.permutation(len(test_x))
    arrays = {
        "x_train": np.stack(train_x)[train_order],
        "y_train": np.asarray(train_y, np.uint8)[train_order],
        "x_test": np.stack(test_x)[test_order],
        "y_test": np.asarray(test_y, np.uint8)[test_order],
    }
    return arrays, train_counts, test_counts
