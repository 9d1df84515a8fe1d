"""A process-wide queue of training jobs, run in background trainer processes.

Any UI (every browser session of one Streamlit server) submits configs here and polls plain-data
snapshots; the workers never touch the UI. The same config submitted twice shares one job.

Each worker slot is a thread in this process that feeds one long-lived trainer process (spawned on
first use, TensorFlow imported once). Training runs there, not in the UI's process, because
Streamlit calls keras.backend.clear_session() after every script run, which in the same process
would reset Keras's global state under a running fit (and stall it on garbage collection). The
separate process also keeps the UI's interpreter lock free and survives a crash of TensorFlow.
"""

from __future__ import annotations

import copy
import itertools
import math
import multiprocessing
import os
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from core.config import RunConfig
from core.results import Event, RunResult
from core.training import CancelToken, train

DEFAULT_WORKERS = int(os.environ.get("PLAYGROUND_WORKERS", "1"))  # two cores: one fit at a time
DEFAULT_CAPACITY = 16  # queued jobs beyond this are refused rather than piling up
ACTIVE = ("queued", "running")


class QueueFull(Exception):
    """The queue holds as many waiting jobs as it accepts."""


@dataclass
class JobStatus:
    """A snapshot of one job; plain data, safe to read from any thread."""

    job_id: int
    run_id: str
    state: str = "queued"  # queued, running, finished, cancelled, diverged, failed
    position: int = 0  # jobs ahead of this one in the queue (0 when running)
    epoch: int = 0
    epochs: int = 0
    batch: int = 0
    batches: int = 0
    images_per_second: float = 0.0
    elapsed: float = 0.0
    seconds_left: float = math.nan
    params: int = 0
    device: str = ""
    message: str = ""
    history: dict[str, list[float]] = field(default_factory=dict)  # per finished epoch
    live: dict[str, float] = field(default_factory=dict)  # latest batch metrics
    submitted_at: float = 0.0
    result: RunResult | None = None

    @property
    def active(self) -> bool:
        return self.state in ACTIVE

    @property
    def fraction_done(self) -> float:
        if not self.epochs or not self.batches:
            return 0.0
        return min(1.0, ((self.epoch - 1) + self.batch / self.batches) / self.epochs)


class _Job:
    def __init__(self, job_id: int, config: RunConfig, force: bool = False) -> None:
        self.config = config
        self.force = force  # retrain even if the store holds this config
        self.cancel_requested = threading.Event()
        self.status = JobStatus(
            job_id, config.run_id, epochs=config.epochs, submitted_at=time.time()
        )


class JobQueue:
    """Bounded FIFO of training jobs served by `workers` threads."""

    def __init__(
        self,
        store=None,
        workers: int = DEFAULT_WORKERS,
        capacity: int = DEFAULT_CAPACITY,
        keep_finished: int = 200,
    ) -> None:
        self.store = store  # a RunStore; trainer processes open the same folder
        self.capacity = capacity
        self._closing = False
        self.keep_finished = keep_finished
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._waiting: deque[_Job] = deque()
        self._jobs: dict[int, _Job] = {}
        self._ids = itertools.count(1)
        self._threads = [
            threading.Thread(target=self._work, name=f"training-worker-{i}", daemon=True)
            for i in range(max(1, workers))
        ]
        for thread in self._threads:
            thread.start()

    # ------------------------------------------------------------------ API for any thread
    def submit(self, config: RunConfig, *, force: bool = False) -> int:
        """Queue a training job; an identical active job is shared instead of duplicated."""
        with self._lock:
            for job in self._jobs.values():
                if job.config == config and job.status.active:
                    return job.status.job_id
            if len(self._waiting) >= self.capacity:
                raise QueueFull(
                    f"{len(self._waiting)} trainings are already waiting; try again when one ends."
                )
            job = _Job(next(self._ids), config, force)
            self._jobs[job.status.job_id] = job
            self._waiting.append(job)
            self._renumber()
            self._forget_old()
            self._wake.notify()
            return job.status.job_id

    def status(self, job_id: int) -> JobStatus | None:
        with self._lock:
            job = self._jobs.get(job_id)
            return copy.deepcopy(job.status) if job else None

    def cancel(self, job_id: int) -> None:
        """Remove a waiting job, or stop a running one after its current batch."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or not job.status.active:
                return
            if job.status.state == "queued":
                self._waiting.remove(job)
                job.status.state = "cancelled"
                job.status.message = "Removed from the queue before it started."
                self._renumber()
                return
        job.cancel_requested.set()

    def active_jobs(self) -> list[JobStatus]:
        with self._lock:
            return [copy.deepcopy(j.status) for j in self._jobs.values() if j.status.active]

    def wait(self, job_id: int, timeout: float | None = None) -> JobStatus | None:
        """Block until the job is no longer active (for scripts and tests)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            status = self.status(job_id)
            if status is None or not status.active:
                return status
            if deadline is not None and time.monotonic() > deadline:
                return status
            time.sleep(0.05)

    # ------------------------------------------------------------------ workers
    def _renumber(self) -> None:
        for position, job in enumerate(self._waiting):
            job.status.position = position + 1

    def _forget_old(self) -> None:
        finished = [j for j in self._jobs.values() if not j.status.active]
        for job in finished[: max(0, len(finished) - self.keep_finished)]:
            del self._jobs[job.status.job_id]

    def shutdown(self) -> None:
        """Stop the workers and their trainer processes (running jobs are cancelled)."""
        with self._wake:
            self._closing = True
            for job in self._waiting:
                job.status.state, job.status.message = "cancelled", "The server is shutting down."
            self._waiting.clear()
            for job in self._jobs.values():
                job.cancel_requested.set()
            self._wake.notify_all()
        for thread in self._threads:
            thread.join(timeout=30)

    def _work(self) -> None:
        trainer = _TrainerProcess()
        try:
            while True:
                with self._wake:
                    while not self._waiting and not self._closing:
                        self._wake.wait()
                    if self._closing:
                        return
                    job = self._waiting.popleft()
                    job.status.state = "running"
                    job.status.position = 0
                    self._renumber()
                self._run(job, trainer)
        finally:
            trainer.stop()

    def _run(self, job: _Job, trainer: _TrainerProcess) -> None:
        def on_event(event: Event) -> None:
            with self._lock:
                _apply(job.status, event)

        home = str(self.store.home) if self.store is not None else None
        outcome = trainer.run(job.config, job.force, home, on_event, job.cancel_requested)
        with self._lock:
            if isinstance(outcome, RunResult):
                job.status.result = outcome
                job.status.state = outcome.status
                job.status.message = outcome.message or job.status.message
                if outcome.ok:
                    job.status.history = outcome.history
            else:  # a user error (ConfigError, no data) or a dead trainer process: one sentence
                job.status.state = "failed"
                job.status.message = outcome


class _TrainerProcess:
    """One long-lived child process that trains the configs it is sent, one at a time."""

    def __init__(self) -> None:
        self._context = multiprocessing.get_context("spawn")  # never fork a threaded process
        self._process = None
        self._conn = None
        self._cancel = None

    def _ensure(self) -> None:
        if self._process is not None and self._process.is_alive():
            return
        parent, child = self._context.Pipe()
        self._cancel = self._context.Event()
        self._process = self._context.Process(
            target=_trainer_main, args=(child, self._cancel), name="trainer", daemon=True
        )
        self._process.start()
        child.close()
        self._conn = parent

    def run(self, config, force, home, on_event, cancel_requested) -> RunResult | str:
        self._ensure()
        self._cancel.clear()
        self._conn.send((config.to_json(), force, home))
        while True:
            if cancel_requested.is_set():
                self._cancel.set()
            try:
                ready = self._conn.poll(0.05)
                message = self._conn.recv() if ready else None
            except (EOFError, OSError):
                message = None
                ready = False
            if message is not None:
                kind, payload = message
                if kind == "event":
                    on_event(payload)
                    continue
                return payload  # "result" carries a RunResult, "error" a sentence
            if not self._process.is_alive():
                code = self._process.exitcode
                self._process = None
                return (
                    f"The trainer process stopped unexpectedly (exit code {code}); "
                    "nothing was stored. Try again, perhaps with a smaller network or batch."
                )

    def stop(self) -> None:
        if self._process is not None and self._process.is_alive():
            self._cancel.set()
            try:
                self._conn.send(None)
            except OSError:
                pass
            self._process.join(timeout=10)
            if self._process.is_alive():
                self._process.kill()


def _trainer_main(conn, cancel_event) -> None:
    """Child process: train each config received on `conn`, streaming events back."""
    from core.config import ConfigError
    from core.datasets import DatasetUnavailable
    from core.store import RunStore

    send_lock = threading.Lock()  # Keras reports batches from its own thread

    def send(message) -> None:
        with send_lock:
            conn.send(message)

    while True:
        try:
            request = conn.recv()
        except EOFError:
            return
        if request is None:
            return
        config_json, force, home = request
        token = CancelToken()
        finished = threading.Event()

        def watch_cancel() -> None:
            while not finished.is_set():
                if cancel_event.wait(0.05):
                    token.cancel()
                    return

        watcher = threading.Thread(target=watch_cancel, daemon=True)
        watcher.start()
        try:
            result = train(
                RunConfig.from_json(config_json),
                listener=lambda event: send(("event", event)),
                cancel=token,
                store=RunStore(home) if home else None,
                force=force,
            )
            send(("result", result))
        except (ConfigError, DatasetUnavailable) as exc:
            send(("error", str(exc)))
        except Exception as exc:  # never let one bad job end the trainer silently
            send(("error", f"Training failed: {type(exc).__name__}: {exc}"))
        finally:
            finished.set()
            watcher.join()


def _apply(status: JobStatus, event: Event) -> None:
    """Fold one training event into a job's status (called under the queue's lock)."""
    if event.kind == "started":
        status.params, status.device = event.params, event.device
        return
    if event.kind in ("batch", "epoch"):
        status.epoch, status.batch, status.batches = event.epoch, event.batch, event.batches
        status.elapsed = event.elapsed
        if event.images_per_second:
            status.images_per_second = event.images_per_second
        if event.kind == "batch":
            status.live = dict(event.logs)
        else:
            for key, value in event.logs.items():
                status.history.setdefault(key, []).append(value)
        done = status.fraction_done
        if done > 0:
            status.seconds_left = status.elapsed * (1 - done) / done
        return
    if event.kind in ("cancelled", "diverged", "failed"):
        status.message = event.message


_shared: JobQueue | None = None
_shared_lock = threading.Lock()


def shared_queue(store=None, workers: int = DEFAULT_WORKERS) -> JobQueue:
    """The one queue of this process (created on first use)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = JobQueue(store=store, workers=workers)
        return _shared
