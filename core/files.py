"""Folder operations that are all-or-nothing, shared by the run store and the dataset catalog.

A folder appears under its final name in one rename(2), is replaced in one rename exchange, and
disappears by being renamed aside before it is removed, so a reader never meets half of one and a
crash leaves at most a hidden leftover that the next open sweeps away.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import shutil
import uuid
from pathlib import Path


def format_size(n_bytes: float) -> str:
    """Bytes as people read them (decimal units, as the limits are given): 233 MB, 4.8 GB."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n_bytes >= scale:
            value = n_bytes / scale
            return f"{value:.1f} {unit}" if value < 10 else f"{value:,.0f} {unit}"
    return f"{int(n_bytes)} bytes"


def folder_size(folder: Path) -> int:
    try:
        return sum(path.stat().st_size for path in folder.iterdir() if path.is_file())
    except OSError:
        return 0


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def discard(folder: Path, parent: Path) -> None:
    # Rename first so the name is free at once; the slow delete can then fail harmlessly.
    trash = parent / f".trash-{folder.name}-{uuid.uuid4().hex[:8]}"
    os.rename(folder, trash)
    shutil.rmtree(trash, ignore_errors=True)


def discard_quietly(folder: Path, parent: Path) -> None:
    # Its row is already gone, so a leftover is only disk space: the next open sweeps .trash-*.
    with contextlib.suppress(OSError):
        discard(folder, parent)


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100
_renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)


def swap_in(staging: Path, final: Path) -> None:
    """Put `staging` at `final`'s name in one step; the old folder ends up at `staging`'s name.

    Linux's renameat2(RENAME_EXCHANGE) swaps two names atomically, so a reader never finds the
    run missing. Where it is unavailable, the old folder moves aside first (a brief gap).
    """
    if _renameat2 is not None:
        done = _renameat2(
            _AT_FDCWD, os.fsencode(staging), _AT_FDCWD, os.fsencode(final), _RENAME_EXCHANGE
        )
        if done == 0:
            return
        code = ctypes.get_errno()
        if code not in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
            raise OSError(code, os.strerror(code), str(final))
    aside = staging.with_name(staging.name + "-old")
    os.rename(final, aside)
    os.rename(staging, final)
    os.rename(aside, staging)


def fsync_folder(folder: Path) -> None:
    for path in folder.iterdir():
        with open(path, "rb") as f:
            os.fsync(f.fileno())
