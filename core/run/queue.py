"""A process-wide queue of training jobs, run in background trainer processes.

Any UI (every browser session of one Streamlit server) submits configs here and polls plain-data
snapshots; the workers never touch the UI. The same config submitted twice shares one job.

Each worker slot is a thread in this process that feeds long-lived trainer processes, one per
Keras backend in use (spawned on first use; the framework is imported once). Keras fixes its
backend per process, so a JAX job and a TensorFlow job cannot share one. Training runs there, not
in the UI's process, because Streamlit calls keras.backend.clear_session() after every script
run, which in the same process would reset Keras's global state under a running fit (and stall it
on garbage collection). The separate process also keeps the UI's interpreter lock free and
survives a crash of the framework: any fault (a trainer that dies, a pipe that breaks, a process
that cannot be started) ends that one job as "failed" with a sentence, the trainer is discarded,
and the next job gets a fresh one. The worker thread itself never dies.

Executors. Where jobs train is the queue's executor (core.run.protocols.Executor):
LocalExecutor (the default; the trainer processes above, core.run.local) or RayExecutor
(core.run.ray_executor), whose per-slot child processes speak the same pipe protocol but hand the
training to a Ray cluster; core.workspace picks the one PLAYGROUND_RAY_ADDRESS asks for.
Everything else (queue positions, sharing, Stop, faults as sentences) is the same code for both.

Shared server (PLAYGROUND_SHARED=1): several people may wait for one job; Stop from one of them
only stops their waiting, and the job is cancelled when nobody waits any more.
"""

from __future__ import annotations

import copy
import itertools
import math
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from core.errors import PlaygroundError
from core.home import shared_server
from core.run.local import LocalExecutor
from core.run.protocols import Executor, Trainer
from core.runtime import BackendUnavailable, resolve
from core.spec.config import RunConfig
from core.spec.results import Event, RunResult

DEFAULT_CAPACITY = 16  # queued jobs beyond this are refused rather than piling up
ACTIVE = ("queued", "running")
# An idle trainer keeps its framework and the scaled training images (188 MB of float32 for
# Fashion-MNIST) in memory: about 1.1 GB resident each, JAX or TensorFlow, measured after one small
# run here (Keras's .keras saving imports TensorFlow even under JAX). The most recently used
# trainer of a slot is always kept, so its next job starts at once; the others are stopped after
# this long without a job, and a later job of theirs pays the start again (3-5 s).
IDLE_TRAINER_SECONDS = 600.0
IDLE_CHECK_SECONDS = 30.0


class QueueFull(PlaygroundError):
    """The queue holds as many waiting jobs as it accepts."""


@dataclass
class JobStatus:
    """A snapshot of one job; plain data, safe to read from any thread."""

    job_id: int
    run_id: str = ""  # known once the trainer has the data (the id includes the data's identity)
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
    backend: str = ""  # the Keras backend training it (tensorflow, jax, torch), once started
    executor: str = "local"  # where it trains: "local" (trainer processes) or "ray"
    message: str = ""
    sessions: int = 0  # browser sessions waiting for this job
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


@dataclass(frozen=True)
class CancelOutcome:
    """What cancel() did: stopped the job, or (shared server) only stopped the caller waiting."""

    stopped: bool  # the job is removed, or stops after its current batch
    others: int = 0  # sessions still waiting when only the caller was detached

    @property
    def detached(self) -> bool:
        return not self.stopped and self.others > 0

    @property
    def message(self) -> str:
        if not self.detached:
            return ""
        others = "1 other person" if self.others == 1 else f"{self.others} others"
        return f"You stopped waiting; the run goes on for the {others} waiting for it."


class _Job:
    def __init__(self, job_id: int, config: RunConfig, force: bool, session: str | None) -> None:
        self.config = config
        self.force = force  # retrain even if the store holds this config
        self.owner = session  # the first session that asked; the store records it with the run
        self.sessions: set[str] = {session} if session is not None else set()
        self.cancel_requested = threading.Event()
        self.status = JobStatus(
            job_id, epochs=config.epochs, submitted_at=time.time(), sessions=len(self.sessions)
        )

    def join(self, session: str | None) -> None:
        if session is None:
            return
        self.sessions.add(session)
        self.owner = self.owner or session
        self.status.sessions = len(self.sessions)


class JobQueue:
    """Bounded FIFO of training jobs served by `workers` threads."""

    def __init__(
        self,
        store=None,
        workers: int | None = None,
        capacity: int = DEFAULT_CAPACITY,
        keep_finished: int = 200,
        *,
        shared: bool | None = None,
        executor=None,
    ) -> None:
        """workers: jobs at once (default: the executor's, e.g. one per CPU of a Ray cluster).
        executor: LocalExecutor (the default) or RayExecutor; core.workspace.executor_from_env()
        gives the one PLAYGROUND_RAY_ADDRESS asks for."""
        self.executor: Executor = executor if executor is not None else LocalExecutor()
        if workers is None:
            workers = self.executor.default_workers()
        self.store = store  # a RunStore; trainer processes open the same folder
        self.capacity = capacity
        self.shared = shared_server() if shared is None else shared
        self._closing = False
        self.keep_finished = keep_finished
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._waiting: deque[_Job] = deque()
        self._jobs: dict[int, _Job] = {}
        self._ids = itertools.count(1)
        # one dict per worker slot: backend -> its trainer (changed under self._lock)
        self._slots: list[dict[str, Trainer]] = [{} for _ in range(max(1, workers))]
        self._threads = [
            threading.Thread(
                target=self._work, args=(slot,), name=f"training-worker-{i}", daemon=True
            )
            for i, slot in enumerate(self._slots)
        ]
        for thread in self._threads:
            thread.start()

    # ------------------------------------------------------------------ API for any thread
    @property
    def workers(self) -> int:
        """How many jobs train at once (a sweep keeps at most this many trials in the queue)."""
        return len(self._slots)

    def submit(self, config: RunConfig, *, force: bool = False, session: str | None = None) -> int:
        """Queue a training job; an identical active job is shared (joined) instead of duplicated.

        session: the browser session asking (on a shared server, Stop then concerns only it).
        """
        with self._lock:
            for job in self._jobs.values():
                if job.config == config and job.status.active:
                    job.join(session)
                    return job.status.job_id
            if len(self._waiting) >= self.capacity:
                raise QueueFull(
                    f"{len(self._waiting)} trainings are already waiting; try again when one ends."
                )
            job = _Job(next(self._ids), config, force, session)
            job.status.executor = self.executor.name
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

    def cancel(self, job_id: int, session: str | None = None) -> CancelOutcome:
        """Remove a waiting job, or stop a running one after its current batch.

        On a shared server a session that others wait with is only detached; the job goes on
        until the last waiting session stops it. session=None stops the job for everyone.
        """
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or not job.status.active:
                return CancelOutcome(stopped=False)
            if self.shared and session is not None:
                job.sessions.discard(session)
                job.status.sessions = len(job.sessions)
                if job.sessions:
                    return CancelOutcome(stopped=False, others=len(job.sessions))
            if job.status.state == "queued":
                self._waiting.remove(job)
                job.status.state = "cancelled"
                job.status.message = "Removed from the queue before it started."
                self._renumber()
                return CancelOutcome(stopped=True)
        job.cancel_requested.set()
        return CancelOutcome(stopped=True)

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

    def warm(self, backend: str) -> None:
        """Start an idle slot's trainer for `backend` now (it imports Keras at once), so the
        first Train press waits for training, not for a framework's start-up."""
        with self._lock:
            for slot in self._slots:
                if backend in slot:
                    return
            slot = min(self._slots, key=len)
            if slot:  # every slot already has a trainer: leave it to the next job
                return
            trainer = slot[backend] = self.executor.trainer(backend)
            try:
                trainer.start()
            except OSError:  # the next job will start it and say so if it cannot
                slot.pop(backend, None)

    def trainer_pids(self) -> dict[str, list[int]]:
        """Backend -> process ids of the live trainer processes (for operators and tests).

        On Ray: the cluster's worker processes training for each slot (on their own node)."""
        pids: dict[str, list[int]] = {}
        with self._lock:
            for slot in self._slots:
                for backend, trainer in slot.items():
                    if trainer.pid is not None:
                        pids.setdefault(backend, []).append(trainer.pid)
        return pids

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

    # ------------------------------------------------------------------ workers
    def _renumber(self) -> None:
        for position, job in enumerate(self._waiting):
            job.status.position = position + 1

    def _forget_old(self) -> None:
        finished = [j for j in self._jobs.values() if not j.status.active]
        for job in finished[: max(0, len(finished) - self.keep_finished)]:
            del self._jobs[job.status.job_id]

    def _work(self, slot: dict[str, Trainer]) -> None:
        try:
            while not self._closing:
                job = self._take()
                try:
                    if job is not None:
                        self._run(job, slot)
                    self._retire_idle(slot)
                except Exception as exc:  # the slot outlives any fault; only this job fails
                    if job is not None:
                        self._end(job, f"The job failed ({type(exc).__name__}: {exc}).")
        finally:
            for trainer in list(slot.values()):
                trainer.stop()

    def _take(self) -> _Job | None:
        """The next job (now running), or None when closing or after an idle while."""
        with self._wake:
            if not self._waiting and not self._closing:
                self._wake.wait(timeout=IDLE_CHECK_SECONDS)
            if self._closing or not self._waiting:
                return None
            job = self._waiting.popleft()
            job.status.state = "running"
            job.status.position = 0
            self._renumber()
            return job

    def _retire_idle(self, slot: dict[str, Trainer]) -> None:
        if len(slot) < 2:
            return
        newest = max(slot.values(), key=lambda t: t.last_used)
        now = time.monotonic()
        with self._lock:
            idle = [
                backend
                for backend, trainer in slot.items()
                if trainer is not newest and now - trainer.last_used > IDLE_TRAINER_SECONDS
            ]
            retired = [slot.pop(backend) for backend in idle]
        for trainer in retired:
            trainer.stop()

    def _end(self, job: _Job, sentence: str) -> None:
        """Fail a job that is still running with one sentence (an ended job keeps its outcome)."""
        with self._lock:
            if job.status.active:
                job.status.state, job.status.message = "failed", sentence

    def _run(self, job: _Job, slot: dict[str, Trainer]) -> None:
        try:
            backend = resolve(job.config)
        except BackendUnavailable as exc:
            self._end(job, str(exc))
            return
        with self._lock:
            job.status.backend = backend  # known now; the trainer confirms it when it starts
            trainer = slot.get(backend)
            others = []
            if self.executor.one_trainer_per_slot:  # e.g. a Ray actor holds a CPU while it lives
                others = [slot.pop(b) for b in list(slot) if b != backend]
            if trainer is None:
                trainer = slot[backend] = self.executor.trainer(backend)
        for other in others:
            other.stop()

        def on_event(event: Event) -> None:
            with self._lock:
                _apply(job.status, event)

        home = str(self.store.home) if self.store is not None else None
        try:
            outcome = trainer.run(job.config, job.force, home, on_event, job.cancel_requested)
        except Exception:  # a fault mid-run leaves the trainer in an unknown state: replace it
            with self._lock:
                slot.pop(backend, None)
            trainer.discard()
            raise
        if not isinstance(outcome, RunResult):  # a user error or a trainer fault: one sentence
            self._end(job, outcome)
            return
        with self._lock:
            job.status.result = outcome
            job.status.state = outcome.status
            job.status.message = outcome.message or job.status.message
            job.status.run_id = outcome.run_id or job.status.run_id
            job.status.backend = outcome.backend or job.status.backend
            if outcome.ok:
                job.status.history = outcome.history
            owner = job.owner
        if outcome.ok and not outcome.cached and owner is not None:
            self._record_owner(job, outcome.run_id, owner)

    def _record_owner(self, job: _Job, run_id: str, owner: str) -> None:
        set_owner = getattr(self.store, "set_owner", None)  # stores before owners lack it
        if set_owner is None:
            return
        try:
            set_owner(run_id, owner)
        except Exception as exc:  # the run is stored and good; only its owner is unknown
            with self._lock:
                job.status.message = f"The run is stored, but its owner was not recorded ({exc})."


def _apply(status: JobStatus, event: Event) -> None:
    """Fold one training event into a job's status (called under the queue's lock)."""
    status.run_id = event.run_id or status.run_id
    if event.kind == "started":
        status.params, status.device = event.params, event.device
        status.backend = getattr(event, "backend", "") or status.backend
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
