"""Running a sweep: Optuna chooses settings, each choice trains as an ordinary run, the best is
kept. What a sweep searches is core.sweeps.space; where it lives, core.sweeps.study.

Optuna is driven with ask/tell: each trial's settings become a RunConfig that goes through the same
JobQueue and RunStore as a run started on Train, so every trial is a run on the Runs page, and a
config trained before is answered from the store at once, without a job.

Interleaving. A sweep keeps at most `queue.workers` of its trials in the queue at a time (queued
or running) and asks Optuna for the next one only when one ends. The queue is first-in first-out,
so a run somebody starts on Train meanwhile waits behind at most one trial per worker, never
behind the whole sweep; with more workers than the sweep fills, it starts at once.

Pruning. The epochs a trial finishes are reported to Optuna (trial.report) as they arrive; when
the pruner says stop, the job is cancelled through the queue, the trial is marked pruned and
nothing is stored (the trainer stores only runs that finish). A trial is never pruned at its last
epoch: by then the run is worth keeping.

Failures. A config that validate() refuses, a loss that diverges, a trainer that fails: the trial
is recorded as failed with its sentence and the sweep goes on.

Stop and resume. Stop cancels the sweep's queued and running trials at once and leaves them
"stopped" (unfinished, Optuna state RUNNING). A runner holds an exclusive lock on
<name>.lock while it runs, so a later runner that gets the lock knows every unfinished trial is
an orphan (stopped, or left by a process that was killed) and trains it again first, under the
same trial number and with the same settings: no trial is lost and none is counted twice.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass

from core.run.queue import QueueFull
from core.spec.config import RunConfig
from core.spec.settings import ConfigError
from core.spec.validate import validate
from core.store import StoreError
from core.sweeps.space import SWEEPABLE, Param, SweepError, SweepSpec
from core.sweeps.study import (
    SweepSummary,
    TrialRecord,
    is_running,
    open_study,
    record_of,
    runner_lock,
)

POLL_SECONDS = 0.05  # how often a runner looks at its jobs (Stop acts at once, not on a poll)


@dataclass
class _InFlight:
    trial: object  # optuna.trial.Trial
    job_id: int
    config: RunConfig
    reported: int = 0  # epochs already reported to Optuna


class SweepRunner:
    """Runs one sweep's trials through a JobQueue until it has `spec.trials` ended trials.

    run() works in the calling thread (the CLI); start() in a background thread (the page).
    stop() may be called from any thread: it cancels the sweep's jobs at once.
    data: the loaded Dataset the runs train on (its fingerprint makes the run ids).
    on_trial: called with each TrialRecord as its trial ends (from the runner's thread).
    """

    def __init__(
        self,
        home,
        name: str,
        queue,
        store,
        data,
        spec: SweepSpec | None = None,
        *,
        session: str | None = None,
        on_trial: Callable[[TrialRecord], None] | None = None,
    ) -> None:
        self.home, self.name, self.queue, self.store, self.data = home, name, queue, store, data
        self.session, self.on_trial = session, on_trial
        self.study, self.spec = open_study(home, name, spec)  # creates it, or checks the match
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._in_flight: dict[int, _InFlight] = {}
        self._thread: threading.Thread | None = None
        self.error: str = ""  # the sentence a background run ended with, if it failed

    # ------------------------------------------------------------------ control
    def start(self) -> SweepRunner:
        def work() -> None:
            try:
                self.run()
            except Exception as exc:  # the page shows it; the thread must not die silently
                self.error = str(exc) if isinstance(exc, ConfigError) else repr(exc)

        self._thread = threading.Thread(target=work, name=f"sweep-{self.name}", daemon=True)
        self._thread.start()
        return self

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self) -> None:
        """Cancel every queued and running trial of this sweep now; run() returns soon."""
        self._stop.set()
        with self._lock:
            jobs = [item.job_id for item in self._in_flight.values()]
        for job_id in jobs:
            self.queue.cancel(job_id, session=self.session)

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def live(self) -> dict[int, tuple[str, int]]:
        """Trial number -> (queued|running, job id) for the trials in the queue now."""
        with self._lock:
            items = dict(self._in_flight)
        live = {}
        for number, item in items.items():
            status = self.queue.status(item.job_id)
            state = status.state if status is not None and status.active else "running"
            live[number] = (state, item.job_id)
        return live

    def summary(self) -> SweepSummary:
        """The sweep now, with the live state of the trials in the queue."""
        live, alive = self.live(), self.alive
        records = [record_of(t, live) for t in self.study.get_trials(deepcopy=False)]
        for record in records:
            if alive and record.state == "stopped":  # asked, and being handed to the queue
                record.state = "queued"
        return SweepSummary(self.name, self.spec, records, running=alive)

    # ------------------------------------------------------------------ the loop
    def run(self) -> SweepSummary:
        """Run trials until the sweep has its number of ended trials, or until stop()."""
        from optuna.trial import TrialState

        with runner_lock(self.home, self.name):
            orphans = [
                t.number
                for t in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
            ]
            workers = max(1, getattr(self.queue, "workers", 1))
            while not self._stop.is_set():
                ended = sum(t.state.is_finished() for t in self.study.get_trials(deepcopy=False))
                while len(self._in_flight) < workers and not self._stop.is_set():
                    if orphans:
                        trial = self._reopen(orphans[0])
                    elif ended + len(self._in_flight) < self.spec.trials:
                        trial = self.study.ask()
                    else:
                        break
                    try:
                        ended += self._begin(trial)
                    except QueueFull:  # others fill the queue: try again on the next round
                        if trial.number not in orphans:
                            orphans.insert(0, trial.number)
                        break
                    if orphans and orphans[0] == trial.number:
                        orphans.pop(0)
                if not self._in_flight and ended >= self.spec.trials and not orphans:
                    break
                for number in list(self._in_flight):
                    self._follow(number)
                self._stop.wait(POLL_SECONDS)
            for item in list(self._in_flight.values()):  # stopped: cancel and keep unfinished
                self.queue.cancel(item.job_id, session=self.session)
                item.trial.set_user_attr("message", "Stopped; resuming the sweep trains it again.")
            with self._lock:
                self._in_flight.clear()
        return summary_after(self)

    def _reopen(self, number: int):
        from optuna.trial import Trial

        frozen = self.study.get_trials(deepcopy=False)[number]
        return Trial(self.study, frozen._trial_id)

    def _begin(self, trial) -> int:
        """Start a trial: answered now (stored, or refused) -> 1; submitted to the queue -> 0."""
        params = {p.name: _suggest(trial, p) for p in self.spec.space}
        config = self.spec.config_for(params)
        run_id = config.run_id_for(self.data.fingerprint)
        trial.set_user_attr("run_id", run_id)
        try:
            validate(
                config,
                train_available=len(self.data.x_train),
                input_shape=self.data.input_shape,
                num_classes=self.data.num_classes,
            )
        except ConfigError as exc:
            self._tell_failed(trial, "failed", str(exc))
            return 1
        try:
            stored = self.store.get(run_id)
        except StoreError:  # damaged: the trainer replaces it
            stored = None
        if stored is not None:
            value = objective_value(stored.history, self.spec.objective)
            trial.set_user_attr("cached", True)
            trial.set_user_attr("seconds", stored.train_seconds)
            self._tell_done(trial, value)
            return 1
        job_id = self.queue.submit(config, session=self.session)
        trial.set_user_attr("cached", False)
        with self._lock:
            self._in_flight[trial.number] = _InFlight(trial, job_id, config)
        if self._stop.is_set():  # stop() ran while we submitted: it could not see this job
            self.queue.cancel(job_id, session=self.session)
        return 0

    def _follow(self, number: int) -> None:
        """Report new epochs, prune if told to, and end the trial when its job ends."""
        import optuna

        item = self._in_flight[number]
        status = self.queue.status(item.job_id)
        if status is None:
            self._finish(number)
            self._tell_failed(item.trial, "failed", "The job was lost from the queue.")
            return
        values = status.history.get(self.spec.objective, [])
        # never the last epoch: a run that reached it is finished, and worth storing
        while item.reported < min(len(values), item.config.epochs - 1):
            value = values[item.reported]
            item.reported += 1
            if not math.isfinite(value):
                continue
            item.trial.report(value, item.reported)
            if status.active and item.trial.should_prune():
                self.queue.cancel(item.job_id, session=self.session)
                self._finish(number)
                item.trial.set_user_attr(
                    "message",
                    f"Pruned after epoch {item.reported}: {self.spec.objective_label} "
                    f"{value:.4f} was not promising.",
                )
                self._tell(item.trial, state=optuna.trial.TrialState.PRUNED)
                return
        if status.active:
            return
        self._finish(number)
        if status.state == "finished" and status.result is not None:
            item.trial.set_user_attr("cached", bool(status.result.cached))
            item.trial.set_user_attr("seconds", status.result.train_seconds)
            value = objective_value(status.result.history, self.spec.objective)
            if value is None:
                self._tell_failed(item.trial, "failed", "The run recorded no validation score.")
            else:
                self._tell_done(item.trial, value)
        elif status.state == "cancelled" and self._stop.is_set():
            with self._lock:  # Stop: the trial stays unfinished, to be trained on resume
                self._in_flight[number] = item
        else:
            self._tell_failed(item.trial, status.state, status.message)

    def _finish(self, number: int) -> None:
        with self._lock:
            self._in_flight.pop(number, None)

    def _tell_done(self, trial, value: float) -> None:
        self._tell(trial, values=value)

    def _tell_failed(self, trial, outcome: str, message: str) -> None:
        import optuna

        trial.set_user_attr("outcome", outcome)
        trial.set_user_attr("message", message)
        self._tell(trial, state=optuna.trial.TrialState.FAIL)

    def _tell(self, trial, **kw) -> None:
        frozen = self.study.tell(trial, skip_if_finished=True, **kw)
        if self.on_trial is not None:
            self.on_trial(record_of(frozen))


def summary_after(runner: SweepRunner) -> SweepSummary:
    records = [record_of(t) for t in runner.study.get_trials(deepcopy=False)]
    return SweepSummary(runner.name, runner.spec, records, running=False)


def _suggest(trial, param: Param):
    """The trial's value for one param (a trial resumed after a stop keeps its earlier value)."""
    setting = SWEEPABLE[param.name]
    if not param.is_range:
        return trial.suggest_categorical(param.name, list(param.values))
    if setting.type is int:
        return trial.suggest_int(param.name, int(param.low), int(param.high), log=param.log)
    return trial.suggest_float(param.name, param.low, param.high, log=param.log)


def objective_value(history: dict, objective: str) -> float | None:
    """The objective after the last epoch trained (None if the run has no validation score)."""
    values = history.get(objective) or []
    if not values or not math.isfinite(values[-1]):
        return None
    return float(values[-1])


_runners: dict[tuple[str, str], SweepRunner] = {}
_runners_lock = threading.Lock()


def start_background(home, name: str, queue, store, data, spec=None, **kw) -> SweepRunner:
    """Start (or resume) a sweep in a background thread of this process; one runner per sweep."""
    key = (str(home), name)
    with _runners_lock:
        runner = _runners.get(key)
        if runner is not None and runner.alive:
            raise SweepError(f"The sweep '{name}' is already running.")
        if is_running(home, name):
            raise SweepError(f"The sweep '{name}' is already running in another process.")
        runner = _runners[key] = SweepRunner(home, name, queue, store, data, spec, **kw).start()
        return runner


def background(home, name: str) -> SweepRunner | None:
    """The runner this process started for the sweep, if any (alive or ended)."""
    with _runners_lock:
        return _runners.get((str(home), name))
