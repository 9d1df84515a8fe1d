"""Issue 8's targets: whole-process time of each preset through `python -m core train`, as a ratio
to the Keras tutorial script (bench/tutorial_script.py) timed in the same run. Prints, asserts
nothing.

    .venv/bin/python bench/bench_speed.py [--repeats 3] [--presets seed,fast,cnn,best]

The tutorial and the short presets (seed, fast) run `--repeats` times, alternating, and their
medians are compared; the long ones (cnn, best) run once. Every preset trains fresh (--force) into
a temporary store. Both sides pay their own Python, framework and data start-up, as a user would.
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

TARGETS = {  # preset: (accuracy at least, time ratio at most; None = reported only)
    "seed": (0.87, 0.30),
    "fast": (0.88, 0.12),
    "cnn": (0.91, 2.5),
    "best": (0.925, None),
}


def timed(command: list[str], env: dict) -> tuple[float, str]:
    started = time.perf_counter()
    out = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{out.stderr[-2000:]}")
    return seconds, out.stdout


def tutorial(env: dict) -> tuple[float, float]:
    seconds, out = timed([sys.executable, "bench/tutorial_script.py"], env)
    return seconds, float(out.split()[-1])


def preset(name: str, env: dict, home: str) -> tuple[float, dict]:
    command = [sys.executable, "-m", "core", "--home", home, "train", "--preset", name]
    seconds, out = timed([*command, "--force", "--json"], env)
    return seconds, json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--presets", default="seed,fast,cnn,best")
    args = parser.parse_args()
    names = args.presets.split(",")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    print(f"machine: {machine()}", flush=True)
    home = tempfile.mkdtemp(prefix="bench-speed-")
    tut_times, tut_acc = [], []
    times: dict[str, list[float]] = {name: [] for name in names}
    answers: dict[str, dict] = {}
    short = [n for n in names if n in ("seed", "fast")]
    for repeat in range(args.repeats):
        seconds, accuracy = tutorial(env)
        tut_times.append(seconds)
        tut_acc.append(accuracy)
        print(f"tutorial script: {seconds:.1f} s, accuracy {accuracy:.4f}", flush=True)
        for name in short if repeat else names:
            seconds, answer = preset(name, env, home)
            times[name].append(seconds)
            answers[name] = answer
            print(
                f"{name}: {seconds:.1f} s whole process ({answer['train_seconds']:.1f} s in fit), "
                f"accuracy {answer['test_accuracy']:.4f}, on {answer['device']} · "
                f"{answer['backend']}",
                flush=True,
            )
    base = statistics.median(tut_times)
    print(
        f"\ntutorial script, median of {len(tut_times)}: {base:.1f} s "
        f"(accuracy {statistics.median(tut_acc):.4f})"
    )
    print("| preset | backend | whole process | ratio to tutorial | target | accuracy | target |")
    print("|---|---|---|---|---|---|---|")
    for name in names:
        seconds = statistics.median(times[name])
        accuracy_target, ratio_target = TARGETS.get(name, (None, None))
        answer = answers[name]
        print(
            f"| {name} | {answer['backend']} | {seconds:.1f} s (median of {len(times[name])}) "
            f"| {seconds / base:.3f} | {f'≤ {ratio_target:.2f}' if ratio_target else '—'} "
            f"| {answer['test_accuracy']:.4f} "
            f"| {f'≥ {accuracy_target:.3f}' if accuracy_target else '—'} |"
        )


if __name__ == "__main__":
    main()
