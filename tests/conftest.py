"""Shared fixtures: real data, a run store in a temporary folder, and a quiet TensorFlow."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="session")
def full_data():
    """The full real Fashion-MNIST set; CI installs Debian's dataset-fashion-mnist for it."""
    from core.datasets import load_dataset

    data = load_dataset("fashion_mnist")
    assert not data.is_sample, (
        "These tests need the full Fashion-MNIST set (apt-get install dataset-fashion-mnist); "
        f"found only: {data.source_detail}"
    )
    return data


@pytest.fixture
def store(tmp_path):
    from core.store import RunStore

    return RunStore(tmp_path / "home")
