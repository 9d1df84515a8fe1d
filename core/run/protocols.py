"""What the job queue needs from where jobs train, written down: an Executor makes Trainers.

LocalExecutor (core.run.local) and RayExecutor (core.run.ray_executor) both satisfy these; the
queue (core.run.queue) uses nothing else of them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol

from core.spec.config import RunConfig
from core.spec.results import Event, RunResult


class Trainer(Protocol):
    """One worker slot's trainer for one Keras backend (a child process of this one)."""

    backend: str
    last_used: float  # time.monotonic() of its last job: idle ones are retired

    @property
    def pid(self) -> int | None:
        """The process that trains, while it lives (for operators and tests)."""

    def start(self) -> None:
        """Start now (the framework loads), so the first job waits for training only."""

    def run(
        self,
        config: RunConfig,
        force: bool,
        home: str | None,
        on_event: Callable[[Event], None],
        cancel_requested: threading.Event,
    ) -> RunResult | str:
        """Train one config: its RunResult, or one sentence (a user error or a fault)."""

    def stop(self) -> None:
        """Finish the current batch and end; killed if it does not."""

    def discard(self) -> None:
        """Forget the trainer at once (killing it if it still runs)."""


class Executor(Protocol):
    """Where the queue's jobs train."""

    name: str  # "local" or "ray": recorded with every run
    label: str  # for people: "this machine", "the Ray cluster at ... (2 CPUs, no GPU)"
    one_trainer_per_slot: bool  # a slot keeps one trainer at a time (a Ray actor holds a CPU)

    def default_workers(self) -> int:
        """Jobs at once when the caller does not say."""

    def trainer(self, backend: str) -> Trainer:
        """A new, not yet started trainer for this backend."""
