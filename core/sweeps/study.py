"""Where a sweep lives: an Optuna study in a journal file, and what it holds, read back as records.

The study lives in PLAYGROUND_HOME/sweeps/<name>.journal, Optuna's journal file storage (its
maintainers advise against SQLite when several workers write). A runner holds an exclusive lock
on <name>.lock while it runs, so anyone can tell whether a sweep is running now.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from core.spec.config import RunConfig
from core.sweeps.space import SweepError, SweepSpec, make_pruner

SWEEP_FOLDER = "sweeps"  # under PLAYGROUND_HOME, beside the runs

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def sweeps_folder(home) -> Path:
    return Path(home) / SWEEP_FOLDER


def check_name(name: str) -> str:
    if not NAME_PATTERN.match(name or ""):
        raise SweepError(
            f"'{name}' cannot name a sweep: use up to 64 letters, digits, '-', '_' or '.'."
        )
    return name


def _journal_path(home, name: str) -> Path:
    return sweeps_folder(home) / f"{check_name(name)}.journal"


def _storage(path: Path):
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

    path.parent.mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(str(path), lock_obj=JournalFileOpenLock(str(path))))


def _quiet_optuna():
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # a line per trial is ours to print
    return optuna


def _sampler(spec: SweepSpec, seed: int):
    optuna = _quiet_optuna()
    if spec.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if spec.sampler == "grid":
        return _ask_tell_grid({p.name: p.grid_values() for p in spec.space}, seed)
    return optuna.samplers.TPESampler(seed=seed)


def _ask_tell_grid(search_space: dict, seed: int):
    """A GridSampler without its study.stop() at the end of the grid, which raises outside
    study.optimize; the runner stops at the grid's size itself. (Made here: optuna loads lazily.)"""
    optuna = _quiet_optuna()

    class AskTellGrid(optuna.samplers.GridSampler):
        def after_trial(self, study, trial, state, values) -> None:
            return None

    return AskTellGrid(search_space, seed=seed)


def open_study(home, name: str, spec: SweepSpec | None = None):
    """(study, spec): the sweep's Optuna study, created from `spec` or loaded from its journal.

    With a spec for an existing sweep, the spec must describe the same search (its trial count
    may grow: that extends the sweep). Without one, the sweep must exist.
    """
    optuna = _quiet_optuna()
    path = _journal_path(home, name)
    exists = path.exists() and name in optuna.get_all_study_names(_storage(path))
    if not exists and spec is None:
        raise SweepError(f"There is no sweep named '{name}' in {sweeps_folder(home)}.")
    storage = _storage(path)
    if exists:
        study = optuna.load_study(study_name=name, storage=storage)
        saved = SweepSpec.from_dict(study.user_attrs["spec"])
        if spec is not None:
            spec = spec.checked()
            if spec.key() != saved.key():
                raise SweepError(
                    f"A sweep named '{name}' already searches another space "
                    f"({', '.join(p.text() for p in saved.space)}); choose another name or "
                    "delete that sweep."
                )
            if spec.trials != saved.trials:
                study.set_user_attr("spec", spec.to_dict())  # more (or fewer) trials to run
            saved = spec
    else:
        saved = spec.checked()
        study = optuna.create_study(study_name=name, storage=storage, direction=saved.direction)
        study.set_user_attr("spec", saved.to_dict())
        study.set_user_attr("created_at", time.time())
    # Seeded, and shifted by the trials already asked: a resumed sampler must not replay the
    # draws the first runner made (a random sampler would propose the same settings again).
    seed = saved.base.seed + len(study.trials)
    study = optuna.load_study(
        study_name=name,
        storage=storage,
        sampler=_sampler(saved, seed),
        pruner=make_pruner(saved.pruner),
    )
    return study, saved


def extend(home, name: str, trials: int) -> SweepSpec:
    """Change how many trials the sweep runs (resume it to run the new ones)."""
    _, spec = open_study(home, name)
    return open_study(home, name, dataclasses.replace(spec, trials=trials))[1]


@contextlib.contextmanager
def runner_lock(home, name: str):
    """Held while a runner works on the sweep (released by the kernel if the process dies)."""
    path = sweeps_folder(home) / f"{check_name(name)}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SweepError(f"The sweep '{name}' is already running.") from None
        yield
    finally:
        handle.close()


def is_running(home, name: str) -> bool:
    """Whether a runner (in this process or another) works on the sweep now."""
    try:
        with runner_lock(home, name):
            return False
    except SweepError:
        return True


def delete(home, name: str) -> None:
    """Remove a sweep's study (its runs stay in the store; they are ordinary runs)."""
    path = _journal_path(home, name)
    if not path.exists():
        raise SweepError(f"There is no sweep named '{name}' in {sweeps_folder(home)}.")
    with runner_lock(home, name):  # refuses while it runs
        for suffix in (".journal", ".journal.lock"):
            with contextlib.suppress(FileNotFoundError):
                (sweeps_folder(home) / f"{name}{suffix}").unlink()
    with contextlib.suppress(FileNotFoundError):
        (sweeps_folder(home) / f"{name}.lock").unlink()


def names(home) -> list[str]:
    folder = sweeps_folder(home)
    if not folder.is_dir():
        return []
    return sorted(p.name[: -len(".journal")] for p in folder.glob("*.journal"))


@dataclass
class TrialRecord:
    """One trial as plain data: state is queued, running, stopped, finished, pruned, diverged,
    failed or cancelled."""

    number: int
    state: str
    params: dict
    value: float | None = None
    run_id: str = ""
    cached: bool = False
    seconds: float = 0.0
    message: str = ""
    job_id: int | None = None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class SweepSummary:
    """A sweep's state: its spec and trials (plain data for the CLI and the page)."""

    name: str
    spec: SweepSpec
    trials: list[TrialRecord] = field(default_factory=list)
    running: bool = False

    @property
    def finished(self) -> list[TrialRecord]:
        return [t for t in self.trials if t.state == "finished"]

    @property
    def ended(self) -> int:
        return sum(t.state not in ("queued", "running", "stopped") for t in self.trials)

    @property
    def best(self) -> TrialRecord | None:
        done = [t for t in self.finished if t.value is not None]
        if not done:
            return None
        sign = 1 if self.spec.direction == "maximize" else -1
        return max(done, key=lambda t: (sign * t.value, -t.number))

    def best_config(self) -> RunConfig | None:
        best = self.best
        return self.spec.config_for(best.params) if best else None

    def to_json(self) -> dict:
        best = self.best
        return {
            "name": self.name,
            "objective": self.spec.objective,
            "best_run_id": best.run_id if best else None,
            "best_value": best.value if best else None,
            "best_trial": best.number if best else None,
            "best_settings": best.params if best else {},
            "best_config": self.best_config().to_dict() if best else None,
            "trials": len(self.finished),
            "target": self.spec.trials,
            "states": {s: sum(t.state == s for t in self.trials) for s in states_of(self.trials)},
            "space": [p.text() for p in self.spec.space],
            "sampler": self.spec.sampler,
            "running": self.running,
        }


def states_of(trials: list[TrialRecord]) -> list[str]:
    return sorted({t.state for t in trials})


def record_of(frozen, live: dict | None = None) -> TrialRecord:
    """A TrialRecord from an Optuna FrozenTrial (and, if it is in flight, its live state)."""
    from optuna.trial import TrialState

    attrs = frozen.user_attrs
    state = {
        TrialState.COMPLETE: "finished",
        TrialState.PRUNED: "pruned",
        TrialState.FAIL: attrs.get("outcome", "failed"),
    }.get(frozen.state, "stopped")
    record = TrialRecord(
        number=frozen.number,
        state=state,
        params=dict(frozen.params),
        value=frozen.value if frozen.state == TrialState.COMPLETE else None,
        run_id=attrs.get("run_id", ""),
        cached=bool(attrs.get("cached", False)),
        seconds=float(attrs.get("seconds", 0.0)),
        message=attrs.get("message", ""),
    )
    if live and frozen.number in live:
        record.state, record.job_id = live[frozen.number]
    return record


def summary(home, name: str) -> SweepSummary:
    """The sweep as its journal has it now (another process may be running it)."""
    study, spec = open_study(home, name)
    running = is_running(home, name)
    records = [record_of(t) for t in study.get_trials(deepcopy=False)]
    if running:  # unfinished trials belong to the live runner, not to a stopped one
        for record in records:
            if record.state == "stopped":
                record.state = "running"
    return SweepSummary(name, spec, records, running)


def list_sweeps(home) -> list[SweepSummary]:
    found = []
    for name in names(home):
        try:
            found.append(summary(home, name))
        except (SweepError, KeyError, ValueError):  # a journal of something else: skip it
            continue
    return found


def study_of(home, name: str):
    """The Optuna study itself (for its Plotly figures)."""
    return open_study(home, name)[0]
