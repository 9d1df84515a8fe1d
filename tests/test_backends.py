"""Keras backends on purpose: each installed backend trains end to end in its own process, auto
picks by the measured rule, results say which backend and device, fewer round trips keep Stop and
progress live, and the run id knows its data."""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from core.data import dataset, sources
from core.data.sources import load_from_sources
from core.runtime import BACKENDS, choose, installed, label, resolve, unavailable_reason
from core.spec.config import LayerSpec, RunConfig
from core.spec.presets import PRESETS

ROOT = Path(__file__).resolve().parent.parent
TINY = RunConfig(layers=(LayerSpec(units=32),), train_size=3000, epochs=2, batch_size=64)
TINY_CONV = RunConfig(
    layers=(LayerSpec(kind="conv", filters=4, kernel_size=3), LayerSpec(units=16)),
    train_size=3000,
    epochs=2,
    batch_size=64,
)

CHILD = """
import json, sys
sys.path.insert(0, {root!r})
from core.spec.config import RunConfig
from core.learn.training import train
result = train(RunConfig.from_json({config!r}))
print(json.dumps(result.summary()))
"""


def train_in(backend: str, config: RunConfig) -> dict:
    """Train in a fresh process whose Keras runs on `backend` (Keras fixes it per process)."""
    code = CHILD.format(root=str(ROOT), config=config.to_json())
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0, out.stderr[-1500:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.parametrize("backend", [b for b in BACKENDS if installed(b)])
@pytest.mark.parametrize("config", [TINY, TINY_CONV], ids=["dense", "conv"])
def test_every_installed_backend_trains_end_to_end(backend, config, full_data):
    answer = train_in(backend, config)
    assert answer["status"] == "finished", answer["message"]
    assert answer["backend"] == backend
    assert answer["device"] == "CPU" or answer["device"].startswith("GPU")
    assert answer["test_accuracy"] > 0.5
    assert answer["data_id"] == full_data.fingerprint


def test_ci_has_tensorflow_and_jax():
    assert installed("tensorflow") and installed("jax")


def test_auto_follows_the_measured_rule():
    dense, conv = PRESETS["seed"], PRESETS["cnn"]
    assert choose(False, gpu=False) == "jax"  # dense on a CPU: JAX (dispatch-bound steps)
    assert choose(True, gpu=False) == "tensorflow"  # convolutions on a CPU: TensorFlow (oneDNN)
    assert choose(True, gpu=True) == "jax" and choose(False, gpu=True) == "jax"
    assert resolve(dense) == choose(False) and resolve(conv) == choose(True)
    assert resolve(dense.replace(backend="tensorflow")) == "tensorflow"
    assert label("CPU", "jax") == "CPU · JAX"
    assert label("GPU: NVIDIA H100", "torch") == "GPU: NVIDIA H100 · PyTorch"


@pytest.mark.skipif(installed("torch"), reason="PyTorch is installed on this machine")
def test_an_uninstalled_backend_gives_one_sentence(tmp_path):
    from core.runtime import BackendUnavailable

    reason = unavailable_reason("torch")
    assert reason and "pip install 'torch'" in reason and reason.endswith(".")
    with pytest.raises(BackendUnavailable, match="pip install"):
        resolve(TINY.replace(backend="torch"))
    out = subprocess.run(
        [sys.executable, "-m", "core", "--home", str(tmp_path), "train", "--preset", "seed"]
        + ["--backend", "torch"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines()[-1].startswith("error: The PyTorch backend")


def test_dense_steps_run_many_per_call_and_conv_steps_one():
    from core.learn.pace import steps_per_execution

    assert steps_per_execution(PRESETS["seed"], (28, 28), gpu=False) >= 16
    assert steps_per_execution(PRESETS["cnn"], (28, 28), gpu=False) == 1
    # Keras's PyTorch trainer refuses more than one step per call
    assert steps_per_execution(PRESETS["seed"], (28, 28), gpu=True, backend="torch") == 1
    assert steps_per_execution(PRESETS["seed"], (28, 28), gpu=True, backend="jax") > 1


@pytest.mark.slow
def test_progress_twice_a_second_and_stop_within_a_second(full_data):
    """With many steps per call (this process's backend), the live view and Stop stay live."""
    from core.learn.pace import steps_per_execution
    from core.learn.training import CancelToken, train
    from core.runtime import current_backend

    config = PRESETS["seed"].replace(epochs=500)  # 30 million images: it cannot end before Stop
    assert steps_per_execution(config, (28, 28), gpu=False) > 1
    token = CancelToken()
    batch_times = []
    asked = {}

    def listener(event):
        if event.kind == "batch":
            batch_times.append(time.perf_counter())
            if len(batch_times) == 40:
                asked["at"] = time.perf_counter()
                threading.Thread(target=token.cancel).start()

    result = train(config, full_data, listener=listener, cancel=token)
    returned = time.perf_counter()
    assert result.status == "cancelled", current_backend()
    gaps = [b - a for a, b in zip(batch_times[1:], batch_times[2:], strict=False)]
    # Steps per call sized wrongly would make every gap long. One long gap is the shared 2-core
    # machine (CI once saw a single 2.2 s stall among 0.1 s gaps, while a trainer process of an
    # earlier test imported TensorFlow), so one is tolerated and the typical gap must be short.
    slow = [round(g, 2) for g in gaps if g >= 0.5]
    assert len(slow) <= 1, f"gaps of {slow} s between progress reports"
    assert statistics.median(gaps) < 0.25, f"median gap {statistics.median(gaps):.2f} s"
    assert returned - asked["at"] < 1.0, f"stopped {returned - asked['at']:.2f} s after Stop"


def test_run_id_knows_its_data(full_data, tmp_path, monkeypatch):
    config = PRESETS["seed"]
    # the same four files from another folder: the same content, the same run
    env_dir = tmp_path / "copy"
    env_dir.mkdir()
    for name in sources.IDX_FILES.values():
        shutil.copy(Path(full_data.source_detail) / name, env_dir / name)
    monkeypatch.setenv("PLAYGROUND_DATA_DIR", str(env_dir))
    copy = load_from_sources("fashion_mnist", sources.DATASETS["fashion_mnist"].sources())
    assert copy.source == "env" and full_data.source != "env"
    assert config.run_id_for(copy.fingerprint) == config.run_id_for(full_data.fingerprint)
    # the bundled sample is other data: another run
    sample = dataset.Dataset(
        "fashion_mnist",
        *sources.load_sample(sources.sample_path("fashion_mnist")),
        class_names=full_data.class_names,
        source="sample",
        source_detail="",
    )
    assert config.run_id_for(sample.fingerprint) != config.run_id_for(full_data.fingerprint)


@pytest.mark.slow
def test_train_config_file_round_trips_a_stored_run(tmp_path, full_data):
    """`train --config` of a stored run's config.json is the same run (answered from the store)."""
    home = tmp_path / "home"

    def cli(*args):
        out = subprocess.run(
            [sys.executable, "-m", "core", "--home", str(home), "train", *args, "--json"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert out.returncode == 0, out.stderr[-1500:]
        return json.loads(out.stdout.strip().splitlines()[-1])

    first = cli("--preset", "seed", "--epochs", "1", "--train-size", "2000")
    assert first["backend"] == "jax" and not first["cached"]  # auto's pick for a dense net
    stored = home / "runs" / first["run_id"] / "config.json"
    again = cli("--config", str(stored))
    assert again["run_id"] == first["run_id"] and again["cached"]
    other = cli("--config", str(stored), "--backend", "tensorflow")
    assert other["run_id"] != first["run_id"] and other["backend"] == "tensorflow"


@pytest.mark.slow
def test_a_jax_trainer_saves_and_loads_without_importing_tensorflow(tmp_path):
    """Keras's saving code imports TensorFlow to ask whether it is there (4-10 s, about 1 GB):
    a process that trains on JAX must not pay that on every first save. Its compiled steps are
    cached on disk."""
    code = (
        "import sys; from core.spec.presets import PRESETS; from core.store import RunStore; "
        "from core.learn.training import train; "
        f"store = RunStore({str(tmp_path)!r}); "
        "result = train(PRESETS['seed'].replace(epochs=1, train_size=640, backend='jax'), "
        "store=store); "
        "assert result.ok and result.backend == 'jax', result.message; "
        "model = store.load_model(result.run_id); "
        "assert model.count_params() == result.params; "
        "assert 'tensorflow' not in sys.modules, 'TensorFlow was imported'; print('ok')"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("JAX_")},
            "KERAS_BACKEND": "jax",
            "XDG_CACHE_HOME": str(tmp_path / "cache"),
        },
        timeout=300,
    )
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-2000:]
    # and what XLA compiled is kept on disk for the next network of the same shape
    assert list((tmp_path / "cache" / "playground-jax").iterdir())
