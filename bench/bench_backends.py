"""Which Keras backend trains which network fastest here: the measurements behind `auto`.

    .venv/bin/python bench/bench_backends.py [--images 20000] [--epochs 3]

For each installed backend (each in its own process: Keras fixes its backend per process) and each
network — the tutorial's dense net at batch 32, the `fast` preset, the `cnn` preset's strided
convolutions and the same blocks with max-pooling (the cnn preset before it was strided) — it
trains `--epochs` epochs on the first `--images` training images and prints the median seconds per
epoch after the first (which pays for compilation), with steps_per_execution as the engine picks it
and with 1. Then it prints what `auto` picks for each network. Prints, asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.runtime import BACKENDS, choose, installed  # noqa: E402
from core.spec.presets import PRESETS  # noqa: E402

NETWORKS = {
    "seed (dense)": PRESETS["seed"],
    "fast (dense 256)": PRESETS["fast"],
    "cnn (conv 32+64, stride 2, same)": PRESETS["cnn"],
    "conv 32+64, max-pool, valid": PRESETS["cnn"].replace(
        conv_padding="valid", conv_downsample="maxpool"
    ),
}

CHILD = """
import json, os, statistics, sys, time
sys.path.insert(0, {root!r})
from core.spec.config import RunConfig
from core.data.registry import load_dataset
from core.learn.model import build_model
from core.learn.training import prepare_arrays, seed_everything
from core.learn.pace import steps_per_execution
from core.runtime import describe_device
config = RunConfig.from_json({config!r}).replace(train_size={images}, epochs={epochs})
data = load_dataset()
seed_everything(0)
per_call = {per_call} or steps_per_execution(config, data.input_shape, False)
x, y, _ = prepare_arrays(config, data)
steps = -(-len(x) // config.batch_size)  # the cosine schedule's length is counted in batches
model = build_model(config, data.input_shape, data.num_classes, steps_per_execution=per_call,
                    steps_per_epoch=steps)
import keras
times = []
class Clock(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.t = time.perf_counter()
    def on_epoch_end(self, epoch, logs=None):
        times.append(time.perf_counter() - self.t)
model.fit(x, y, batch_size=config.batch_size, epochs=config.epochs, verbose=0, callbacks=[Clock()])
print(json.dumps({{"seconds": statistics.median(times[1:]), "per_call": per_call,
                   "device": describe_device(keras.backend.backend())}}))
"""


def measure(backend: str, config, images: int, epochs: int, per_call: int) -> dict:
    code = CHILD.format(
        root=str(ROOT), config=config.to_json(), images=images, epochs=epochs, per_call=per_call
    )
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1][:120]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=20_000)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    from bench.bench_training import machine

    print(f"machine: {machine()}")
    print(f"{args.images:,} training images, median s/epoch of epochs 2..{args.epochs}\n")
    backends = [b for b in BACKENDS if installed(b)]
    print("| network | " + " | ".join(f"{b} (auto steps) | {b} (1 step)" for b in backends) + " |")
    print("|---|" + "---|---|" * len(backends))
    for title, config in NETWORKS.items():
        cells = []
        for backend in backends:
            for per_call in (0, 1):
                m = measure(backend, config, args.images, args.epochs, per_call)
                cells.append(
                    m.get("error")
                    or f"{m['seconds']:.2f} s"
                    + (f" ({m['per_call']}/call)" if not per_call else "")
                )
        print(f"| {title} | " + " | ".join(cells) + " |", flush=True)
    print()
    for title, config in NETWORKS.items():
        print(f"auto picks for {title}: {choose(config.has_conv, gpu=False)} on a CPU")


if __name__ == "__main__":
    main()
