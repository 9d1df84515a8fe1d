"""A decompressed copy of a folder of gzipped IDX files, so a run does not gunzip them every time.

Fashion-MNIST comes as four gzipped IDX files (26 MB packed, 55 MB of pixels); unpacking them took
0.26 s of every training process's start on a 2-core EPYC, more than all our own imports
(bench/bench_startup.py). The first read writes one uncompressed file holding the four arrays, and
the dataset's fingerprint beside them, into the user's cache folder (core.home.data_cache_folder);
later reads map it into memory. Its pages are the kernel's page cache, so the UI, the trainers and
the model process share one copy instead of holding one each.

The copy answers only while it provably matches: the four source files' path, size, modification
and change times and inode are its key; its own header and every array carry a CRC-32 (about
14 ms for 55 MB), checked on every read; and the fingerprint it keeps is used only if Dataset still
fingerprints a fixed probe the same way, so a changed fingerprint rule can never reuse an old one.
Anything else (no cache folder, a read-only or full disk, a stale, damaged or foreign copy) falls
back to the normal read without a word; a stale or damaged copy is written afresh. A copy is
replaced by a rename, never changed in place, so a process that has one mapped keeps valid pages.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import mmap
import os
import struct
import uuid
import zlib
from pathlib import Path

import numpy as np

from core.data.dataset import Dataset
from core.home import data_cache_folder

Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # x_train, y_train, x_test, y_test

FORMAT = 1  # raise when the layout below changes: older copies are then rewritten
MAGIC = b"PGIDXC\x00\x01"
PREFIX = struct.Struct("<8sII")  # magic, header length, header CRC-32
ALIGN = 64  # every array starts on a cache line
# Below this many bytes of pixels gunzip takes milliseconds: a copy would only litter the cache
# (the test suite writes many small IDX folders).
MIN_BYTES = 4_000_000


def source_key(paths: list[Path]) -> list[list] | None:
    """What identifies the source files' content without reading them; None if one is missing."""
    key = []
    for path in paths:
        try:
            stat = os.stat(path)
        except OSError:
            return None
        times = [stat.st_mtime_ns, stat.st_ctime_ns]
        key.append([str(path.resolve()), stat.st_size, *times, stat.st_ino])
    return key


def copy_path(name: str, folder: Path) -> Path:
    """The copy of `folder`'s files for dataset `name`: one file per source folder."""
    where = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:16]
    return data_cache_folder() / f"{name}-{where}.idx"


def read(name: str, folder: Path, key: list) -> tuple[Arrays, str] | None:
    """(arrays, fingerprint) from the copy of `folder`'s files, or None unless it matches `key`."""
    try:
        with open(copy_path(name, folder), "rb") as f:
            mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError):  # no copy yet, or an empty file
        return None
    try:
        return _checked(mapped, name, key)
    except (ValueError, KeyError, TypeError, IndexError, struct.error):
        return None  # a damaged header: json, unicode and struct errors are all ValueErrors


def _checked(mapped: mmap.mmap, name: str, key: list) -> tuple[Arrays, str] | None:
    magic, length, header_crc = PREFIX.unpack_from(mapped, 0)
    header_bytes = mapped[PREFIX.size : PREFIX.size + length]
    if magic != MAGIC or zlib.crc32(header_bytes) != header_crc:
        return None
    header = json.loads(header_bytes)
    if (header["format"], header["dataset"], header["sources"]) != (FORMAT, name, key):
        return None
    if header["rule"] != _rule_probe(name):
        return None
    if len(header["arrays"]) != 4:
        return None
    start, end = _aligned(PREFIX.size + length), 0
    arrays = []
    for offset, shape, crc in header["arrays"]:
        size = math.prod(shape)
        begin, end = start + offset, start + offset + size
        if end > len(mapped) or _crc(mapped, begin, size) != crc:
            return None
        arrays.append(np.frombuffer(mapped, np.uint8, count=size, offset=begin).reshape(shape))
    if end != len(mapped):  # nothing may follow the last array
        return None
    return tuple(arrays), header["fingerprint"]  # type: ignore[return-value]


def write(name: str, folder: Path, key: list, data: Dataset) -> None:
    """Keep `data`, just read from `folder`'s files (which had `key` before the read), as their
    copy; quietly nothing when the set is small or the cache folder cannot be written."""
    arrays = (data.x_train, data.y_train, data.x_test, data.y_test)
    if sum(a.nbytes for a in arrays) < MIN_BYTES or any(a.dtype != np.uint8 for a in arrays):
        return
    layout, offset = [], 0
    for array in arrays:
        layout.append(
            [offset, list(array.shape), _crc(np.ascontiguousarray(array), 0, array.nbytes)]
        )
        offset = _aligned(offset + array.nbytes)
    header = {"format": FORMAT, "dataset": name, "sources": key, "arrays": layout}
    header |= {"fingerprint": data.fingerprint, "rule": _rule_probe(name)}
    header_bytes = json.dumps(header).encode()
    final = copy_path(name, folder)
    staging = final.with_name(f".{final.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        with open(staging, "wb") as f:
            f.write(PREFIX.pack(MAGIC, len(header_bytes), zlib.crc32(header_bytes)))
            f.write(header_bytes)
            start = _aligned(f.tell())
            for array, (offset, _, _) in zip(arrays, layout):
                f.write(b"\0" * (start + offset - f.tell()))
                f.write(np.ascontiguousarray(array).data)
        os.replace(staging, final)  # readers see the old copy or the new one, never half of one
    except OSError:
        with contextlib.suppress(OSError):
            staging.unlink()
        return
    _prune(final.parent, final)


def _prune(folder: Path, kept: Path) -> None:
    """Delete the other copies whose source files are gone or changed: a copy lives only as long
    as its folder (the test suite reads copies of the full set from temporary folders), so the
    cache holds one copy per live source folder. A process that has one mapped keeps its pages."""
    for path in folder.glob("*.idx"):
        if path == kept:
            continue
        try:
            with open(path, "rb") as f:
                magic, length, _ = PREFIX.unpack(f.read(PREFIX.size))
                sources = json.loads(f.read(length))["sources"]
            if magic == MAGIC and source_key([Path(row[0]) for row in sources]) == sources:
                continue
        except (OSError, ValueError, KeyError, TypeError, IndexError, struct.error):
            pass  # unreadable: not a copy anyone can use
        with contextlib.suppress(OSError):
            path.unlink()


def _crc(buffer, begin: int, size: int) -> int:
    """CRC-32 of `size` bytes from `begin` of a mapping or a C-contiguous array, without a copy."""
    return zlib.crc32(memoryview(buffer).cast("B")[begin : begin + size])


def _aligned(offset: int) -> int:
    return -(-offset // ALIGN) * ALIGN


def _rule_probe(name: str) -> str:
    """Dataset's fingerprint of a fixed one-pixel set under this name: it changes exactly when the
    fingerprint rule does, and a kept fingerprint is used only while it has not."""
    pixel, label = np.zeros((1, 1, 1), np.uint8), np.zeros(1, np.uint8)
    probe = Dataset(name, pixel, label, pixel, label, class_names=(), source="", source_detail="")
    return probe.fingerprint
