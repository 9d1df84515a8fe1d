"""Command line: `python -m core train|runs|classify ...` (see `python -m core --help`)."""

from __future__ import annotations

import argparse
import json
import math
import sys

from core.config import OPTIMIZERS, PRESETS, ConfigError, preset
from core.datasets import DATASETS, DatasetUnavailable, describe_source, load_dataset
from core.store import RunStore


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


def cmd_train(args, store: RunStore) -> int:
    from core.training import train

    config = preset(args.preset)
    overrides = {}
    if args.epochs is not None:
        overrides["epochs"] = args.epochs
    if args.train_size is not None:
        overrides["train_size"] = args.train_size
    for name in ("seed", "learning_rate", "optimizer", "batch_size"):
        if getattr(args, name) is not None:
            overrides[name] = getattr(args, name)
    config = config.replace(**overrides)
    cached = store.get(config.run_id) if not args.force else None
    if cached is not None:
        result = cached
    else:
        data = load_dataset(config.dataset)
        if not args.json:
            print(describe_source(data), file=sys.stderr)
        listener = None if args.json else ConsoleProgress()
        result = train(config, data, listener=listener, store=store, force=args.force)
    if args.json:
        print(json.dumps(result.summary()))
    else:
        if result.ok:
            origin = "answered from the store (cached)" if result.cached else "trained"
            print(
                f"run {result.run_id} {origin}: test accuracy {result.test_accuracy:.4f}, "
                f"test loss {result.test_loss:.4f}, {result.epochs_trained} epoch(s) in "
                f"{result.train_seconds:.1f} s ({result.images_per_second:,.0f} images/s) on "
                f"{result.device}; data: {result.data_source}; store: {store.home}"
            )
        else:
            print(f"run {result.run_id} {result.status}: {result.message}")
    return 0 if result.ok else 1


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
            "data_source",
        )
        print(json.dumps([{k: row[k] for k in keys} for row in rows]))
        return 0
    print(f"{len(rows)} stored run(s) in {store.home}")
    for row in rows:
        print(
            f"{row['run_id']}  acc {row['test_accuracy']:.4f}  {row['epochs']:>2} ep  "
            f"{row['train_seconds']:7.1f} s  {row['params']:>10,} params  {row['architecture']}"
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


def make_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m core", description="Deep Learning Playground engine.")
    parser.add_argument("--home", help="run store folder (default: $PLAYGROUND_HOME or cache)")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    train_p = sub.add_parser("train", help="train a preset, or answer it from the store")
    train_p.add_argument("--preset", required=True, choices=sorted(PRESETS))
    train_p.add_argument("--epochs", type=int)
    train_p.add_argument("--train-size", type=int, help="train on a subset of this many images")
    train_p.add_argument("--seed", type=int)
    train_p.add_argument("--learning-rate", type=float)
    train_p.add_argument("--optimizer", choices=OPTIMIZERS)
    train_p.add_argument("--batch-size", type=int)
    train_p.add_argument("--force", action="store_true", help="train even if stored")
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
        if args.command == "train":
            return cmd_train(args, store)
        if args.command == "classify":
            return cmd_classify(args, store)
        return cmd_runs(args, store)
    except (ConfigError, DatasetUnavailable) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted; nothing half-done was stored.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
