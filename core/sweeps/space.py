"""What a sweep searches: the settings it may vary, their ranges or lists, and the sweep's spec.

A sweep is a base RunConfig, a search space over its settings (a range or a list per setting), a
number of trials, an objective measured on the validation split (test metrics are never used to
choose: the test set stays the final, untouched judge) and a sampler (TPE, random or grid).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass

from core.spec.config import LayerSpec, RunConfig
from core.spec.settings import (
    LAYER_SETTINGS,
    MAX_CONV_BLOCKS,
    MAX_DENSE_LAYERS,
    SETTINGS,
    ConfigError,
    Setting,
)

SAMPLERS = ("tpe", "random", "grid")
# objective -> (Optuna direction, label); both are read from the validation split only
OBJECTIVES = {
    "val_accuracy": ("maximize", "validation accuracy"),
    "val_loss": ("minimize", "validation loss"),
}
PRUNERS = ("median", "none")  # or "threshold:X": stop a trial whose accuracy is below X
DEFAULT_VALIDATION_SPLIT = 0.1  # a sweep needs a validation split; the tutorial has none
MAX_GRID = 200  # grid points; a grid larger than this is a search, not a table


class SweepError(ConfigError):
    """A sweep that cannot be made or run; the message is one sentence for a person."""


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
