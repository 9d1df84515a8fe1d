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
E2E = ROOT / "tests" / "e2e"


@pytest.hookimpl(tryfirst=True)  # before -m "not slow" deselects (./test.sh --quick)
def pytest_collection_modifyitems(items):
    """Mark slow, file by file, what needs a real browser (everything under tests/e2e/: a
    Streamlit server and Chromium) or a real Ray cluster (every module that imports ray_head from
    tests/ray_cluster.py, which starts a Ray head). Other slow tests carry @pytest.mark.slow."""
    for item in items:
        starts_ray = getattr(getattr(item, "module", None), "ray_head", None)
        if item.path.is_relative_to(E2E) or getattr(starts_ray, "__module__", "") == "ray_cluster":
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def main_module_restored():
    """Put back the interpreter's __main__ after each test. AppTest runs a page as __main__ and
    leaves it there, and multiprocessing's spawn re-runs __main__'s file in every child it starts:
    after an AppTest of the Train page, a child spawned by a later test (the Ray probe, a trainer)
    ran that page first, whose warm-up spawns a trainer while the child is still starting, and
    died."""
    main = sys.modules["__main__"]
    yield
    sys.modules["__main__"] = main


@pytest.fixture(scope="session")
def full_data():
    """The full real Fashion-MNIST set; CI installs Debian's dataset-fashion-mnist for it."""
    from core.data.registry import load_dataset

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


@pytest.fixture(scope="session")
def trained(tmp_path_factory, full_data):
    """A store holding two real trained runs: a dense network and a small convolutional one.

    Returns (home, dense RunResult, conv RunResult). Tests only read from this store.
    """
    from core.learn.training import train
    from core.spec.config import LayerSpec, RunConfig
    from core.store import RunStore

    home = tmp_path_factory.mktemp("trained-home")
    store = RunStore(home)
    dense = train(RunConfig(layers=(LayerSpec(units=128),), epochs=2), full_data, store=store)
    small_conv = RunConfig(
        layers=(LayerSpec(kind="conv", filters=8, kernel_size=3), LayerSpec(units=128)),
        learning_rate=2e-3,
        batch_size=128,
        epochs=1,
        train_size=10_000,
    )
    conv = train(small_conv, full_data, store=store)
    assert dense.ok and conv.ok
    return home, dense, conv
