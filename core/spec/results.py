"""What a run reports while it trains (Event) and what it leaves behind (RunResult).

Plain data only, importable without TensorFlow: the store, the job queue, the CLI and the pages all
read these, and none of them needs the training code to do so.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from core.spec.config import RunConfig


@dataclass(frozen=True)
class Event:
    """One progress report. kind: started, batch, epoch, finished, cancelled, diverged, failed."""

    kind: str
    run_id: str
    epoch: int = 0  # 1-based epoch the event belongs to
    epochs: int = 0
    batch: int = 0  # batches done in this epoch
    batches: int = 0  # batches per epoch
    logs: dict = field(default_factory=dict)  # metric name -> float (train and val_)
    elapsed: float = 0.0  # seconds since training started
    images_per_second: float = 0.0
    params: int = 0
    device: str = ""
    backend: str = ""  # the Keras backend training this run (on "started")
    message: str = ""


Listener = Callable[[Event], None]


@dataclass
class RunResult:
    """What a run produced; `cached` says whether it came from the store without training."""

    run_id: str
    config: RunConfig
    status: str  # finished, cancelled, diverged, failed
    cached: bool = False
    message: str = ""
    history: dict[str, list[float]] = field(default_factory=dict)
    test_loss: float = math.nan
    test_accuracy: float = math.nan
    confusion: list[list[int]] = field(default_factory=list)
    train_seconds: float = 0.0
    images_per_second: float = 0.0
    device: str = ""  # "CPU" or "GPU: <name>"
    backend: str = ""  # the Keras backend that trained it: tensorflow, jax or torch
    executor: str = "local"  # where it trained: "local" (this machine) or "ray" (a Ray cluster)
    data_source: str = ""
    data_id: str = ""  # fingerprint of the dataset's content; part of the run id
    train_size: int = 0
    params: int = 0
    epochs_trained: int = 0
    created_at: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == "finished"

    def summary(self) -> dict:
        """The flat facts the CLI prints (NaN, for runs without a test score, becomes None)."""
        facts = {
            "run_id": self.run_id,
            "status": self.status,
            "cached": self.cached,
            "test_accuracy": self.test_accuracy,
            "test_loss": self.test_loss,
            "train_seconds": self.train_seconds,
            "images_per_second": self.images_per_second,
            "train_size": self.train_size,
            "epochs_trained": self.epochs_trained,
            "params": self.params,
            "data_source": self.data_source,
            "device": self.device,
            "backend": self.backend,
            "executor": self.executor,
            "data_id": self.data_id,
            "created_at": self.created_at,
            "message": self.message,
        }
        return {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in facts.items()}
