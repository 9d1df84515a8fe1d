"""How fast a network trains here: steps per call into the backend, and time estimates.

Keras spends most of a small training step in Python and dispatch, not arithmetic, so several
steps run per call into the backend (`steps_per_execution`), sized from the network's arithmetic
so that one call still takes well under a tenth of a second: progress keeps arriving several
times a second and Stop, which Keras checks between calls, still ends a run within a fraction of
a second. The same arithmetic, with the throughput of runs already stored, estimates how long a
training will take before it starts.
"""

from __future__ import annotations

from core.spec.config import RunConfig
from core.spec.plan import layer_table
from core.spec.settings import ConfigError

EXECUTION_SECONDS = 0.05  # target time of one call into the backend (several steps)
MAX_STEPS_PER_EXECUTION = 64
CPU_FLOPS = 5e9  # a low estimate of a 2-core CPU's training throughput, so calls stay short
GPU_FLOPS = 5e11


def steps_per_execution(
    config: RunConfig, input_shape: tuple[int, ...], gpu: bool, backend: str = ""
) -> int:
    """How many training steps one call into the backend runs (see the module's docstring).

    Estimated from the network's multiply-adds per image (forward + backward is about 3x the
    forward pass), so a tiny dense net runs many steps per call and a conv net runs one.
    Keras's PyTorch trainer runs exactly one step per call (it refuses more).
    """
    if backend == "torch":
        return 1
    flops = 3 * forward_flops(config, input_shape) * config.batch_size
    step_seconds = flops / (GPU_FLOPS if gpu else CPU_FLOPS)
    return int(max(1, min(MAX_STEPS_PER_EXECUTION, EXECUTION_SECONDS // max(step_seconds, 1e-9))))


def forward_flops(config: RunConfig, input_shape: tuple[int, ...]) -> int:
    """Multiply-adds of one image's forward pass: a dense weight is used once, a conv weight once
    per output position."""
    total = 0
    for row in layer_table(config, input_shape, 10):
        if row.name.startswith("Conv2D"):
            height, width, _ = row.output_shape
            total += row.params * height * width
        elif row.name.startswith("Dense"):
            total += row.params
    return total


def estimate_seconds(config: RunConfig, input_shape, n_fit: int, runs: list[dict]) -> tuple:
    """(seconds for the whole training, how it was estimated), before anything is trained.

    `runs` are the store's index rows. A stored run of the same network and batch size gives its
    measured throughput; otherwise this machine's arithmetic rate on networks of the same kind
    (convolutional or dense) is measured from the stored runs (multiply-adds x images/s); with no
    run of that kind stored, a deliberately low 2-core rate (CPU_FLOPS) is assumed.
    """
    flops = 3 * forward_flops(config, input_shape)
    same, kind = [], []
    for row in runs:
        try:
            other = RunConfig.from_json(row["config_json"])
        except ConfigError:
            continue
        if row.get("images_per_second", 0) <= 0 or other.has_conv != config.has_conv:
            continue
        if other.describe() == config.describe() and other.batch_size == config.batch_size:
            same.append(row["images_per_second"])
        try:
            kind.append(row["images_per_second"] * 3 * forward_flops(other, input_shape))
        except ConfigError:
            continue
    if same:
        rate = sorted(same)[len(same) // 2]
        basis = f"{rate:,.0f} images/s measured for this network"
    elif kind:
        flop_rate = sorted(kind)[len(kind) // 2]
        rate = flop_rate / max(flops, 1)
        what = "convolutional" if config.has_conv else "dense"
        basis = f"from this machine's {what} runs ({flop_rate / 1e9:.0f} GFLOP/s)"
    else:
        rate = CPU_FLOPS / max(flops, 1)
        basis = "a rough guess until a run finishes here"
    return n_fit * config.epochs / rate, basis
