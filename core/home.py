"""Where the playground keeps things, and every PLAYGROUND_* setting of the environment, read in
one place.

PLAYGROUND_HOME holds everything a person makes: runs/ and index.sqlite (the run store),
datasets/ (imported datasets), sweeps/ (Optuna journals). The other variables:

  PLAYGROUND_DATA_DIR       a folder of Fashion-MNIST's four IDX files, tried first
  PLAYGROUND_MNIST_DIR      the same for MNIST
  PLAYGROUND_NO_DOWNLOAD    set: never try Keras's download
  PLAYGROUND_STORE_LIMIT_GB the run store's size limit (least recently used runs are evicted)
  PLAYGROUND_MAX_MODEL_MB   the largest model file one run may store
  PLAYGROUND_WORKERS        trainings at once (default 1 here; on Ray, one per CPU or GPU)
  PLAYGROUND_SHARED         1: one server for many people; runs belong to the session that made them
  PLAYGROUND_RAY_ADDRESS    train on the Ray cluster at this address instead of this machine
  PLAYGROUND_VERBOSE        set: show the C++ libraries' start-up chatter in the CLI

Functions, not constants: a test (or a person) may change the environment between two calls.
"""

from __future__ import annotations

import os
from pathlib import Path

RAY_ADDRESS_VARIABLE = "PLAYGROUND_RAY_ADDRESS"


def default_home() -> Path:
    """PLAYGROUND_HOME, else a folder in the user's cache directory."""
    if os.environ.get("PLAYGROUND_HOME"):
        return Path(os.environ["PLAYGROUND_HOME"]).expanduser()
    return cache_folder() / "dl-playground"


def cache_folder() -> Path:
    """XDG_CACHE_HOME, else ~/.cache."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")


def data_cache_folder() -> Path:
    """Decompressed copies of the built-in datasets (core.data.idx_cache): safe to delete."""
    return cache_folder() / "playground-data"


def data_folder(variable: str) -> str:
    """The folder a PLAYGROUND_*_DIR variable names, or ''."""
    return os.environ.get(variable, "")


def downloads_allowed() -> bool:
    return not os.environ.get("PLAYGROUND_NO_DOWNLOAD")


def limit_text(variable: str) -> str:
    """The raw text of a size limit (PLAYGROUND_STORE_LIMIT_GB, PLAYGROUND_MAX_MODEL_MB), or ''."""
    return os.environ.get(variable, "").strip()


def workers_wanted() -> int | None:
    """PLAYGROUND_WORKERS as a number (at least 1), or None when unset."""
    text = os.environ.get("PLAYGROUND_WORKERS", "").strip()
    return max(1, int(text)) if text else None


def shared_server() -> bool:
    """One server for many people (PLAYGROUND_SHARED=1): each run belongs to one session."""
    return os.environ.get("PLAYGROUND_SHARED") == "1"


def ray_address() -> str:
    return os.environ.get(RAY_ADDRESS_VARIABLE, "").strip()


def verbose() -> bool:
    return bool(os.environ.get("PLAYGROUND_VERBOSE"))
