"""Imported datasets on disk: list, find, load, rename and delete them, and store a new one.

A dataset is stored as <home>/datasets/<dataset_id>/ (arrays.npz + manifest.json). The id is a
fingerprint of the content (the prepared pictures, their split, the class names and the mode),
so importing the same pictures again finds the same dataset, and a run trained on it is keyed
by it: a changed dataset never answers from an old run. Every change takes an exclusive lock on
the datasets folder, so names stay unique across processes, and bumps changes(), which tells the
registry to forget what it loaded.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import json
import os
import shutil
import unicodedata
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from core.errors import PlaygroundError

if TYPE_CHECKING:
    pass


MODES = {"fashion": "like Fashion-MNIST", "plain": "as they are"}
PLAIN_SIZES = (32, 48, 64)  # "as they are": square side in px, colour kept, letterboxed

MAX_NAME_LENGTH = 60

DATASETS_FOLDER = "datasets"
ARRAYS_FILE = "arrays.npz"
MANIFEST_FILE = "manifest.json"
MANIFEST_VERSION = 1
ARRAY_KEYS = ("x_train", "y_train", "x_test", "y_test")


class ImportRefused(PlaygroundError):
    """The import cannot go ahead; str(exc) is one sentence for the user. Nothing was stored.

    skipped: the files already found unusable before the refusal, as in ImportReport.
    """

    def __init__(self, sentence: str, skipped: list[tuple[str, str]] | None = None) -> None:
        super().__init__(sentence)
        self.skipped = list(skipped or [])


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


def check_name(name: str) -> str:
    """The name cleaned of surrounding spaces; ImportRefused for one that cannot be a name."""
    from core.data.sources import DATASETS

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


# ----------------------------------------------------------------------------- storage
def datasets_folder(home: str | Path | None = None) -> Path:
    from core.home import default_home

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


def save_dataset(arrays: dict, manifest: dict, home) -> tuple[str, bool]:
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
    _changed()
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


def dataset_named(name: str, home: str | Path | None = None) -> ImportedInfo:
    """The imported dataset listed under exactly this name; ImportRefused if there is none."""
    info = _by_name(name, list_datasets(home))
    if info is None:
        raise ImportRefused(f"There is no imported dataset named '{name}'.")
    return info


def rename_dataset(old: str, new: str, home: str | Path | None = None) -> None:
    """Give a dataset another name; ImportRefused for a clash or a name that cannot be one."""
    new = check_name(new)
    with _locked(home) as folder:
        info = dataset_named(old, home)
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
    _changed()


@contextlib.contextmanager
def removing(name: str, home: str | Path | None = None) -> Iterator[ImportedInfo]:
    """Hold the datasets folder's lock with the dataset of this name; when the block ends without
    an error, its folder is removed. ImportRefused if there is no such dataset.

    What else goes with the dataset (its runs) is removed inside the block, by the caller that
    owns it (core.workspace.delete_dataset), so nobody imports or renames in between.
    """
    with _locked(home) as folder:
        info = dataset_named(name, home)
        yield info
        _remove(info.path, folder)
    _changed()


def _remove(path: Path, folder: Path) -> None:
    """Rename aside first, so the dataset disappears at once, then remove the files."""
    aside = folder / f".deleting-{uuid.uuid4().hex}"
    try:
        os.rename(path, aside)
    except OSError as exc:
        raise ImportRefused(f"{path} could not be removed ({exc.strerror or exc}).") from None
    shutil.rmtree(aside, ignore_errors=True)


_changes = itertools.count(1)
_generation = 0  # bumped by every import, rename and delete in this process


def _changed() -> None:
    global _generation
    _generation = next(_changes)


def changes() -> int:
    """A number that moves on whenever this process imports, renames or deletes a dataset, so a
    cache of loaded datasets (core.data.registry's) knows to drop what it holds."""
    return _generation


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
