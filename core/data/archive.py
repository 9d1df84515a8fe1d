"""Where pictures to import come from, read safely: a zip (never unpacked to disk), a folder, or
per-class uploads, turned into candidate files (class, path, how to read it).

The zip is never unpacked to disk: each entry is read into memory, at most one picture's worth at
a time, so nothing can be written outside the store whatever its names say; limits on entries,
sizes and compression ratio keep a zip bomb from taking the memory. Hidden, system and loose
files are skipped with a reason, and one folder that wraps everything is looked through.

"""

from __future__ import annotations

import io
import os
import struct
import unicodedata
import zipfile
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from core import errors
from core.data import reading
from core.data.catalog import (
    ImportRefused,
)
from core.data.reading import ImageRefused

if TYPE_CHECKING:
    pass

# Zip and folder limits. Entries: a class folder of photos rarely holds thousands; 20,000 keeps the
# prepared arrays (64x64 colour) under 250 MB. Bytes: the uncompressed total, both as the zip
# declares it and as actually read; each picture is further capped by reading.MAX_FILE_BYTES.
MAX_ENTRIES = 20_000
MAX_TOTAL_BYTES = 1_000_000_000
# Photos do not compress (JPEG, PNG are compressed already): a ratio of 100 is a bomb's mark. Small
# entries may compress well (a flat BMP), so entries under a megabyte are exempt.
MAX_RATIO = 100
RATIO_EXEMPT_BYTES = 1_000_000

SYSTEM_FILES = {"thumbs.db", "desktop.ini", "icon\r"}


@dataclass(frozen=True)
class Candidate:
    """One candidate picture: its class, its path as the person knows it, and how to read it."""

    label: str
    path: str
    read: Callable[[], bytes]  # raises ImageRefused (too big, unreadable) or ImportRefused


# ----------------------------------------------------------------------------- zip safety
def check_entry_count(handle) -> None:
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


def zip_candidates(archive: zipfile.ZipFile) -> tuple[list[Candidate], list[tuple[str, str]]]:
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
    return layout(paths, wrapped=True)


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
        if info.file_size > reading.MAX_FILE_BYTES:
            raise _too_big(info.file_size)
        try:
            with archive.open(info) as handle:
                # Never more than one picture's limit, whatever the header says.
                data = handle.read(reading.MAX_FILE_BYTES + 1)
        except NotImplementedError:
            raise ImageRefused(
                "it is packed with a compression method this zip reader does not know"
            ) from None
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as exc:
            raise ImageRefused(
                f"its entry in the zip is damaged ({errors.short_reason(exc)})"
            ) from None
        budget.spend(len(data))
        if len(data) > reading.MAX_FILE_BYTES:
            raise _too_big(len(data))
        return data

    return read


def _too_big(size: int) -> ImageRefused:
    return ImageRefused(
        f"the file is {size / 1e6:,.1f} MB; the limit is {reading.MAX_FILE_MB} MB a picture"
    )


def _gb(n: int) -> str:
    return f"{n / 1e9:,.1f} GB"


# ----------------------------------------------------------------------------- folders
def folder_candidates(root: Path) -> tuple[list[Candidate], list[tuple[str, str]]]:
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
    return layout(paths, wrapped=True)


def _file_reader(path: Path, root: Path, budget: _Budget):
    def read() -> bytes:
        if path.is_symlink() and not path.resolve().is_relative_to(root):
            raise ImageRefused("it is a link to a file outside the folder; it was not followed")
        if not path.is_file():
            raise ImageRefused("it is not a regular file (a link, device, pipe or socket)")
        try:
            with path.open("rb") as handle:
                data = handle.read(reading.MAX_FILE_BYTES + 1)
        except OSError as exc:
            raise ImageRefused(f"the file cannot be read ({exc.strerror or exc})") from None
        budget.spend(len(data))
        if len(data) > reading.MAX_FILE_BYTES:
            raise _too_big(max(len(data), path.stat().st_size))
        return data

    return read


def bytes_reader(data: bytes) -> Callable[[], bytes]:
    def read() -> bytes:
        if len(data) > reading.MAX_FILE_BYTES:
            raise _too_big(len(data))
        return bytes(data)

    return read


# ----------------------------------------------------------------------------- layout
def layout(
    paths: Iterable[tuple[str, Callable[[], bytes]]], *, wrapped: bool
) -> tuple[list[Candidate], list[tuple[str, str]]]:
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
        files.append(Candidate(class_name(parts[0]), path, read))
    return files, skipped


def class_name(text: str) -> str:
    # macOS writes names decomposed (NFD), Windows and Linux composed: "Café" must be one class.
    return unicodedata.normalize("NFC", str(text)).strip()
