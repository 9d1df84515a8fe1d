"""Benchmarks for the core engine; prints figures, asserts nothing.

    KERAS_BACKEND=jax .venv/bin/python bench/bench_training.py [--repeats 3] [--epochs 10]

The backend is this process's (KERAS_BACKEND, default tensorflow); bench_speed.py times the presets
through the CLI, each on the backend auto picks for it.

1. Overhead: the full core path (train(): listener, evaluation, atomic store write) against bare
   keras model.fit on the same `seed` config, same data, same seed, alternating, median of N.
2. A cached answer (`python -m core train --preset seed --json` on a stored run, a fresh process)
   against training the same config.
3. Each preset trained once: training time and test accuracy.
All figures come from one run on one machine; the machine is printed with them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.data.registry import describe_source, load_dataset  # noqa: E402
from core.learn.pace import steps_per_execution  # noqa: E402
from core.learn.training import prepare_arrays, seed_everything, train  # noqa: E402
from core.runtime import current_backend  # noqa: E402
from core.runtime import this_device as describe_device  # noqa: E402
from core.spec.presets import PRESETS  # noqa: E402
from core.store import RunStore  # noqa: E402


def machine() -> str:
    """The CPU, the device and the versions, without importing a framework not in use."""
    from importlib import metadata

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = []
    for package in ("keras", "tensorflow", "jax", "torch"):
        try:
            versions.append(f"{package} {metadata.version(package)}")
        except metadata.PackageNotFoundError:
            pass
    return (
        f"{os.cpu_count()} cores ({cpu}), {describe_device()}, "
        f"Python {platform.python_version()}, " + ", ".join(versions)
    )


def bare_fit(config, data) -> float:
    """What a person writes by hand: seed, build, compile, fit. Timed: the fit call."""

    from core.learn.model import build_model

    seed_everything(config.seed)
    x, y, _ = prepare_arrays(config, data)
    per_call = steps_per_execution(config, data.input_shape, describe_device().startswith("GPU"))
    # the same steps per call as the engine: this measures the engine's path, not that setting
    steps = -(-len(x) // config.batch_size)  # a cosine schedule's length, in batches
    model = build_model(
        config,
        data.input_shape,
        data.num_classes,
        steps_per_execution=per_call,
        steps_per_epoch=steps,
    )
    started = time.perf_counter()
    model.fit(x, y, batch_size=config.batch_size, epochs=config.epochs, verbose=0)
    return time.perf_counter() - started


def core_path(config, data) -> tuple[float, float]:
    """train() with a listener and a fresh store: (whole call, its fit phase)."""
    events = []
    with tempfile.TemporaryDirectory() as home:
        store = RunStore(home)
        started = time.perf_counter()
        result = train(config, data, listener=events.append, store=store)
        total = time.perf_counter() - started
    assert result.ok, result.message
    return total, result.train_seconds


def bench_overhead(data, repeats: int, epochs: int) -> None:
    config = PRESETS["seed"].replace(epochs=epochs)
    bare_fit(config.replace(epochs=1), data)  # warm-up: the backend's first compilation
    bare, whole, fit_phase = [], [], []
    for i in range(repeats):
        bare.append(bare_fit(config, data))
        total, fit_seconds = core_path(config, data)
        whole.append(total)
        fit_phase.append(fit_seconds)
        print(
            f"  repeat {i + 1}: bare fit {bare[-1]:.2f} s | core train() {total:.2f} s "
            f"(fit phase {fit_seconds:.2f} s)",
            flush=True,
        )
    b, w, f = statistics.median(bare), statistics.median(whole), statistics.median(fit_phase)
    print(f"seed config, {epochs} epochs, median of {repeats}:")
    print(f"  bare model.fit                  {b:8.2f} s")
    print(f"  core train(), whole call        {w:8.2f} s   ratio {w / b:.3f}  (target <= 1.05)")
    print(f"    of which fit with listener    {f:8.2f} s   ratio {f / b:.3f}")
    print("  (the whole call also evaluates the test set and writes the run atomically)")


def bench_cache(data) -> None:
    config = PRESETS["seed"].replace(epochs=1)
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "PLAYGROUND_HOME": home}
        cmd = [sys.executable, "-m", "core", "train", "--preset", "seed", "--epochs", "1", "--json"]
        started = time.perf_counter()
        fresh = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=True)
        fresh_seconds = time.perf_counter() - started
        cached_times = []
        for _ in range(5):
            started = time.perf_counter()
            out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=True)
            cached_times.append(time.perf_counter() - started)
        first = json.loads(fresh.stdout.strip().splitlines()[-1])
        last = json.loads(out.stdout.strip().splitlines()[-1])
        store = RunStore(home)
        started = time.perf_counter()
        for _ in range(20):
            store.get(config.run_id_for(data.fingerprint))
        in_process = (time.perf_counter() - started) / 20
    cached = statistics.median(cached_times)
    print("cached answer (seed, 1 epoch), CLI in a fresh process:")
    print(f"  first call (trains)             {fresh_seconds:8.2f} s   cached={first['cached']}")
    print(
        f"  identical call (median of 5)    {cached:8.2f} s   cached={last['cached']}  "
        f"{fresh_seconds / cached:.0f}x faster"
    )
    print(f"  store lookup in-process         {in_process * 1000:8.2f} ms")


def bench_presets(data) -> None:
    print(f"presets, each trained once on the full data ({current_backend()} in this process):")
    for name, config in PRESETS.items():
        result = train(config, data)
        print(
            f"  {name:5s} {result.epochs_trained:2d} epochs  train {result.train_seconds:7.1f} s  "
            f"test accuracy {result.test_accuracy:.4f}  ({result.params:,} parameters)",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--skip-presets", action="store_true")
    parser.add_argument("--only-presets", action="store_true")
    args = parser.parse_args()
    data = load_dataset("fashion_mnist")
    print(f"machine: {machine()}")
    print(f"data: {describe_source(data)}\n", flush=True)
    if not args.only_presets:
        bench_overhead(data, args.repeats, args.epochs)
        print()
        bench_cache(data)
    if not args.skip_presets:
        print()
        bench_presets(data)


if __name__ == "__main__":
    main()
