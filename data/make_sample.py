"""Rebuild the bundled Fashion-MNIST sample from the full data set, reproducibly.

    python data/make_sample.py [--train-per-class 500] [--test-per-class 100] [--out PATH]

It draws a fixed-seed stratified subset of the real images (the same count from every class) from
whichever full source core.data.registry finds, and writes data/fashion_mnist-sample.npz.xz.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.data.registry import load_dataset  # noqa: E402
from core.data.sources import sample_path, write_sample

SEED = 20240601  # fixed so the file can be rebuilt byte for byte


def stratified(labels: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    picks = [rng.choice(np.flatnonzero(labels == c), per_class, replace=False) for c in range(10)]
    return np.concatenate([np.sort(p) for p in picks])  # grouped by class, original order within


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-per-class", type=int, default=500)
    parser.add_argument("--test-per-class", type=int, default=100)
    parser.add_argument("--out", type=Path, default=sample_path("fashion_mnist"))
    args = parser.parse_args()
    data = load_dataset("fashion_mnist")
    if data.is_sample:
        sys.exit("The full Fashion-MNIST set is needed to draw the sample; none was found.")
    rng = np.random.default_rng(SEED)
    train = stratified(data.y_train, args.train_per_class, rng)
    test = stratified(data.y_test, args.test_per_class, rng)
    path = args.out
    write_sample(
        path, data.x_train[train], data.y_train[train], data.x_test[test], data.y_test[test]
    )
    print(
        f"wrote {path} ({path.stat().st_size:,} bytes) from {data.source_detail}: "
        f"{len(train)} training and {len(test)} test images"
    )


if __name__ == "__main__":
    main()
