"""Command line: `python -m core train|runs ...` (see `python -m core --help`)."""

from __future__ import annotations

import argparse
import json
import math
import sys

from core.config import OPTIMIZERS, PRESETS, ConfigError, preset
from core.datasets import DatasetUnavailable, describe_source, load_dataset
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
    return parser


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    try:
        store = RunStore(args.home)
        if args.command == "train":
            return cmd_train(args, store)
        return cmd_runs(args, store)
    except (ConfigError, DatasetUnavailable) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted; nothing half-done was stored.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
