"""Benchmarks for classifying pictures; prints figures, asserts nothing.

    .venv/bin/python bench/bench_classify.py [--repeats 7]

1. Preprocessing (core.data.images.prepare) per file: a 12-MP phone-style JPEG, a small photo-like
   JPEG, a 28x28 PNG; and for the phone photo the same without JPEG draft decoding (the ratio
   says what decoding at reduced scale saves).
2. The model process (core.run.analyst): the first request (spawn, import TensorFlow, load the
   model), then warm requests, against the same work done in-process with core.learn.explain.
All figures come from one run on one machine; the machine is printed with them.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_training import machine  # noqa: E402
from core.data import images, reading  # noqa: E402
from core.data.registry import load_dataset  # noqa: E402
from core.run.analyst import Analyst  # noqa: E402
from core.spec.config import LayerSpec, RunConfig  # noqa: E402
from core.store import RunStore  # noqa: E402
from tests.photos import phone_photo, photo_like  # noqa: E402


def median_seconds(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    data = load_dataset("fashion_mnist")
    rng = np.random.default_rng(0)
    boot = data.x_test[np.flatnonzero(data.y_test == 9)[0]]
    png = io.BytesIO()
    Image.fromarray(boot).save(png, format="PNG")
    files = {
        "phone-style JPEG, 4032x3024": phone_photo(boot, rng),
        "photo-like JPEG, ~400x300": photo_like(boot, rng),
        "dataset PNG, 28x28": png.getvalue(),
    }
    print("\n1. preprocessing, median of", args.repeats)
    for name, blob in files.items():
        seconds = median_seconds(lambda blob=blob: images.prepare(blob), args.repeats)
        print(f"   {name:30s} {len(blob) / 1e6:6.2f} MB  {seconds * 1000:8.1f} ms")
    phone = files["phone-style JPEG, 4032x3024"]
    with_draft = median_seconds(lambda: images.prepare(phone), args.repeats)
    reading.WORK_SIDE, saved = 100_000, reading.WORK_SIDE  # draft never reduces below this
    without = median_seconds(lambda: images.prepare(phone), args.repeats)
    reading.WORK_SIDE = saved
    print(
        f"   phone photo without draft decoding: {without * 1000:.1f} ms "
        f"(draft decoding is {without / with_draft:.1f}x faster)"
    )

    print("\n2. model process vs in-process, median of", args.repeats)
    with tempfile.TemporaryDirectory() as home:
        from core.learn import explain
        from core.learn.training import train

        store = RunStore(home)
        run = train(RunConfig(layers=(LayerSpec(units=128),), epochs=1), data, store=store)
        model = store.load_model(run.run_id)
        one = data.x_test[:1]
        eight = data.x_test[:8]
        analyst = Analyst()
        start = time.perf_counter()
        analyst.classify(home, run.run_id, one)
        print(f"   first request (spawn + TensorFlow + model): {time.perf_counter() - start:.2f} s")
        cases = {
            "1 image + saliency": (
                lambda: analyst.classify(home, run.run_id, one),
                lambda: (
                    explain.probabilities(model, one),
                    explain.occlusion_saliency(model, one[0], 0),
                ),
            ),
            "8 images + saliency": (
                lambda: analyst.classify(home, run.run_id, eight),
                lambda: [explain.occlusion_saliency(model, x, 0) for x in eight],
            ),
            "every layer of 1 image": (
                lambda: analyst.layers(home, run.run_id, one[0]),
                lambda: explain.layer_outputs(model, one),
            ),
            "PCA map of 2,000 images": (
                lambda: analyst.projection(home, run.run_id, 2000),
                lambda: explain.pca_2d(explain.layer_outputs(model, data.x_test[:2000])[-2].values),
            ),
        }
        for name, (remote, local) in cases.items():
            r = median_seconds(remote, args.repeats)
            l_ = median_seconds(local, args.repeats)
            print(
                f"   {name:26s} process {r * 1000:7.1f} ms  "
                f"in-process {l_ * 1000:7.1f} ms  ratio {r / l_:.2f}"
            )
        analyst.stop()


if __name__ == "__main__":
    main()
