"""The command line: `python -m core train|runs|classify|sweep|sweeps|data ...` (see --help)."""

from __future__ import annotations

import argparse
import os
import sys

from core.cli.classify import cmd_classify
from core.cli.console import RAY_HELP, Parser, add_setting
from core.cli.data import add_data_parsers, cmd_data
from core.cli.sweep import add_sweep_parsers, cmd_sweep, cmd_sweeps
from core.cli.train import cmd_runs, cmd_train
from core.errors import PlaygroundError
from core.spec.presets import PRESETS
from core.spec.settings import SETTINGS
from core.store import RunStore


def make_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="python -m core", description="Deep Learning Playground engine.")
    parser.add_argument("--home", help="run store folder (default: $PLAYGROUND_HOME or cache)")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    train_p = sub.add_parser(
        "train", help="train a preset or a config file, or answer it from the store"
    )
    source = train_p.add_mutually_exclusive_group(required=True)
    source.add_argument("--preset", choices=sorted(PRESETS))
    source.add_argument(
        "--config", metavar="FILE", help="a config.json (as the Runs page and the store write)"
    )
    for setting in SETTINGS.values():
        add_setting(train_p, setting)
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
    add_sweep_parsers(sub)
    add_data_parsers(sub)
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
    except PlaygroundError as exc:  # every refusal a person can cause: its one sentence
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # the reader went away (`python -m core runs | head -3`): that is not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("\ninterrupted; nothing half-done was stored.", file=sys.stderr)
        return 130
