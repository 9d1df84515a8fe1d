"""Your own pictures -> a stored dataset: a zip of class folders, a folder, or per-class uploads.

Every picture goes through core.images (the readers and refusals that uploads get), so a file that
cannot be used costs only itself: it is listed in the report with its reason and the import goes
on. The zip is never unpacked to disk: each entry is read into memory, at most one picture's
worth at a time, so nothing can be written outside the store whatever its names say; limits on
entries, sizes and compression ratio keep a zip bomb from taking the memory.

A dataset is stored as <home>/datasets/<dataset_id>/ (arrays.npz + manifest.json). The id is a
fingerprint of the content (the prepared pictures, their split, the class names and the mode),
so importing the same pictures again finds the same dataset, and a run trained on it is keyed
by it: a changed dataset never answers from an old run.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import json
import os
import shutil
import struct
import time
import unicodedata
import uuid
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from core import images
from core.images import ImageRefused, PreparedImage

if TYPE_CHECKING:
    from core.datasets import Dataset

MODES = {"fashion": "like Fashion-MNIST", "plain": "as they are"}
PLAIN_SIZES = (32, 48, 64)  # "as they are": square side in px, colour kept, letterboxed
DEFAULT_TEST_FRACTION = 0.2
# Below, a class of 10 gets no test picture of its own; above, too little is left to learn from.
TEST_FRACTION_RANGE = (0.05, 0.5)
MIN_CLASSES = 2
MAX_CLASSES = 100
MIN_PER_CLASS = 10  # fewer and neither training nor the test accuracy mean anything
IMBALANCE_RATIO = 5  # a class this many times the smallest gets a warning
MAX_NAME_LENGTH = 60
# Zip and folder limits. Entries: a class folder of photos rarely holds thousands; 20,000 keeps the
# prepared arrays (64x64 colour) under 250 MB. Bytes: the uncompressed total, both as the zip
# declares it and as actually read; each picture is further capped by images.MAX_FILE_BYTES.
MAX_ENTRIES = 20_000
MAX_TOTAL_BYTES = 1_000_000_000
# Photos do not compress (JPEG, PNG are compressed already): a ratio of 100 is a bomb's mark. Small
# entries may compress well (a flat BMP), so entries under a megabyte are exempt.
MAX_RATIO = 100
RATIO_EXEMPT_BYTES = 1_000_000
DATASETS_FOLDER = "datasets"
ARRAYS_FILE = "arrays.npz"
MANIFEST_FILE = "manifest.json"
MANIFEST_VERSION = 1
ARRAY_KEYS = ("x_train", "y_train", "x_test", "y_test")
SYSTEM_FILES = {"thumbs.db", "desktop.ini", "icon\r"}


class ImportRefused(Exception):
    """The import cannot go ahead; str(exc) is one sentence for the user. Nothing was stored.

    skipped: the files already found unusable before the refusal, as in ImportReport.
    """

    def __init__(self, sentence: str, skipped: list[tuple[str, str]] | None = None) -> None:
        super().__init__(sentence)
        self.skipped = list(skipped or [])


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


@dataclass
class ImportedInfo:
    """One stored dataset, cheap to list (reads the manifest only)."""

    name: str
    dataset_id: str
    class_names: tuple[str, ...]
    train_counts: list[int]
    test_counts: list[int]
    mode: str
    size: int
    channels: int
    source: str  # "zip: photos.zip", "folder: /path", "uploads"
    created_at: float
    skipped: list[tuple[str, str]]
    warnings: list[str]
    path: Path
    former_names: list[str] = field(default_factory=list)  # names before a rename

    @property
    def images(self) -> int:
        return sum(self.train_counts) + sum(self.test_counts)


Progress = Callable[[int, int], None]  # (files done, files in all)


@dataclass(frozen=True)
class _Options:
    mode: str
    size: int
    test_fraction: float
    seed: int


@dataclass(frozen=True)
class _File:
    """One candidate picture: its class, its path as the person knows it, and how to read it."""

    label: str
    path: str
    read: Callable[[], bytes]  # raises ImageRefused (too big, unreadable) or ImportRefused


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
        _check_entry_count(handle)
        try:
            archive = zipfile.ZipFile(handle)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
            raise ImportRefused(
                f"This is not a zip file, or it is damaged ({images._short(exc)})."
            ) from None
        with archive:
            files, skipped = _zip_files(archive)
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
    files, skipped = _folder_files(root.resolve())
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
        label = _class_name(label)
        if not label:
            raise ImportRefused("Every class needs a name; one of them has none.")
        for filename, data in files:
            paths.append((f"{label}/{filename}", _bytes_reader(data)))
    files, skipped = _layout(paths, wrapped=False)
    return _import(files, skipped, name, "uploads", options, home, progress)


# ----------------------------------------------------------------------------- zip safety
def _check_entry_count(handle) -> None:
    """Refuse a zip with too many entries from its end record, before the directory is parsed.

    zipfile builds an object per entry on opening: 100,000 of them would cost seconds and memory
    before any limit could be checked. The record may lie; the count is checked again after.
    """
    try:
        handle.seek(0, io.SEEK_END)
        length = handle.tell()
        tail_start = max(0, length - (22 + 65535))  # the end record plus the longest comment
        handle.seek(tail_start)
        tail = handle.read()
    except OSError:
        return  # zipfile's own reading will say what is wrong
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) < at + 22:
        return
    count = struct.unpack("<H", tail[at + 10 : at + 12])[0]
    locator = at - 20
    if count == 0xFFFF and locator >= 0 and tail[locator : locator + 4] == b"PK\x06\x07":
        # Zip64: the real count is in the zip64 end record the locator points to.
        offset = struct.unpack("<Q", tail[locator + 8 : locator + 16])[0]
        try:
            handle.seek(offset)
            record = handle.read(56)
        except (OSError, ValueError):
            record = b""
        if len(record) == 56 and record[:4] == b"PK\x06\x06":
            count = struct.unpack("<Q", record[32:40])[0]
    handle.seek(0)
    if count > MAX_ENTRIES:
        raise _too_many(count)


def _too_many(count: int) -> ImportRefused:
    return ImportRefused(
        f"The zip holds {count:,} entries; the limit is {MAX_ENTRIES:,}, so it was not opened."
    )


def _unsafe(path: str) -> bool:
    """An absolute path, a drive letter or a `..` step: a name that points outside its folder."""
    parts = path.replace("\\", "/").split("/")
    absolute = path.startswith(("/", "\\")) or (len(path) > 1 and path[1] == ":")
    return absolute or ".." in parts


def _zip_files(archive: zipfile.ZipFile) -> tuple[list[_File], list[tuple[str, str]]]:
    """The zip's candidate pictures, after the checks that refuse the whole zip."""
    infos = archive.infolist()
    if len(infos) > MAX_ENTRIES:
        raise _too_many(len(infos))
    for info in infos:
        if _unsafe(info.filename):
            raise ImportRefused(
                f"The zip holds an entry that points outside its own folders ({info.filename}); "
                "zips like that are refused whole."
            )
    declared = sum(info.file_size for info in infos)
    if declared > MAX_TOTAL_BYTES:
        raise ImportRefused(
            f"The zip unpacks to {_gb(declared)} (as it declares); the limit is "
            f"{_gb(MAX_TOTAL_BYTES)}, so it was not unpacked."
        )
    for info in infos:
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > RATIO_EXEMPT_BYTES and ratio > MAX_RATIO:
            raise ImportRefused(
                f"The zip looks like a zip bomb: {info.filename} would unpack {ratio:,.0f} times "
                f"larger than it is packed (pictures hardly compress), so it was not unpacked."
            )
    budget = _Budget()
    paths = [
        (info.filename, _entry_reader(archive, info, budget)) for info in infos if not info.is_dir()
    ]
    return _layout(paths, wrapped=True)


class _Budget:
    """Bytes actually read, whatever the zip declared: the whole import stops past the limit."""

    def __init__(self) -> None:
        self.spent = 0

    def spend(self, n: int) -> None:
        self.spent += n
        if self.spent > MAX_TOTAL_BYTES:
            raise ImportRefused(
                f"The zip unpacks to more than {_gb(MAX_TOTAL_BYTES)} (more than it declares); "
                "it was not unpacked further."
            )


def _entry_reader(archive: zipfile.ZipFile, info: zipfile.ZipInfo, budget: _Budget):
    def read() -> bytes:
        if info.flag_bits & 0x1:
            raise ImageRefused("the file is encrypted (password-protected) in the zip")
        if info.file_size > images.MAX_FILE_BYTES:
            raise _too_big(info.file_size)
        try:
            with archive.open(info) as handle:
                # Never more than one picture's limit, whatever the header says.
                data = handle.read(images.MAX_FILE_BYTES + 1)
        except NotImplementedError:
            raise ImageRefused(
                "it is packed with a compression method this zip reader does not know"
            ) from None
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as exc:
            raise ImageRefused(f"its entry in the zip is damaged ({images._short(exc)})") from None
        budget.spend(len(data))
        if len(data) > images.MAX_FILE_BYTES:
            raise _too_big(len(data))
        return data

    return read


def _too_big(size: int) -> ImageRefused:
    return ImageRefused(
        f"the file is {size / 1e6:,.1f} MB; the limit is {images.MAX_FILE_MB} MB a picture"
    )


def _gb(n: int) -> str:
    return f"{n / 1e9:,.1f} GB"


# ----------------------------------------------------------------------------- folders
def _folder_files(root: Path) -> tuple[list[_File], list[tuple[str, str]]]:
    paths: list[tuple[str, Callable[[], bytes]]] = []
    budget = _Budget()
    for folder, dirs, names in os.walk(root, followlinks=False):
        dirs.sort()
        for name in sorted(names):
            if len(paths) >= MAX_ENTRIES:
                raise ImportRefused(
                    f"The folder holds more than {MAX_ENTRIES:,} files; the limit is "
                    f"{MAX_ENTRIES:,}."
                )
            full = Path(folder, name)
            paths.append((full.relative_to(root).as_posix(), _file_reader(full, root, budget)))
    return _layout(paths, wrapped=True)


def _file_reader(path: Path, root: Path, budget: _Budget):
    def read() -> bytes:
        if path.is_symlink() and not path.resolve().is_relative_to(root):
            raise ImageRefused("it is a link to a file outside the folder; it was not followed")
        if not path.is_file():
            raise ImageRefused("it is not a regular file (a link, device, pipe or socket)")
        try:
            with path.open("rb") as handle:
                data = handle.read(images.MAX_FILE_BYTES + 1)
        except OSError as exc:
            raise ImageRefused(f"the file cannot be read ({exc.strerror or exc})") from None
        budget.spend(len(data))
        if len(data) > images.MAX_FILE_BYTES:
            raise _too_big(max(len(data), path.stat().st_size))
        return data

    return read


def _bytes_reader(data: bytes) -> Callable[[], bytes]:
    def read() -> bytes:
        if len(data) > images.MAX_FILE_BYTES:
            raise _too_big(len(data))
        return bytes(data)

    return read


# ----------------------------------------------------------------------------- layout
def _layout(
    paths: Iterable[tuple[str, Callable[[], bytes]]], *, wrapped: bool
) -> tuple[list[_File], list[tuple[str, str]]]:
    """Paths -> (class, path) candidates; hidden and system files and loose files are skipped.

    wrapped: look through folders that wrap everything (a zip made of a folder holds the folder).
    """
    kept: list[tuple[list[str], str, Callable[[], bytes]]] = []
    skipped: list[tuple[str, str]] = []
    mac = 0
    for path, read in paths:
        parts = [part for part in path.replace("\\", "/").split("/") if part not in ("", ".")]
        if not parts:
            continue
        if parts[0] == "__MACOSX":
            mac += 1
        elif any(part.startswith(".") for part in parts):
            skipped.append((path, "a hidden file (its name starts with a dot), not a picture"))
        elif parts[-1].lower() in SYSTEM_FILES:
            skipped.append((path, "a file the operating system keeps, not a picture"))
        else:
            kept.append((parts, path, read))
    if mac:
        skipped.append(("__MACOSX/", f"macOS's own copies of file details ({mac} files)"))
    while wrapped:
        tops = {parts[0] for parts, _, _ in kept if len(parts) > 1}
        loose = any(len(parts) == 1 for parts, _, _ in kept)
        deep = any(len(parts) > 2 for parts, _, _ in kept)
        if len(tops) != 1 or loose or not deep:
            break
        kept = [(parts[1:], path, read) for parts, path, read in kept]
    files = []
    for parts, path, read in kept:
        if len(parts) == 1:
            skipped.append((path, "it is not inside a class folder (each class is a folder)"))
            continue
        files.append(_File(_class_name(parts[0]), path, read))
    return files, skipped


def _class_name(text: str) -> str:
    # macOS writes names decomposed (NFD), Windows and Linux composed: "Café" must be one class.
    return unicodedata.normalize("NFC", str(text)).strip()


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


def check_name(name: str) -> str:
    """The name cleaned of surrounding spaces; ImportRefused for one that cannot be a name."""
    from core.datasets import DATASETS

    name = unicodedata.normalize("NFC", str(name)).strip()
    if not name:
        raise ImportRefused("Give the dataset a name.")
    if len(name) > MAX_NAME_LENGTH:
        raise ImportRefused(f"The name is too long; use at most {MAX_NAME_LENGTH} characters.")
    if any(not ch.isprintable() for ch in name):
        raise ImportRefused("The name holds a control character; use letters, digits and spaces.")
    builtin = {key.casefold() for key in DATASETS} | {s.title.casefold() for s in DATASETS.values()}
    if name.casefold() in builtin:
        raise ImportRefused(f"'{name}' is the name of a built-in dataset; choose another.")
    return name


def prepare_picture(data: bytes, mode: str, size: int) -> PreparedImage:
    """One picture's bytes prepared as a dataset of this mode and size prepares its pictures."""
    if mode == "plain":
        return images.prepare_square(data, size)
    return images.prepare(data)


def _read_and_prepare(
    files: list[_File], options: _Options, skipped: list, progress: Progress | None
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
    files: list[_File],
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
    from core.datasets import content_fingerprint, imported_tag

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
    stored_name, existed = _store(arrays, manifest, home)
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


# ----------------------------------------------------------------------------- storage
def datasets_folder(home: str | Path | None = None) -> Path:
    from core.store import default_home

    return Path(home if home is not None else default_home()) / DATASETS_FOLDER


@contextlib.contextmanager
def _locked(home) -> Iterator[Path]:
    """The datasets folder, held exclusively: names stay unique across processes."""
    folder = datasets_folder(home)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        lock = open(folder / ".lock", "w")  # noqa: SIM115 (held for the whole block)
    except OSError as exc:
        raise ImportRefused(
            f"The datasets folder {folder} cannot be written ({exc.strerror or exc}); "
            "point PLAYGROUND_HOME at a folder you may write."
        ) from None
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield folder


def _store(arrays: dict, manifest: dict, home) -> tuple[str, bool]:
    """Write the dataset (staged, then renamed into place); (its listed name, existed before)."""
    with _locked(home) as folder:
        final = folder / manifest["dataset_id"]
        existing = _read_manifest(final)
        if existing is not None:
            return existing["name"], True
        clash = _by_name(manifest["name"], _infos(folder))
        if clash is not None:
            raise ImportRefused(
                f"A dataset named '{manifest['name']}' exists already (other pictures); "
                "choose another name, or rename or delete that one first."
            )
        staging = folder / f".staging-{uuid.uuid4().hex}"
        try:
            staging.mkdir()
            np.savez_compressed(staging / ARRAYS_FILE, **arrays)
            _write_manifest(staging, manifest)
            if final.exists():  # a damaged leftover without a readable manifest
                _remove(final, folder)
            os.rename(staging, final)
        except OSError as exc:
            shutil.rmtree(staging, ignore_errors=True)
            raise ImportRefused(
                f"The dataset could not be stored in {folder} ({exc.strerror or exc})."
            ) from None
    _forget_loaded()
    return manifest["name"], False


def _write_manifest(folder: Path, manifest: dict) -> None:
    temporary = folder / f".{MANIFEST_FILE}.{uuid.uuid4().hex}"
    with temporary.open("w") as out:
        json.dump(manifest, out, indent=2, ensure_ascii=False)
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, folder / MANIFEST_FILE)


def _read_manifest(folder: Path) -> dict | None:
    try:
        manifest = json.loads((folder / MANIFEST_FILE).read_text())
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) and "name" in manifest else None


def _info(folder: Path, manifest: dict) -> ImportedInfo:
    return ImportedInfo(
        name=manifest["name"],
        dataset_id=manifest.get("dataset_id", folder.name),
        class_names=tuple(manifest["class_names"]),
        train_counts=list(manifest["train_counts"]),
        test_counts=list(manifest["test_counts"]),
        mode=manifest["mode"],
        size=int(manifest["size"]),
        channels=int(manifest.get("channels", 1)),
        source=manifest.get("source", ""),
        created_at=float(manifest.get("created_at", 0.0)),
        skipped=[tuple(row) for row in manifest.get("skipped", [])],
        warnings=list(manifest.get("warnings", [])),
        path=folder,
        former_names=list(manifest.get("former_names", [])),
    )


def info_at(folder: Path) -> ImportedInfo | None:
    """The dataset stored in this folder, or None when there is none (or it is damaged)."""
    manifest = _read_manifest(folder)
    try:
        return None if manifest is None else _info(folder, manifest)
    except (KeyError, TypeError, ValueError):
        return None


def _infos(folder: Path) -> list[ImportedInfo]:
    if not folder.is_dir():
        return []
    found = []
    for entry in folder.iterdir():
        if entry.name.startswith(".") or not entry.is_dir():
            continue
        info = info_at(entry)
        if info is not None:  # a damaged manifest is not listed
            found.append(info)
    return sorted(found, key=lambda info: (info.created_at, info.name))


def _by_name(name: str, infos: list[ImportedInfo]) -> ImportedInfo | None:
    wanted = unicodedata.normalize("NFC", name).strip().casefold()
    return next((info for info in infos if info.name.casefold() == wanted), None)


def list_datasets(home: str | Path | None = None) -> list[ImportedInfo]:
    """Every imported dataset in the store, oldest first."""
    return _infos(datasets_folder(home))


def find_dataset(name: str, home: str | Path | None = None) -> ImportedInfo | None:
    """The imported dataset listed under this name (or with this id), else None.

    A name a dataset had before it was renamed still finds it, unless another dataset took the
    name since: runs trained before a rename keep their data.
    """
    infos = list_datasets(home)
    found = _by_name(name, infos)
    if found is None:
        found = next((info for info in infos if info.dataset_id == name), None)
    if found is None:
        found = next((info for info in reversed(infos) if name in info.former_names), None)
    return found


def _current(name: str, home) -> ImportedInfo:
    info = _by_name(name, list_datasets(home))
    if info is None:
        raise ImportRefused(f"There is no imported dataset named '{name}'.")
    return info


def rename_dataset(old: str, new: str, home: str | Path | None = None) -> None:
    """Give a dataset another name; ImportRefused for a clash or a name that cannot be one."""
    new = check_name(new)
    with _locked(home) as folder:
        info = _current(old, home)
        clash = _by_name(new, _infos(folder))
        if clash is not None and clash.dataset_id != info.dataset_id:
            raise ImportRefused(f"A dataset named '{new}' exists already; choose another name.")
        manifest = _read_manifest(info.path)
        if manifest is None:
            raise ImportRefused(f"The dataset '{old}' is damaged; delete it and import it again.")
        if manifest["name"] != new:
            manifest["former_names"] = [*manifest.get("former_names", []), manifest["name"]]
        manifest["name"] = new
        try:
            _write_manifest(info.path, manifest)
        except OSError as exc:
            raise ImportRefused(f"The dataset could not be renamed ({exc.strerror}).") from None
    _forget_loaded()


def runs_using(name: str, home: str | Path | None = None) -> int:
    """How many stored runs were trained on this dataset (by its fingerprint)."""
    return len(_run_ids_on(_current(name, home).dataset_id, home))


def _run_ids_on(dataset_id: str, home) -> list[str]:
    from core.store import RunStore

    store = RunStore(home)
    return [row["run_id"] for row in store.list_runs() if row.get("data_id") == dataset_id]


def delete_dataset(name: str, *, remove_runs: bool = False, home: str | Path | None = None) -> int:
    """Delete a dataset's folder; returns how many runs use it.

    Its runs are deleted too only when remove_runs is True; otherwise they stay in the store.
    """
    from core.store import RunStore, StoreError

    with _locked(home) as folder:
        info = _current(name, home)
        run_ids = _run_ids_on(info.dataset_id, home)
        if remove_runs:
            store = RunStore(home)
            for run_id in run_ids:
                try:
                    store.delete(run_id)
                except StoreError as exc:
                    raise ImportRefused(str(exc)) from None
        _remove(info.path, folder)
    _forget_loaded()
    return len(run_ids)


def _remove(path: Path, folder: Path) -> None:
    """Rename aside first, so the dataset disappears at once, then remove the files."""
    aside = folder / f".deleting-{uuid.uuid4().hex}"
    try:
        os.rename(path, aside)
    except OSError as exc:
        raise ImportRefused(f"{path} could not be removed ({exc.strerror or exc}).") from None
    shutil.rmtree(aside, ignore_errors=True)


def _forget_loaded() -> None:
    from core.datasets import forget_imported

    forget_imported()


def load_arrays(info: ImportedInfo) -> dict[str, np.ndarray]:
    """The four arrays of a stored dataset; ImportRefused naming the file when it is damaged."""
    path = info.path / ARRAYS_FILE
    try:
        with np.load(path, allow_pickle=False) as stored:
            arrays = {key: np.asarray(stored[key]) for key in ARRAY_KEYS}
    except FileNotFoundError:
        raise ImportRefused(f"{path} is missing; delete the dataset and import it again.") from None
    except Exception as exc:  # zipfile, KeyError, ValueError: all mean a damaged file
        raise ImportRefused(
            f"{path} is damaged ({type(exc).__name__}); delete the dataset and import it again."
        ) from None
    return arrays


def prepare_for(dataset: Dataset, data: bytes) -> PreparedImage:
    """One uploaded picture prepared the way that dataset's pictures were.

    .pixels is shaped like one of dataset.x_train's images: (28, 28) grey or (S, S, 3) colour.
    Raises ImageRefused with the reason, as core.images.prepare does.
    """
    shape = dataset.input_shape
    return prepare_picture(data, getattr(dataset, "mode", "fashion"), int(shape[0]))
