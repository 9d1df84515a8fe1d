"""Sweeps: let Optuna choose settings, train each choice as an ordinary run, keep the best.

A sweep is a base RunConfig, a search space over its settings (a range or a list per setting), a
number of trials, an objective measured on the validation split (test metrics are never used to
choose: the test set stays the final, untouched judge) and a sampler (TPE, random or grid).

The study lives in PLAYGROUND_HOME/sweeps/<name>.journal, Optuna's journal file storage (its
maintainers advise against SQLite when several workers write). Optuna is driven with ask/tell:
each trial's settings become a RunConfig that goes through the same JobQueue and RunStore as a
run started on Train, so every trial is a run on the Runs page, and a config trained before is
answered from the store at once, without a job.

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

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import math
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from core.config import (
    LAYER_SETTINGS,
    MAX_CONV_BLOCKS,
    MAX_DENSE_LAYERS,
    SETTINGS,
    ConfigError,
    LayerSpec,
    RunConfig,
    Setting,
    validate,
)
from core.jobs import QueueFull
from core.store import StoreError

SWEEP_FOLDER = "sweeps"  # under PLAYGROUND_HOME, beside the runs
SAMPLERS = ("tpe", "random", "grid")
# objective -> (Optuna direction, label); both are read from the validation split only
OBJECTIVES = {
    "val_accuracy": ("maximize", "validation accuracy"),
    "val_loss": ("minimize", "validation loss"),
}
PRUNERS = ("median", "none")  # or "threshold:X": stop a trial whose accuracy is below X
DEFAULT_VALIDATION_SPLIT = 0.1  # a sweep needs a validation split; the tutorial has none
MAX_GRID = 200  # grid points; a grid larger than this is a search, not a table
POLL_SECONDS = 0.05  # how often a runner looks at its jobs (Stop acts at once, not on a poll)
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class SweepError(ConfigError):
    """A sweep that cannot be made or run; the message is one sentence for a person."""


# ---------------------------------------------------------------------- what a sweep may vary

# Whole-network knobs on top of the per-run settings: counts of layers, and one value for every
# layer of a kind (a sweep asks "how wide?", not "how wide is layer 3?"). Ranges come from
# core.config, so a sweep can ask for nothing the sidebar could not build.
ARCHITECTURE_SETTINGS: dict[str, Setting] = {
    s.name: s
    for s in (
        Setting("hidden_layers", "Hidden dense layers", int, 0, MAX_DENSE_LAYERS),
        Setting("conv_blocks", "Convolution blocks", int, 0, MAX_CONV_BLOCKS),
        dataclasses.replace(LAYER_SETTINGS["units"], label="Units (every dense layer)"),
        dataclasses.replace(LAYER_SETTINGS["dropout"], label="Dropout (every hidden layer)"),
        dataclasses.replace(LAYER_SETTINGS["activation"], label="Activation (every layer)"),
        dataclasses.replace(LAYER_SETTINGS["filters"], label="Filters (every conv block)"),
        dataclasses.replace(LAYER_SETTINGS["kernel_size"], label="Kernel size (every conv block)"),
    )
}
SWEEPABLE: dict[str, Setting] = {
    **{name: s for name, s in SETTINGS.items() if name != "dataset"},  # the data is fixed
    **ARCHITECTURE_SETTINGS,
}


@dataclass(frozen=True)
class Param:
    """One searched setting: a range (low..high, optionally log-uniform) or a list of values."""

    name: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    values: tuple = ()

    @property
    def is_range(self) -> bool:
        return self.low is not None or self.high is not None

    def text(self) -> str:
        """The CLI form: NAME=LOW:HIGH[:log] or NAME=a,b,c."""
        setting = SWEEPABLE[self.name]
        if self.is_range:
            body = f"{setting.format(self.low)}:{setting.format(self.high)}"
            return f"{self.name}={body}{':log' if self.log else ''}"
        return f"{self.name}={','.join(setting.format(v) for v in self.values)}"

    def to_dict(self) -> dict:
        return {"name": self.name, "low": self.low, "high": self.high, "log": self.log,
                "values": list(self.values)}  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict) -> Param:
        return cls(data["name"], data["low"], data["high"], data["log"], tuple(data["values"]))

    def grid_values(self) -> list:
        """Every value a grid visits: the list, or each integer of an integer range."""
        if not self.is_range:
            return list(self.values)
        if SWEEPABLE[self.name].type is int and not self.log:
            return list(range(int(self.low), int(self.high) + 1))
        raise SweepError(
            f"A grid needs a list of values for {self.name}, e.g. "
            f"{self.name}={_show(self.low)},{_show(self.high)}; a range of decimals has no grid."
        )


def parse_param(text: str) -> Param:
    """`NAME=LOW:HIGH[:log]` or `NAME=a,b,c`, checked; SweepError with one sentence if not."""
    name, sep, body = str(text).partition("=")
    name, body = name.strip(), body.strip()
    if not sep or not name:
        raise SweepError(
            f"'{text}' is not a search range: write NAME=LOW:HIGH[:log] or NAME=a,b,c."
        )
    setting = _setting(name)
    if ":" in body and "," not in body:
        parts = [p.strip() for p in body.split(":")]
        if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] != "log"):
            raise SweepError(
                f"'{text}' is not a range: write {name}=LOW:HIGH or {name}=LOW:HIGH:log."
            )
        low, high = (_parse_value(setting, p) for p in parts[:2])
        return check_param(Param(name, low, high, log=len(parts) == 3))
    values = tuple(_parse_value(setting, p.strip()) for p in body.split(",") if p.strip())
    return check_param(Param(name, values=values))


def check_param(param: Param) -> Param:
    """The param with values of the setting's type, or SweepError naming what is wrong."""
    setting = _setting(param.name)
    if param.is_range:
        if setting.type not in (int, float) or setting.choices:
            raise SweepError(
                f"{setting.label} takes a list of values, not a range "
                f"(e.g. {param.name}={','.join(map(str, setting.choices or ('1', '0')))})."
            )
        if param.low is None or param.high is None:
            raise SweepError(f"The range for {param.name} needs a low and a high value.")
        low, high = setting.type(param.low), setting.type(param.high)
        if (low, high) != (param.low, param.high):
            raise SweepError(f"{setting.label} takes whole numbers; {param.text()} has a fraction.")
        if low > high:
            raise SweepError(
                f"The range for {param.name} runs backwards: low {_show(low)} is above "
                f"high {_show(high)}."
            )
        if param.log and low <= 0:
            raise SweepError(
                f"A log range for {param.name} must start above 0 (it starts at {_show(low)}): "
                "the logarithm of 0 or of a negative number does not exist."
            )
        for value in (low, high):
            _check_value(setting, param.name, value)
        return Param(param.name, low, high, param.log)
    if not param.values:
        raise SweepError(
            f"The list for {param.name} is empty; give at least one value, e.g. {param.name}=a,b."
        )
    values = []
    for value in param.values:
        if setting.type in (int, float) and not isinstance(value, bool):
            value = setting.type(value)
        _check_value(setting, param.name, value)
        if value not in values:
            values.append(value)
    return Param(param.name, values=tuple(values))


def _setting(name: str) -> Setting:
    if name not in SWEEPABLE:
        if name == "dataset":
            raise SweepError("A sweep keeps its dataset fixed; choose the dataset in the base run.")
        raise SweepError(
            f"'{name}' is not a setting a sweep can vary; choose from: {', '.join(SWEEPABLE)}."
        )
    return SWEEPABLE[name]


def _parse_value(setting: Setting, text: str):
    try:
        value = setting.parse(text)
        if setting.type is int and str(int(value)) != text.strip():
            raise ValueError
        return value
    except ValueError:
        kind = {int: "a whole number", float: "a number", bool: "1 or 0"}.get(setting.type, "text")
        raise SweepError(f"{setting.name}: '{text}' is not {kind}.") from None


def _check_value(setting: Setting, name: str, value) -> None:
    problem = setting.problem(value)
    if problem:
        raise SweepError(problem)
    if name == "validation_split" and value == 0:
        raise SweepError(
            "A sweep chooses by validation accuracy, so the validation split must stay above 0."
        )


def _show(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


# ---------------------------------------------------------------------- the sweep's description


@dataclass(frozen=True)
class SweepSpec:
    """Everything that decides a sweep: base run, space, trials, objective, sampler, pruner."""

    base: RunConfig
    space: tuple[Param, ...]
    trials: int = 8
    objective: str = "val_accuracy"
    sampler: str = "tpe"
    pruner: str = "median"

    def checked(self) -> SweepSpec:
        """This spec with a validation split and a grid-sized trial count; SweepError if wrong."""
        if not self.space:
            raise SweepError("The search space is empty: give at least one setting to vary.")
        names = [p.name for p in self.space]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise SweepError(f"The space names {', '.join(twice)} more than once; give one range.")
        space = tuple(check_param(p) for p in self.space)
        if self.objective not in OBJECTIVES:
            raise SweepError(
                f"Unknown objective '{self.objective}'; choose one of: {', '.join(OBJECTIVES)}."
            )
        if self.sampler not in SAMPLERS:
            raise SweepError(
                f"Unknown sampler '{self.sampler}'; choose one of: {', '.join(SAMPLERS)}."
            )
        make_pruner(self.pruner)  # raises for an unknown one
        if self.trials < 1:
            raise SweepError(f"A sweep needs at least 1 trial (asked for {self.trials}).")
        trials = self.trials
        if self.sampler == "grid":
            size = math.prod(len(p.grid_values()) for p in space)
            if size > MAX_GRID:
                raise SweepError(
                    f"This grid has {size:,} points, more than {MAX_GRID}; use fewer values or "
                    "the tpe or random sampler."
                )
            trials = min(trials, size)  # a grid is done when every point is
        base = self.base
        if base.validation_split == 0:  # the objective is measured on the validation split
            base = base.replace(validation_split=DEFAULT_VALIDATION_SPLIT)
        return dataclasses.replace(self, base=base, space=space, trials=trials)

    def to_dict(self) -> dict:
        return {
            "base": self.base.to_dict(),
            "space": [p.to_dict() for p in self.space],
            "trials": self.trials,
            "objective": self.objective,
            "sampler": self.sampler,
            "pruner": self.pruner,
        }

    @classmethod
    def from_dict(cls, data: dict) -> SweepSpec:
        return cls(
            base=RunConfig.from_dict(data["base"]),
            space=tuple(Param.from_dict(p) for p in data["space"]),
            trials=int(data["trials"]),
            objective=data["objective"],
            sampler=data["sampler"],
            pruner=data["pruner"],
        )

    def key(self) -> str:
        """Identity of the search (everything but the number of trials, which may grow)."""
        data = self.to_dict()
        del data["trials"]
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:8]

    def default_name(self) -> str:
        return "-".join(p.name for p in self.space)[:40] + "-" + self.key()

    @property
    def direction(self) -> str:
        return OBJECTIVES[self.objective][0]

    @property
    def objective_label(self) -> str:
        return OBJECTIVES[self.objective][1]

    def config_for(self, params: dict) -> RunConfig:
        """The run a trial trains: the base with the trial's chosen values."""
        return apply_params(self.base, params)


def apply_params(base: RunConfig, params: dict) -> RunConfig:
    """Base config with run settings replaced and architecture knobs applied to its layers."""
    plain = {k: v for k, v in params.items() if k in SETTINGS}
    config = base.replace(**plain)
    conv = [layer for layer in config.layers if layer.kind == "conv"]
    dense = [layer for layer in config.layers if layer.kind == "dense"]
    if "conv_blocks" in params:
        conv = _resize(conv, int(params["conv_blocks"]), LayerSpec(kind="conv"))
    if "hidden_layers" in params:
        dense = _resize(dense, int(params["hidden_layers"]), LayerSpec())
    for name in ("units", "activation", "dropout"):
        if name in params:
            dense = [dataclasses.replace(layer, **{name: params[name]}) for layer in dense]
    for name in ("filters", "kernel_size", "activation", "dropout"):
        if name in params:
            conv = [dataclasses.replace(layer, **{name: params[name]}) for layer in conv]
    return config.replace(layers=tuple(conv + dense))


def _resize(layers: list[LayerSpec], count: int, default: LayerSpec) -> list[LayerSpec]:
    """`count` layers: the first ones kept, new ones copying the last (or a default)."""
    template = layers[-1] if layers else default
    return (layers + [template] * count)[:count]


def make_pruner(name: str):
    """The Optuna pruner a spec names: median (default), none, or threshold:X."""
    import optuna

    if name == "median":
        # Compares a trial's epoch with the median of earlier trials at the same epoch; waits for
        # two trials, so the first ones are never judged against nothing.
        return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0)
    if name == "none":
        return optuna.pruners.NopPruner()
    if name.startswith("threshold:"):
        try:
            lower = float(name.split(":", 1)[1])
        except ValueError:
            lower = math.nan
        if math.isfinite(lower):
            return optuna.pruners.ThresholdPruner(lower=lower)
    raise SweepError(f"Unknown pruner '{name}'; choose median, none or threshold:X (e.g. 0.5).")


# ---------------------------------------------------------------------- ready-made experiments


@dataclass(frozen=True)
class Experiment:
    """A question every learner asks, as a sweep over one setting of the base run."""

    key: str
    title: str
    note: str
    param: Param
    sampler: str
    trials: int

    def spec(self, base: RunConfig, trials: int | None = None) -> SweepSpec:
        return SweepSpec(
            base=base, space=(self.param,), trials=trials or self.trials, sampler=self.sampler
        ).checked()


EXPERIMENTS: dict[str, Experiment] = {
    e.key: e
    for e in (
        Experiment(
            "data",
            "How much data does it need?",
            "The same network on 1,000 to 60,000 training images.",
            Param("train_size", values=(1000, 2000, 5000, 10000, 20000, 60000)),
            "grid",
            6,
        ),
        Experiment(
            "depth",
            "How deep?",
            "0 to 4 hidden dense layers like the base run's last one.",
            Param("hidden_layers", values=(0, 1, 2, 3, 4)),
            "grid",
            5,
        ),
        Experiment(
            "learning-rate",
            "Which learning rate?",
            "Learning rates from 0.00001 to 0.1, searched on a log scale.",
            Param("learning_rate", 1e-5, 1e-1, log=True),
            "tpe",
            8,
        ),
        Experiment(
            "batch-size",
            "Batch size",
            "Batches of 16 to 512 images per update.",
            Param("batch_size", values=(16, 32, 64, 128, 256, 512)),
            "grid",
            6,
        ),
    )
}


# ---------------------------------------------------------------------- storage


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
def _runner_lock(home, name: str):
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
        with _runner_lock(home, name):
            return False
    except SweepError:
        return True


def delete(home, name: str) -> None:
    """Remove a sweep's study (its runs stay in the store; they are ordinary runs)."""
    path = _journal_path(home, name)
    if not path.exists():
        raise SweepError(f"There is no sweep named '{name}' in {sweeps_folder(home)}.")
    with _runner_lock(home, name):  # refuses while it runs
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


# ---------------------------------------------------------------------- what a sweep shows


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
            "states": {s: sum(t.state == s for t in self.trials) for s in _states(self.trials)},
            "space": [p.text() for p in self.spec.space],
            "sampler": self.spec.sampler,
            "running": self.running,
        }


def _states(trials: list[TrialRecord]) -> list[str]:
    return sorted({t.state for t in trials})


def _record(frozen, live: dict | None = None) -> TrialRecord:
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
    records = [_record(t) for t in study.get_trials(deepcopy=False)]
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


# ---------------------------------------------------------------------- running


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
        records = [_record(t, live) for t in self.study.get_trials(deepcopy=False)]
        for record in records:
            if alive and record.state == "stopped":  # asked, and being handed to the queue
                record.state = "queued"
        return SweepSummary(self.name, self.spec, records, running=alive)

    # ------------------------------------------------------------------ the loop
    def run(self) -> SweepSummary:
        """Run trials until the sweep has its number of ended trials, or until stop()."""
        from optuna.trial import TrialState

        with _runner_lock(self.home, self.name):
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
            self.on_trial(_record(frozen))


def summary_after(runner: SweepRunner) -> SweepSummary:
    records = [_record(t) for t in runner.study.get_trials(deepcopy=False)]
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


# ---------------------------------------------------------------------- one server, many pages

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
