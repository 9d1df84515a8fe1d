"""Issue 10: what a sweep costs through `python -m core sweep`, fresh and again from the store.

    .venv/bin/python bench/bench_sweep.py [--trials 3] [--repeats 3]

Each repeat runs, in a fresh temporary store, the "Which learning rate?" question on a tiny base
(2,000 images, 1 epoch) as a whole process; then the same sweep under another name, whose trials
are all answered from the store. Prints the medians and their ratio; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_training import machine  # noqa: E402

BASE = ["--train-size", "2000", "--epochs", "1", "--batch-size", "64"]


def sweep(name: str, trials: int, env: dict) -> tuple[float, dict]:
    command = [sys.executable, "-m", "core", "sweep", "--experiment", "learning-rate"]
    command += [*BASE, "--trials", str(trials), "--name", name, "--json"]
    started = time.perf_counter()
    out = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if out.returncode != 0:
        sys.exit(f"sweep failed ({out.returncode}): {out.stderr.strip()[-500:]}")
    lines = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    return seconds, lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(machine())
    fresh, again = [], []
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as home:
            env = {**os.environ, "PLAYGROUND_HOME": home}
            seconds, lines = sweep("first", args.trials, env)
            fresh.append(seconds)
            seconds_again, lines_again = sweep("again", args.trials, env)
            again.append(seconds_again)
            cached = [line.get("cached") for line in lines_again if "number" in line]
            print(
                f"fresh {seconds:.1f} s (best {lines[-1].get('best_value')}), "
                f"again {seconds_again:.1f} s, trials answered from the store: "
                f"{sum(bool(c) for c in cached)} of {len(cached)}",
                flush=True,
            )
    first, second = statistics.median(fresh), statistics.median(again)
    print(
        f"{args.trials}-trial sweep, median of {args.repeats}: fresh {first:.1f} s, "
        f"again {second:.1f} s, ratio {second / first:.2f}"
    )


if __name__ == "__main__":
    main()
