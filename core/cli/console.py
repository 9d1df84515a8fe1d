"""What every command shares: the argument parser that exits 2, options made from the settings
table, the config a command line describes, text progress, and a quiet, quick exit.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

from core.home import verbose
from core.spec.config import LayerSpec, RunConfig
from core.spec.presets import preset
from core.spec.settings import SETTINGS, ConfigError, Setting

RAY_HELP = "train on the Ray cluster at host:6379 or ray://host:10001 (or $PLAYGROUND_RAY_ADDRESS)"


class Parser(argparse.ArgumentParser):
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


def quietly(fn, *args, **kw):
    """Run fn with the C++ libraries' start-up chatter (absl, CUDA probes) kept off the screen.

    TensorFlow and XLA write "failed call to cuInit" and the like straight to file descriptor 2
    when they load, whatever Python's logging says; our own progress goes to sys.stderr, which is
    pointed at a duplicate of the real stream meanwhile.
    """
    if verbose():
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


def add_setting(parser: argparse.ArgumentParser, setting: Setting) -> None:
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
