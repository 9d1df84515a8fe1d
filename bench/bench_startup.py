"""Issue 16's start-up figures: what `python -m core train` pays around its epochs, phase by phase,
for the `fast` and `seed` presets on the full Fashion-MNIST. Prints, asserts nothing.

    .venv/bin/python bench/bench_startup.py [--repeats 5] [--presets fast,seed] [--cold] [--cuts]

Each repeat runs, alternating, for every preset:
1. a child process that walks the CLI's own path with the engine's public functions (the CLI's
   parser and config, RunStore, load_dataset, Dataset.fingerprint, use_backend/import_keras,
   this_device, prepare_arrays, train() with a listener) on a one-epoch copy of the preset, and
   times each step with time.perf_counter from inside. Its first phase starts when the parent
   starts it (perf_counter is the system-wide monotonic clock), so it holds the interpreter's own
   start-up too;
2. `python -m core --home FRESH train --preset NAME --json`, the whole process timed from outside
   (wall clock), the full preset as a person runs it; "whole minus fit" is its fixed cost.
Every run gets a fresh temporary --home, so nothing is answered from the run store. The caches a
person's second run finds (XLA's compiled programs, the decompressed data) are warmed by one run
before the repeats; --cold adds one run of each with empty caches (a first run on a new machine).
The table shows medians. Then `-X importtime` evidence: what the CLI imports before Keras, and
what the Keras import itself costs, by top-level package (self time, median of 3). --cuts adds
what each start-up cut of issue 16 spares: the old work done explicitly beside what runs now,
alternating in fresh processes, medians of --repeats.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SPAWNED = "BENCH_STARTUP_SPAWNED"  # the parent's perf_counter when it started the child
NO_FREEZE = "BENCH_STARTUP_NO_FREEZE"  # set: the child's import_keras leaves the GC unfrozen
PHASES = (  # (key, label); a phase ends at its mark and starts at the previous one
    ("our_imports", "interpreter + our imports before Keras (CLI, config, store)"),
    ("data_read", "data read (load_dataset)"),
    ("fingerprint", "fingerprint + store lookup (run id)"),
    ("keras_import", "Keras + backend import (use_backend, import_keras)"),
    ("backend_start", "backend start (this_device)"),
    ("scaled", "images to float32 (prepare_arrays, once per process)"),
    ("model_built", "model build + compile (train() until 'started')"),
    ("first_batch", "first compiled step (until the first batch)"),
    ("epoch", "rest of the one epoch (training, not start-up)"),
    ("finished", "evaluation + store write"),
    ("exit", "exit (exit_now), timed by the parent"),
)


def child(preset: str, home: str) -> None:
    """`python -m core --home HOME train --preset PRESET --epochs 1 --json`, step by step."""
    marks = {"spawned": float(os.environ[SPAWNED])}
    from core.cli.console import config_from_args
    from core.cli.main import make_parser
    from core.store import RunStore

    argv = ["--home", home, "train", "--preset", preset, "--epochs", "1", "--json"]
    args = make_parser().parse_args(argv)
    store = RunStore(args.home)
    config = config_from_args(args)
    marks["our_imports"] = time.perf_counter()
    from core.data.registry import load_dataset

    data = load_dataset(config.dataset, home=store.home)
    marks["data_read"] = time.perf_counter()
    store.get(config.run_id_for(data.fingerprint))
    marks["fingerprint"] = time.perf_counter()
    from core.runtime import import_keras, resolve, this_device, use_backend

    backend = resolve(config)
    use_backend(backend, log_level="3")
    if os.environ.get(NO_FREEZE):  # --cuts: import_keras as it was before it froze the GC
        import gc

        gc.freeze = lambda: None  # in this child process only
    import_keras()
    marks["keras_import"] = time.perf_counter()
    this_device()
    marks["backend_start"] = time.perf_counter()
    from core.learn.training import prepare_arrays, train

    prepare_arrays(config, data)  # train() reuses the scaled images: the same work, timed apart
    marks["scaled"] = time.perf_counter()
    firsts: dict[str, float] = {}

    def listener(event) -> None:
        firsts.setdefault(event.kind, time.perf_counter())

    result = train(config, data, listener=listener, store=store)
    marks["model_built"] = firsts.get("started", 0.0)
    marks["first_batch"] = firsts.get("batch", 0.0)
    marks["epoch"] = firsts.get("epoch", 0.0)
    marks["finished"] = time.perf_counter()
    report = {"status": result.status, "backend": backend, "source": data.source}
    report["phases"] = phase_seconds(marks)
    report["finished_at"] = marks["finished"]
    print(json.dumps(report), flush=True)
    from core.cli.console import exit_now

    exit_now(0)  # as `python -m core` leaves: the parent times this last phase


def phase_seconds(marks: dict[str, float]) -> dict[str, float]:
    seconds, previous = {}, marks["spawned"]
    for key, _ in PHASES[:-1]:
        seconds[key] = marks[key] - previous
        previous = marks[key]
    return seconds


def run_child(preset: str, env: dict) -> dict:
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory(prefix="bench-startup-") as home:
        command = [sys.executable, __file__, "--child", preset, home]
        env = {**env, SPAWNED: repr(time.perf_counter())}
        out = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
        ended = time.perf_counter()
    if out.returncode != 0:
        raise SystemExit(f"the phase child for {preset} failed:\n{out.stderr[-3000:]}")
    report = json.loads(out.stdout.strip().splitlines()[-1])
    report["phases"]["exit"] = ended - report["finished_at"]
    report["total"] = ended - float(env[SPAWNED])
    if report["status"] != "finished":
        raise SystemExit(f"the phase child for {preset} ended {report['status']}")
    return report


def run_whole(preset: str, env: dict) -> tuple[float, float]:
    """(whole process, its fit) of the full preset through the CLI, into a fresh store."""
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory(prefix="bench-startup-") as home:
        command = [sys.executable, "-m", "core", "--home", home, "train", "--preset", preset]
        started = time.perf_counter()
        out = subprocess.run(
            [*command, "--json"], cwd=ROOT, env=env, capture_output=True, text=True
        )
        seconds = time.perf_counter() - started
    if out.returncode != 0:
        raise SystemExit(f"python -m core train --preset {preset} failed:\n{out.stderr[-3000:]}")
    answer = json.loads(out.stdout.strip().splitlines()[-1])
    return seconds, answer["train_seconds"]


def bare_interpreter(env: dict) -> float:
    """`python -c pass` from outside: the part of the first phase no code of ours can cut."""
    import subprocess

    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], cwd=ROOT, env=env, check=True)
    return time.perf_counter() - started


def cold_env(env: dict, folder: str) -> dict:
    """Empty caches: the user's cache folder (the data cache) and XLA's compilation cache."""
    return {**env, "XDG_CACHE_HOME": folder, "JAX_COMPILATION_CACHE_DIR": f"{folder}/jax"}


def print_table(presets, reports, wholes, cold, interpreter) -> None:
    from statistics import median

    header = "| phase | " + " | ".join(presets) + " |"
    print(header)
    print("|---" * (len(presets) + 1) + "|")

    def row(label: str, values: list[str]) -> None:
        print(f"| {label} | " + " | ".join(values) + " |")

    for key, label in PHASES:
        row(label, [f"{median(r['phases'][key] for r in reports[p]):.3f}" for p in presets])
        if key == "our_imports":
            bare = f"{median(interpreter):.3f}"
            row("- of which a bare interpreter (`python -c pass`, outside)", [bare] * len(presets))
    row(
        "child total, spawn to exit (1 epoch)",
        [f"{median(r['total'] for r in reports[p]):.3f}" for p in presets],
    )
    row(
        "whole process, full preset (outside)",
        [f"{median(w[0] for w in wholes[p]):.2f}" for p in presets],
    )
    row("its fit (train_seconds)", [f"{median(w[1] for w in wholes[p]):.2f}" for p in presets])
    row(
        "whole minus fit: the fixed cost",
        [f"{median(w[0] - w[1] for w in wholes[p]):.2f}" for p in presets],
    )
    if cold:
        row("whole process, empty caches (once)", [f"{cold[p][0]:.2f}" for p in presets])
        row("its fit", [f"{cold[p][1]:.2f}" for p in presets])


def importtime_runs(code: str, env: dict, runs: int = 3) -> tuple[list[dict], list[dict], str]:
    """`python -X importtime -c code`, `runs` times: per run, {package: self ms} and {module:
    cumulative ms} of the modules imported at the top or one level down; and the last stdout."""
    import re
    import subprocess
    from collections import Counter

    selfs, cumulatives, stdout = [], [], ""
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", code],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        packages: Counter = Counter()
        modules: dict[str, float] = {}
        for line in out.stderr.splitlines():
            found = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
            if found:
                packages[found.group(4).split(".")[0]] += int(found.group(1)) / 1000
                if len(found.group(3)) <= 3:  # importtime indents two spaces per level
                    modules[found.group(4)] = int(found.group(2)) / 1000
        selfs.append(packages)
        cumulatives.append(modules)
        stdout = out.stdout
    return selfs, cumulatives, stdout


def medians(runs: list[dict]) -> list[tuple[str, float]]:
    """{name: median over the runs (0 where absent)}, largest first."""
    from statistics import median

    names = set().union(*runs)
    return sorted(((n, median(r.get(n, 0.0) for r in runs)) for n in names), key=lambda r: -r[1])


def print_imports(env: dict, top: int) -> None:
    from statistics import median

    cli = "import core.cli.main as m; m.make_parser()"
    keras = (
        "import sys, core.cli.main; from core.runtime import use_backend, import_keras; "
        "use_backend('jax'); import_keras(); print(sorted({'pandas', 'PIL'} & set(sys.modules)))"
    )
    cli_selfs, cli_cumulative, _ = importtime_runs(cli, env)
    both_selfs, _, loaded = importtime_runs(keras, env)
    cli_total = median(sum(run.values()) for run in cli_selfs)
    both_total = median(sum(run.values()) for run in both_selfs)
    print(f"\n`python -X importtime -c {cli!r}` (median of 3): {cli_total:.0f} ms of imports")
    biggest = ", ".join(f"{n} {ms:.0f}" for n, ms in medians(cli_cumulative)[:top])
    print(f"  largest cumulative, ms (two levels deep): {biggest}")
    print(
        "  by package, self ms: " + ", ".join(f"{n} {ms:.0f}" for n, ms in medians(cli_selfs)[:top])
    )
    before = dict(medians(cli_selfs))
    extra = [(n, ms - before.get(n, 0.0)) for n, ms in medians(both_selfs)]
    extra.sort(key=lambda r: -r[1])
    print(f"then use_backend('jax'); import_keras(): {both_total - cli_total:.0f} ms more")
    print("  by package, self ms: " + ", ".join(f"{n} {ms:.0f}" for n, ms in extra[:top]))
    print(f"  of pandas and PIL, loaded after the Keras import: {loaded.strip()}")


# What each cut spares, as the old work done explicitly beside what runs now, each in a fresh
# process, timed inside from `s` to the end: (name, setup, before, after).
CUTS = (
    (
        "data read + fingerprint: gunzip and hash, or the checked decompressed copy",
        "import dataclasses\nfrom core.data import sources, registry",
        "plain = [dataclasses.replace(x, idx_folder=None)\n"
        "         for x in sources.DATASETS['fashion_mnist'].sources()]\n"
        "sources.load_from_sources('fashion_mnist', plain).fingerprint",
        "registry.load_dataset('fashion_mnist').fingerprint",
    ),
    (
        "Keras import: with pandas (as Keras's data adapters load it), or without",
        "import core.cli.main\nfrom core.runtime import use_backend, import_keras\n"
        "use_backend('jax')",
        "import pandas\nimport_keras()",
        "import_keras()",
    ),
    (
        "CLI start: the parser with core.data.importer (and PIL), or without",
        "",
        "import core.cli.main as m\nimport core.data.importer\nm.make_parser()",
        "import core.cli.main as m\nm.make_parser()",
    ),
)


def time_snippet(setup: str, body: str, env: dict) -> float:
    import subprocess

    code = f"import time\n{setup}\ns = time.perf_counter()\n{body}\nprint(time.perf_counter() - s)"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if out.returncode != 0:
        raise SystemExit(f"a cut's snippet failed:\n{code}\n{out.stderr[-2000:]}")
    return float(out.stdout.strip().splitlines()[-1])


def print_cuts(env: dict, repeats: int) -> None:
    from statistics import median

    print(f"\neach cut, before and after, alternating in fresh processes (median of {repeats}):")
    print("| what | before, s | after, s | saved, s |")
    print("|---|---|---|---|")
    for name, setup, before, after in CUTS:
        old, new = [], []
        for _ in range(repeats):
            old.append(time_snippet(setup, before, env))
            new.append(time_snippet(setup, after, env))
        saved = median(old) - median(new)
        print(f"| {name} | {median(old):.3f} | {median(new):.3f} | {saved:.3f} |", flush=True)
    old, new = [], []  # the freeze, in the phase child: its GC history is the CLI's
    for _ in range(repeats):
        old.append(run_child("fast", {**env, NO_FREEZE: "1"})["phases"]["first_batch"])
        new.append(run_child("fast", env)["phases"]["first_batch"])
    name = "fast's first compiled step: a full collection walks Keras's objects, or they are frozen"
    saved = median(old) - median(new)
    print(f"| {name} | {median(old):.3f} | {median(new):.3f} | {saved:.3f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--presets", default="fast,seed")
    parser.add_argument("--cold", action="store_true", help="add one run with empty caches")
    parser.add_argument("--top", type=int, default=8, help="packages shown per import line")
    parser.add_argument("--cuts", action="store_true", help="add each cut's before and after")
    parser.add_argument("--child", nargs=2, metavar=("PRESET", "HOME"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    import tempfile

    from core.runtime import use_backend

    use_backend("jax")  # machine() asks Keras for the device: JAX trains fast and seed here
    from bench.bench_training import machine

    presets = args.presets.split(",")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    print(f"machine: {machine()}", flush=True)
    cold = {}
    if args.cold:
        for name in presets:
            with tempfile.TemporaryDirectory(prefix="bench-startup-cold-") as folder:
                cold[name] = run_whole(name, cold_env(env, folder))
            print(f"{name}, empty caches: {cold[name][0]:.2f} s whole", flush=True)
    for name in presets:  # warm-up: the caches a second run finds
        run_child(name, env)
        run_whole(name, env)
    reports = {name: [] for name in presets}
    wholes = {name: [] for name in presets}
    interpreter = []
    for repeat in range(args.repeats):
        interpreter.append(bare_interpreter(env))
        for name in presets:
            reports[name].append(run_child(name, env))
            wholes[name].append(run_whole(name, env))
            print(
                f"repeat {repeat + 1} {name}: child {reports[name][-1]['total']:.2f} s, "
                f"whole {wholes[name][-1][0]:.2f} s (fit {wholes[name][-1][1]:.2f} s)",
                flush=True,
            )
    backends = ", ".join(f"{p}: {reports[p][0]['backend']}" for p in presets)
    sources = ", ".join(sorted({r["source"] for p in presets for r in reports[p]}))
    print(f"\nseconds, median of {args.repeats} ({backends}; data from {sources}):")
    print_table(presets, reports, wholes, cold, interpreter)
    print_imports(env, args.top)
    if args.cuts:
        print_cuts(env, args.repeats)


if __name__ == "__main__":
    main()
