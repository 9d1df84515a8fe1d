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
from core.store import RunStore, StoreError


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
    data = load_dataset(config.dataset)
    validate(
        config,
        train_available=len(data.x_train),
        input_shape=data.input_shape,
        num_classes=data.num_classes,
    )
    cached = store.get(config.run_id_for(data.fingerprint)) if not args.force else None
    if cached is not None:
        result = cached
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
    names = DATASETS[stored.config.dataset].class_names
    prepared = []
    for name in args.files:
        try:
            prepared.append(prepare_file(name))
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
            data = load_dataset(stored.config.dataset)
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


def _plain(line: dict) -> str:
    if "error" in line:
        return f"{line['file']}: refused: {line['error']}"
    others = ", ".join(f"{label} {p:.1%}" for label, p in line["top"][1:3])
    text = f"{line['file']}: {line['label']} ({line['confidence']:.1%}; then {others})"
    return text + "".join(f"\n    warning: {w}" for w in line["warnings"])


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
    runs_p = sub.add_parser("runs", help="list stored runs")
    runs_p.add_argument("--json", action="store_true")
    classify_p = sub.add_parser("classify", help="classify image files with a stored run's model")
    classify_p.add_argument("--run", required=True, help="run id (see `runs`)")
    classify_p.add_argument("--json", action="store_true", help="one JSON object per file")
    classify_p.add_argument("files", nargs="+", metavar="FILE")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    try:
        store = RunStore(args.home)
        command = {"train": cmd_train, "classify": cmd_classify, "runs": cmd_runs}
        code = command[args.command](args, store)
        sys.stdout.flush()  # inside the try: a reader that went away shows up here, not at exit
        return code
    except (ConfigError, DatasetUnavailable, BackendUnavailable, StoreError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # the reader went away (`python -m core runs | head -3`): that is not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("\ninterrupted; nothing half-done was stored.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
