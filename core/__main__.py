"""Command line: `python -m core train|runs|classify ...` (see `python -m core --help`)."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

from core.backends import BackendUnavailable, label, resolve
from core.config import (
    PRESETS,
    SETTINGS,
    ConfigError,
    LayerSpec,
    RunConfig,
    Setting,
    preset,
    validate,
)
from core.datasets import DATASETS, DatasetUnavailable, describe_source, load_dataset
from core.ray_executor import ClusterUnreachable
from core.results import RunResult
from core.store import RunStore, StoreError

RAY_HELP = "train on the Ray cluster at host:6379 or ray://host:10001 (or $PLAYGROUND_RAY_ADDRESS)"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # usage + exit 2, as argparse does, but for every subcommand
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


def _bar(done: int, total: int, width: int = 28) -> str:
    filled = int(width * done / total) if total else width
    return "[" + "#" * filled + "." * (width - filled) + "]"


class ConsoleProgress:
    """Text progress: one bar per epoch, redrawn in place, then the epoch's metrics."""

    def __init__(self, stream=sys.stderr) -> None:
        self.stream = stream

    def __call__(self, event) -> None:
        if event.kind == "started":
            print(
                f"training {event.run_id}: {event.params:,} parameters on {event.device}",
                file=self.stream,
            )
        elif event.kind == "batch":
            line = (
                f"\repoch {event.epoch}/{event.epochs} {_bar(event.batch, event.batches)} "
                f"{event.batch}/{event.batches}  loss {event.logs.get('loss', math.nan):.4f}  "
                f"{event.images_per_second:,.0f} img/s"
            )
            print(line, end="", file=self.stream, flush=True)
        elif event.kind == "epoch":
            metrics = "  ".join(f"{k} {v:.4f}" for k, v in event.logs.items())
            print(
                f"\repoch {event.epoch}/{event.epochs} {_bar(1, 1)} {metrics}",
                " " * 10,
                file=self.stream,
            )
        elif event.kind in ("cancelled", "diverged", "failed"):
            print(f"\n{event.kind}: {event.message}", file=self.stream)


def config_from_args(args) -> RunConfig:
    """The preset or config file, then every override given on the command line."""
    if args.config:
        try:
            text = Path(args.config).read_text()
        except OSError as exc:
            raise ConfigError(f"The config file {args.config} cannot be read ({exc.strerror}).")
        config = RunConfig.from_json(text)
    else:
        config = preset(args.preset)
    overrides = {}
    for name in SETTINGS:
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = value
    if args.layers is not None:
        overrides["layers"] = tuple(
            LayerSpec.decode(part) for part in args.layers.split(",") if part.strip()
        )
    return config.replace(**overrides)


def cmd_train(args, store: RunStore) -> int:
    config = config_from_args(args)
    data = load_dataset(config.dataset, home=store.home)  # imported datasets live beside runs
    validate(
        config,
        train_available=len(data.x_train),
        input_shape=data.input_shape,
        num_classes=data.num_classes,
    )
    cached = store.get(config.run_id_for(data.fingerprint)) if not args.force else None
    executor = _executor(args)
    if cached is not None:
        result = cached
    elif executor is not None:
        if not args.json:
            print(describe_source(data), file=sys.stderr)
            print(f"training on {executor.label}", file=sys.stderr)
        result = _train_through_queue(config, args, store, executor)
    else:
        backend = _start_backend(config)
        from core.training import describe_device, train

        device = _quietly(describe_device)
        if not args.json:
            print(describe_source(data), file=sys.stderr)
            print(f"training on {label(device, backend)}", file=sys.stderr)
        listener = None if args.json else ConsoleProgress()
        result = _quietly(train, config, data, listener=listener, store=store, force=args.force)
    if args.json:
        print(json.dumps(result.summary()))
    else:
        if result.ok:
            origin = "answered from the store (cached)" if result.cached else "trained"
            print(
                f"run {result.run_id} {origin}: test accuracy {result.test_accuracy:.4f}, "
                f"test loss {result.test_loss:.4f}, {result.epochs_trained} epoch(s) in "
                f"{result.train_seconds:.1f} s ({result.images_per_second:,.0f} images/s) on "
                f"{label(result.device, result.backend)}; data: {result.data_source}; "
                f"store: {store.home}"
            )
        else:
            print(f"run {result.run_id} {result.status}: {result.message}")
    return 0 if result.ok else 1


def _executor(args):
    """RayExecutor for --ray ADDRESS or PLAYGROUND_RAY_ADDRESS, else None (train in-process)."""
    from core.ray_executor import RayExecutor, address_from_env

    address = getattr(args, "ray", None) or address_from_env()
    return RayExecutor(address) if address else None


def _train_through_queue(config: RunConfig, args, store: RunStore, executor) -> RunResult:
    """Train one config through a job queue on `executor`, showing its epochs as they end."""
    from core.jobs import JobQueue

    queue = JobQueue(store=store, workers=1, executor=executor)
    try:
        job = queue.submit(config, force=args.force)
        shown = 0
        while True:
            status = queue.wait(job, timeout=0.5)
            losses = status.history.get("loss", [])
            if not args.json and len(losses) > shown:
                shown = len(losses)
                metrics = "  ".join(f"{k} {v[-1]:.4f}" for k, v in status.history.items())
                print(f"epoch {shown}/{status.epochs}  {metrics}", file=sys.stderr)
            if not status.active:
                break
    except KeyboardInterrupt:
        queue.cancel(job)
        queue.wait(job, timeout=10)
        raise
    finally:
        queue.shutdown()
    if status.result is not None:
        return status.result
    return RunResult(
        run_id=status.run_id,
        config=config,
        status=status.state,
        message=status.message,
        executor=executor.name,
    )


def _start_backend(config: RunConfig) -> str:
    """Fix this process's Keras backend to the one the config trains on (before Keras loads)."""
    backend = resolve(config)
    loaded = sys.modules.get("keras")
    if loaded is not None and loaded.backend.backend() != backend:
        raise ConfigError(
            f"This process already runs Keras on {loaded.backend.backend()}; "
            f"run the command again to train on {backend}."
        )
    os.environ["KERAS_BACKEND"] = backend
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # share a GPU politely
    return backend


def _quietly(fn, *args, **kw):
    """Run fn with the C++ libraries' start-up chatter (absl, CUDA probes) kept off the screen.

    TensorFlow and XLA write "failed call to cuInit" and the like straight to file descriptor 2
    when they load, whatever Python's logging says; our own progress goes to sys.stderr, which is
    pointed at a duplicate of the real stream meanwhile.
    """
    if os.environ.get("PLAYGROUND_VERBOSE"):
        return fn(*args, **kw)
    sys.stderr.flush()
    saved = os.dup(2)
    ours = os.fdopen(os.dup(saved), "w", buffering=1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    real_stderr = sys.stderr
    try:
        os.dup2(devnull, 2)
        sys.stderr = ours
        for listener in (kw.get("listener"),):
            if isinstance(listener, ConsoleProgress):
                listener.stream = ours
        return fn(*args, **kw)
    finally:
        sys.stderr = real_stderr
        ours.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
        ours.close()


def cmd_runs(args, store: RunStore) -> int:
    rows = store.list_runs()
    if args.json:
        keys = (
            "run_id",
            "created_at",
            "dataset",
            "architecture",
            "params",
            "epochs",
            "test_accuracy",
            "test_loss",
            "train_seconds",
            "device",
            "backend",
            "data_source",
        )
        print(json.dumps([{k: row[k] for k in keys} for row in rows]))
        return 0
    print(f"{len(rows)} stored run(s) in {store.home}")
    for row in rows:
        print(
            f"{row['run_id']}  acc {row['test_accuracy']:.4f}  {row['epochs']:>2} ep  "
            f"{row['train_seconds']:7.1f} s  {row['params']:>10,} params  {row['architecture']}"
            f"  [{label(row['device'], row.get('backend', ''))}]"
        )
    return 0


TOP_K = 5


def cmd_classify(args, store: RunStore) -> int:
    """Classify each file with a stored run's model; a bad file is reported, never fatal."""
    from core.images import ImageRefused, doubts, prepare_file, reference_from

    stored = store.get(args.run)
    if stored is None:
        known = ", ".join(store.run_ids()[:5]) or "none yet (train one with `train`)"
        print(
            f"error: no stored run '{args.run}' in {store.home}; stored: {known}", file=sys.stderr
        )
        return 2
    names, how = _classes_and_preparer(stored.config.dataset, store.home)
    prepared = []
    for name in args.files:
        try:
            prepared.append(prepare_file(name, how))
        except ImageRefused as exc:
            prepared.append(str(exc))
        except Exception as exc:  # a reader bug must cost one file, not the whole call
            prepared.append(f"it could not be read ({type(exc).__name__}: {exc})")
    good = [p for p in prepared if not isinstance(p, str)]
    if good:
        import numpy as np

        from core import explain

        try:
            model = store.load_model(args.run)
        except StoreError as exc:  # the model file is missing or damaged: the store's sentence
            print(f"error: {exc}", file=sys.stderr)
            return 1
        except Exception as exc:  # a model file deleted or damaged behind the index's back
            print(
                f"error: the model of run {args.run} could not be loaded "
                f"({type(exc).__name__}: {exc}); train it again",
                file=sys.stderr,
            )
            return 1
        probabilities = iter(explain.probabilities(model, np.stack([p.pixels for p in good])))
        try:
            data = load_dataset(stored.config.dataset, home=store.home)
            reference = reference_from(data.x_train, data.y_train, data.num_classes)
        except DatasetUnavailable:
            reference = None  # no training data here: answers come without the familiarity check
    for name, item in zip(args.files, prepared, strict=True):
        if isinstance(item, str):
            line = {"file": name, "error": item}
        else:
            p = next(probabilities)
            order = p.argsort()[::-1][:TOP_K]
            line = {
                "file": name,
                "label": names[order[0]],
                "index": int(order[0]),
                "confidence": round(float(p[order[0]]), 6),
                "top": [[names[i], round(float(p[i]), 6)] for i in order],
                "warnings": doubts(item.pixels, p, names, reference) if reference else [],
            }
        print(json.dumps(line) if args.json else _plain(line), flush=True)
    return 0 if all(not isinstance(p, str) for p in prepared) else 1


def _classes_and_preparer(dataset: str, home):
    """A dataset's class names and how its pictures were prepared (imported: their own way)."""
    if dataset in DATASETS:
        return DATASETS[dataset].class_names, None
    from core.imports import prepare_for

    data = load_dataset(dataset, home=home)
    return data.class_names, lambda raw: prepare_for(data, raw)


def _plain(line: dict) -> str:
    if "error" in line:
        return f"{line['file']}: refused: {line['error']}"
    others = ", ".join(f"{label} {p:.1%}" for label, p in line["top"][1:3])
    text = f"{line['file']}: {line['label']} ({line['confidence']:.1%}; then {others})"
    return text + "".join(f"\n    warning: {w}" for w in line["warnings"])


def cmd_sweep(args, store: RunStore) -> int:
    """Run (or resume, or extend) a sweep: a line per ended trial, then one JSON object."""
    from core import sweeps
    from core.jobs import JobQueue

    if args.preset is None and args.config is None:
        args.preset = "seed"
    base = config_from_args(args)
    experiment = sweeps.EXPERIMENTS[args.experiment] if args.experiment else None
    space = tuple(sweeps.parse_param(text) for text in args.param)
    if experiment is not None:
        space = (experiment.param, *(p for p in space if p.name != experiment.param.name))
    if not space:
        raise sweeps.SweepError(
            "Give the space to search: --param NAME=LOW:HIGH[:log] or --param NAME=a,b,c "
            "(or --experiment)."
        )
    spec = sweeps.SweepSpec(
        base=base,
        space=space,
        trials=args.trials or (experiment.trials if experiment else 8),
        objective=args.objective,
        sampler=args.sampler or (experiment.sampler if experiment else "tpe"),
        pruner=args.pruner,
    ).checked()
    name = sweeps.check_name(args.name or spec.default_name())
    data = load_dataset(base.dataset)

    def show(record) -> None:
        if args.json:
            print(json.dumps(record.to_dict()), flush=True)
            return
        value = f"{record.value:.4f}" if record.value is not None else "—"
        origin = " (cached)" if record.cached else ""
        settings = " ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                            for k, v in record.params.items())  # fmt: skip
        print(
            f"trial {record.number} {record.state}{origin}: {spec.objective} {value}  {settings}"
            f"  run {record.run_id or '—'}" + (f"  ({record.message})" if record.message else ""),
            flush=True,
        )

    executor = _executor(args)
    queue = JobQueue(store=store, executor=executor) if executor else JobQueue(store=store)
    runner = None
    try:
        runner = sweeps.SweepRunner(store.home, name, queue, store, data, spec, on_trial=show)
        if not args.json:
            print(
                f"sweep {name}: {runner.spec.trials} trial(s) over "
                f"{', '.join(p.text() for p in runner.spec.space)} ({runner.spec.sampler}); "
                f"choosing by {runner.spec.objective_label}",
                file=sys.stderr,
            )
        result = runner.run()
    except KeyboardInterrupt:
        if runner is not None:
            runner.stop()  # the unfinished trials stay; `sweep --name` resumes them
        raise
    finally:
        queue.shutdown()
    print(json.dumps(result.to_json()))
    return 0 if result.best is not None else 1


def cmd_sweeps(args, store: RunStore) -> int:
    from core import sweeps

    if args.delete:
        sweeps.delete(store.home, args.delete)
        print(f"deleted sweep {args.delete}; its trials stay in the store as ordinary runs")
        return 0
    found = sweeps.list_sweeps(store.home)
    if args.json:
        print(json.dumps([s.to_json() for s in found]))
        return 0
    print(f"{len(found)} sweep(s) in {sweeps.sweeps_folder(store.home)}")
    for s in found:
        best = s.best
        score = f"best {s.spec.objective} {best.value:.4f} (run {best.run_id})" if best else "—"
        print(
            f"{s.name}  {len(s.finished)}/{s.spec.trials} finished  {score}  "
            f"[{' '.join(p.text() for p in s.spec.space)}; {s.spec.sampler}]"
            + ("  running" if s.running else "")
        )
    return 0


def _add_setting(parser: argparse.ArgumentParser, setting: Setting) -> None:
    """One option per row of the settings table: same names, types and choices as the app."""
    flag = "--" + setting.name.replace("_", "-")
    kw: dict = {"dest": setting.name, "help": setting.help or setting.label}
    if setting.type is bool:
        kw.update(type=setting.parse, metavar="1|0")
    elif setting.choices:
        kw.update(choices=setting.choices)
    else:
        kw.update(type=setting.type)
        if setting.low is not None:
            kw["help"] += f" ({_range(setting)})"
    parser.add_argument(flag, **kw)


def _range(setting: Setting) -> str:
    return f"{setting.low:g} to {setting.high:g}"


def _add_sweep_parsers(sub) -> None:
    from core.sweeps import EXPERIMENTS, OBJECTIVES, SAMPLERS

    sweep_p = sub.add_parser(
        "sweep", help="search settings with Optuna; every trial is an ordinary (cached) run"
    )
    source = sweep_p.add_mutually_exclusive_group()
    source.add_argument("--preset", choices=sorted(PRESETS), help="the base run (default: seed)")
    source.add_argument("--config", metavar="FILE", help="the base run as a config.json")
    for setting in SETTINGS.values():
        _add_setting(sweep_p, setting)
    sweep_p.add_argument("--layers", help="hidden layers of the base run (as for `train`)")
    sweep_p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=LOW:HIGH[:log]|NAME=a,b,c",
        help="a setting to search: a range (log-uniform with :log) or a list; repeatable",
    )
    sweep_p.add_argument("--experiment", choices=sorted(EXPERIMENTS), help="a ready-made question")
    sweep_p.add_argument("--trials", type=int, help="how many trials end the sweep (default 8)")
    sweep_p.add_argument("--sampler", choices=SAMPLERS, help="default tpe")
    sweep_p.add_argument("--objective", choices=sorted(OBJECTIVES), default="val_accuracy")
    sweep_p.add_argument("--pruner", default="median", help="median, none or threshold:X")
    sweep_p.add_argument("--name", help="resume or extend the sweep of this name")
    sweep_p.add_argument("--json", action="store_true", help="JSON lines; the last sums it up")
    sweep_p.add_argument("--ray", metavar="ADDRESS", help=RAY_HELP)
    sweeps_p = sub.add_parser("sweeps", help="list sweeps (or delete one)")
    sweeps_p.add_argument("--json", action="store_true")
    sweeps_p.add_argument("--delete", metavar="NAME", help="delete this sweep (its runs stay)")


def cmd_data(args, store: RunStore) -> int:
    """Import, list, rename and delete your own datasets (`python -m core data ...`)."""
    from core import imports

    home = store.home
    if args.data_command == "list":
        found = imports.list_datasets(home)
        if args.json:
            print(json.dumps([_data_row(info) for info in found]))
            return 0
        print(f"{len(found)} imported dataset(s) in {imports.datasets_folder(home)}")
        for info in found:
            counts = ", ".join(f"{c} {n}" for c, n in zip(info.class_names, _totals(info)))
            print(
                f"{info.name}  [{info.dataset_id}]  {imports.MODES[info.mode]} "
                f"{info.size}x{info.size}  {info.images:,} images: {counts}  ({info.source})"
            )
        return 0
    if args.data_command == "rename":
        imports.rename_dataset(args.old, args.new, home=home)
        print(f"renamed dataset '{args.old}' to '{imports.check_name(args.new)}'")
        return 0
    if args.data_command == "delete":
        used = imports.delete_dataset(args.name, remove_runs=args.remove_runs, home=home)
        runs = f"{used} run(s) trained on it"
        if args.remove_runs:
            print(f"deleted dataset '{args.name}' and the {runs}")
        else:
            kept = "; they stay in the store (--remove-runs deletes them)" if used else ""
            print(f"deleted dataset '{args.name}'; {runs}{kept}")
        return 0
    return _cmd_data_import(args, home)


def _cmd_data_import(args, home) -> int:
    from core import imports

    source = Path(args.source).expanduser()
    if not source.exists():
        print(f"error: {source}: no such file or folder", file=sys.stderr)
        return 2
    low, high = imports.TEST_FRACTION_RANGE
    if not low <= args.test_fraction <= high:
        print(f"error: --test-fraction must be between {low:g} and {high:g}", file=sys.stderr)
        return 2
    if args.mode == "fashion" and args.size not in (None, 28):
        print("error: --size is for --mode plain; fashion mode is always 28x28", file=sys.stderr)
        return 2
    kw = dict(mode=args.mode, size=args.size, test_fraction=args.test_fraction, seed=args.seed)
    if not args.json and sys.stderr.isatty():
        kw["progress"] = lambda done, total: print(
            f"\rreading pictures {done:,}/{total:,}", end="", file=sys.stderr, flush=True
        )
    try:
        if source.is_dir():
            report = imports.import_folder(source, args.name, home=home, **kw)
        else:
            report = imports.import_zip(source, args.name, home=home, **kw)
    except imports.ImportRefused as exc:
        if args.json:
            skipped = [{"file": f, "reason": r} for f, r in exc.skipped]
            print(json.dumps({"name": args.name, "refused": str(exc), "skipped": skipped}))
        else:
            for file, reason in exc.skipped:
                print(f"  skipped {file}: {reason}", file=sys.stderr)
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if "progress" in kw:
        print(file=sys.stderr)
    if args.json:
        print(json.dumps(report.to_json()))
        return 0
    what = "already imported as" if report.existed else "imported"
    print(
        f"{what} '{report.name}' [{report.dataset_id}]: {len(report.classes)} classes, "
        f"{report.train_count:,} training and {report.test_count:,} test images, prepared "
        f"{imports.MODES[report.mode]} ({report.size}x{report.size})"
    )
    width = max(len(c) for c in report.classes)
    for label_, count in report.classes.items():
        print(f"  {label_:<{width}}  {count:>6,}")
    if report.skipped:
        print(f"skipped {len(report.skipped)} file(s):")
        for file, reason in report.skipped:
            print(f"  {file}: {reason}")
    for warning in report.warnings:
        print(f"warning: {warning}")
    print(f"train on it: python -m core train --preset fast --dataset '{report.name}'")
    return 0


def _totals(info) -> list[int]:
    return [a + b for a, b in zip(info.train_counts, info.test_counts, strict=True)]


def _data_row(info) -> dict:
    return {
        "name": info.name,
        "dataset_id": info.dataset_id,
        "classes": list(info.class_names),
        "images": dict(zip(info.class_names, _totals(info), strict=True)),
        "train": sum(info.train_counts),
        "test": sum(info.test_counts),
        "mode": info.mode,
        "size": info.size,
        "channels": info.channels,
        "source": info.source,
        "created_at": info.created_at,
        "skipped": [{"file": f, "reason": r} for f, r in info.skipped],
        "warnings": info.warnings,
    }


def _add_data_parsers(sub) -> None:
    from core.imports import DEFAULT_TEST_FRACTION, MODES, PLAIN_SIZES

    data_p = sub.add_parser("data", help="import, list, rename or delete your own datasets")
    data_sub = data_p.add_subparsers(dest="data_command", required=True, parser_class=_Parser)
    import_p = data_sub.add_parser(
        "import", help="import a .zip or a folder whose sub-folders are the classes"
    )
    import_p.add_argument("source", metavar="PATH_OR_ZIP")
    import_p.add_argument("--name", required=True, help="the dataset's name (for --dataset)")
    import_p.add_argument(
        "--mode",
        choices=list(MODES),
        default="fashion",
        help="fashion: 28x28 grey, object found and centred; plain: colour squares (default "
        "fashion)",
    )
    import_p.add_argument(
        "--size", type=int, choices=PLAIN_SIZES, help="plain mode's square side (default 32)"
    )
    import_p.add_argument(
        "--test-fraction", type=float, default=DEFAULT_TEST_FRACTION, help="default 0.2"
    )
    import_p.add_argument("--seed", type=int, default=0, help="seed of the train/test split")
    import_p.add_argument("--json", action="store_true", help="the report as one JSON object")
    list_p = data_sub.add_parser("list", help="list imported datasets")
    list_p.add_argument("--json", action="store_true")
    delete_p = data_sub.add_parser("delete", help="delete an imported dataset")
    delete_p.add_argument("name", metavar="NAME")
    delete_p.add_argument(
        "--remove-runs", action="store_true", help="also delete the runs trained on it"
    )
    rename_p = data_sub.add_parser("rename", help="rename an imported dataset")
    rename_p.add_argument("old", metavar="OLD")
    rename_p.add_argument("new", metavar="NEW")


def make_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m core", description="Deep Learning Playground engine.")
    parser.add_argument("--home", help="run store folder (default: $PLAYGROUND_HOME or cache)")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    train_p = sub.add_parser(
        "train", help="train a preset or a config file, or answer it from the store"
    )
    source = train_p.add_mutually_exclusive_group(required=True)
    source.add_argument("--preset", choices=sorted(PRESETS))
    source.add_argument(
        "--config", metavar="FILE", help="a config.json (as the Runs page and the store write)"
    )
    for setting in SETTINGS.values():
        _add_setting(train_p, setting)
    train_p.add_argument(
        "--layers",
        help="hidden layers, e.g. conv:32:3:pool:relu:0,dense:128:relu:0.3",
    )
    train_p.add_argument(
        "--force", action="store_true", help="train even if stored, and replace it"
    )
    train_p.add_argument("--json", action="store_true", help="last line: one JSON object")
    train_p.add_argument("--ray", metavar="ADDRESS", help=RAY_HELP)
    runs_p = sub.add_parser("runs", help="list stored runs")
    runs_p.add_argument("--json", action="store_true")
    classify_p = sub.add_parser("classify", help="classify image files with a stored run's model")
    classify_p.add_argument("--run", required=True, help="run id (see `runs`)")
    classify_p.add_argument("--json", action="store_true", help="one JSON object per file")
    classify_p.add_argument("files", nargs="+", metavar="FILE")
    _add_sweep_parsers(sub)
    _add_data_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    try:
        store = RunStore(args.home)
        command = {"train": cmd_train, "classify": cmd_classify, "runs": cmd_runs}
        command.update(sweep=cmd_sweep, sweeps=cmd_sweeps)
        command.update(data=cmd_data)
        code = command[args.command](args, store)
        sys.stdout.flush()  # inside the try: a reader that went away shows up here, not at exit
        return code
    except (ConfigError, DatasetUnavailable, BackendUnavailable, StoreError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except ClusterUnreachable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # the reader went away (`python -m core runs | head -3`): that is not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("\ninterrupted; nothing half-done was stored.", file=sys.stderr)
        return 130
    except Exception as exc:
        from core.imports import ImportRefused  # a sentence for the person, like the above

        if not isinstance(exc, ImportRefused):
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 1


def exit_now(code: int) -> None:
    """Exit with `code`; once a Keras backend is loaded, without the interpreter's teardown.

    Tearing down a process that loaded JAX or TensorFlow (their thread pools and C++ runtimes)
    takes 0.6-0.8 s on a 2-core machine after the result is already printed: a person waits for
    nothing. Everything of ours is finished by then (the store commits each run before the
    result is printed, the queue is shut down), so this flushes the streams, runs the atexit
    handlers (multiprocessing's among them) and leaves with os._exit.
    """
    if not any(name in sys.modules for name in ("keras", "jax", "tensorflow", "torch")):
        sys.exit(code)
    import atexit
    import logging

    def flush() -> None:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (BrokenPipeError, ValueError):
                pass

    flush()
    atexit._run_exitfuncs()
    logging.shutdown()
    flush()  # whatever the exit handlers wrote
    os._exit(code)


if __name__ == "__main__":
    exit_now(main())
