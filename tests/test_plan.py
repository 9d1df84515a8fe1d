"""The layer plan against the trusted reference, Keras itself: every option combination builds a
model whose layers, shapes, parameter counts and arguments are the plan's."""

from __future__ import annotations

import dataclasses
import itertools
import subprocess
import sys
from pathlib import Path

import pytest

from core.spec.config import LayerSpec, RunConfig
from core.spec.plan import (
    LayerRow,
    Regularizer,
    count_params,
    layer_plan,
    layer_table,
    optimizer_plan,
)
from core.spec.presets import PRESETS
from core.spec.settings import ACTIVATIONS, OPTIMIZERS, ConfigError

ROOT = Path(__file__).resolve().parent.parent


def dense(dropout: float = 0.0, units: int = 12) -> LayerSpec:
    return LayerSpec(kind="dense", units=units, dropout=dropout)


def conv(kernel: int, pool: bool, dropout: float = 0.0, filters: int = 4) -> LayerSpec:
    return LayerSpec(kind="conv", filters=filters, kernel_size=kernel, pool=pool, dropout=dropout)


# (name, layers for a dropout rate, kernel size, pooling): no hidden layer, dense only, conv mixes
MIXES = {
    "none": lambda d, k, p: (),
    "dense": lambda d, k, p: (dense(d),),
    "dense-dense": lambda d, k, p: (dense(d, 16), dense(d, 8)),
    "conv": lambda d, k, p: (conv(k, p, d),),
    "conv-dense": lambda d, k, p: (conv(k, p, d), dense(d)),
    "conv-conv-dense": lambda d, k, p: (conv(k, p, d), conv(k, p, d, 6), dense(d)),
}
CONV_MIXES = {name for name in MIXES if name.startswith("conv")}
# weight decay with each optimizer (adamw's is decoupled, the others' an L2 term), and none at all
DECAYS = [(0.0, "adam")] + [(1e-3, optimizer) for optimizer in OPTIMIZERS]


def option_grid():
    """The full product of every option that changes the network's layers or shapes.

    Kernel size and pooling only vary where there is a convolution. Activation and weight decay
    (with its optimizer) change no shape, so instead of multiplying the grid by 30 they rotate
    through it: 6 and 5 are coprime, so every (activation, decay) pair appears, each many times.
    """
    cases = []
    for mix, batch_norm, flip, translate, dropout, kernel, pool in itertools.product(
        MIXES, (False, True), (False, True), (0.0, 0.1), (0.0, 0.25), (1, 3, 5), (True, False)
    ):
        if mix not in CONV_MIXES and (kernel, pool) != (3, True):
            continue
        index = len(cases)
        weight_decay, optimizer = DECAYS[index % len(DECAYS)]
        config = RunConfig(
            layers=MIXES[mix](dropout, kernel, pool),
            batch_norm=batch_norm,
            augment_flip=flip,
            augment_translate=translate,
            weight_decay=weight_decay,
            optimizer=optimizer,
            # every padding meets every way of halving, with pooling on and off
            conv_padding=("valid", "same")[(index + index // 4) % 2],
            conv_downsample=("maxpool", "stride")[(index // 2) % 2],
        )
        activation = ACTIVATIONS[index % len(ACTIVATIONS)]
        layers = tuple(dataclasses.replace(layer, activation=activation) for layer in config.layers)
        config = config.replace(layers=layers)
        cases.append(pytest.param(config, id=f"{index}-{mix}"))
    return cases


def assert_model_is_the_plan(config: RunConfig, input_shape: tuple[int, ...]) -> None:
    """Layer by layer: the same class, output shape, parameters and constructor arguments."""
    import keras

    from core.learn.model import make_model

    plan = layer_plan(config, input_shape, 10)
    model = make_model(config, input_shape, 10)
    assert [type(layer).__name__ for layer in model.layers] == [p.keras_class for p in plan]
    for layer, planned in zip(model.layers, plan, strict=True):
        assert tuple(layer.output.shape[1:]) == planned.output_shape, planned
        assert layer.count_params() == planned.params, planned
        settings = layer.get_config()
        for name, value in planned.args.items():
            if isinstance(value, Regularizer):
                penalty = getattr(layer, name)
                assert isinstance(penalty, getattr(keras.regularizers, value.kind))
                assert penalty.l2 == pytest.approx(value.factor)
            elif name in ("kernel_size", "pool_size", "strides"):
                assert settings[name] == (value, value)
            else:
                assert settings[name] == value, (planned, name)
        if planned.keras_class in ("Conv2D", "Dense"):
            # no planned activation means a linear layer: logits, or normalised before activating
            assert settings["activation"] == planned.args.get("activation", "linear")
            if "kernel_regularizer" not in planned.args:
                assert layer.kernel_regularizer is None
    assert model.count_params() == count_params(config, input_shape, 10)
    assert sum(p.params for p in plan) == model.count_params()


@pytest.mark.parametrize("config", option_grid())
def test_every_option_combination_builds_the_planned_model(config):
    assert_model_is_the_plan(config, (28, 28))


@pytest.mark.parametrize("activation, decay", list(itertools.product(ACTIVATIONS, DECAYS)), ids=str)
def test_every_activation_with_every_optimizer_compiles_as_planned(activation, decay):
    import keras

    from core.learn.model import build_model

    weight_decay, optimizer = decay
    config = RunConfig(
        layers=(LayerSpec(kind="conv", filters=4, activation=activation), dense(0.1)),
        batch_norm=activation == "tanh",  # both activation placements, with every optimizer
        optimizer=optimizer,
        weight_decay=weight_decay,
        learning_rate=3e-3,
    )
    assert_model_is_the_plan(config, (28, 28))
    model = build_model(config, (28, 28), 10)
    planned = optimizer_plan(config)
    assert type(model.optimizer).__name__ == planned.keras_class
    for name, value in planned.args.items():
        actual = getattr(model.optimizer, name)
        assert float(keras.ops.convert_to_numpy(actual)) == pytest.approx(value), name
    if optimizer == "adamw":
        assert planned.args["weight_decay"] == weight_decay  # never Keras's default of 0.004


@pytest.mark.parametrize(
    "config, input_shape",
    [
        (
            RunConfig(layers=(conv(3, True, 0.1, 8), dense()), batch_norm=True, augment_flip=True),
            (32, 32, 3),
        ),
        (RunConfig(layers=(dense(),), augment_translate=0.1), (32, 32, 3)),
        (RunConfig(layers=(dense(),)), (32, 32, 3)),
        (RunConfig(layers=(dense(),), augment_flip=True), (28, 28)),
    ],
    ids=["colour-conv", "colour-dense-augmented", "colour-dense", "grey-dense-augmented"],
)
def test_colour_and_grey_inputs(config, input_shape):
    assert_model_is_the_plan(config, input_shape)
    plan = layer_plan(config, input_shape, 10)
    # only grey images get a channel axis added, and only when a layer needs one
    assert (plan[0].keras_class == "Reshape") == (len(input_shape) == 2)
    if config.has_conv:
        first = next(p for p in plan if p.keras_class == "Conv2D")
        assert first.params == 3 * 3 * 3 * 8 + 8  # 3 colour channels into 8 filters


@pytest.mark.parametrize(
    "layers, input_shape, sentence",
    [
        (
            (dense(), conv(3, True)),
            (28, 28),
            "Layer 2 is a convolution after a dense layer. Put all convolution blocks before the "
            "dense layers.",
        ),
        (
            (conv(3, True), conv(3, True), conv(3, True), conv(2, True)),
            (28, 28),
            "Layer 4: the 2x2 kernel is larger than its 1x1 input feature map. Use a smaller "
            "kernel or fewer pooling steps before it.",
        ),
        (
            (conv(9, True), conv(9, True), conv(1, True)),
            (28, 28),
            "Layer 3: the feature map is already 1x1, too small to pool again. Turn off pooling "
            "or remove a convolution block.",
        ),
        (
            (conv(5, False),),
            (4, 6, 3),
            "Layer 1: the 5x5 kernel is larger than its 4x6 input feature map. Use a smaller "
            "kernel or fewer pooling steps before it.",
        ),
        (
            (dense(),),
            (784,),
            "Images must be height x width (grey) or height x width x channels (colour); this "
            "data has shape (784,).",
        ),
    ],
    ids=["conv-after-dense", "kernel-too-large", "pool-too-small", "colour-too-small", "flat"],
)
def test_impossible_shapes_raise_a_sentence(layers, input_shape, sentence):
    with pytest.raises(ConfigError) as info:
        layer_plan(RunConfig(layers=layers), input_shape, 10)
    assert str(info.value) == sentence


def test_layer_table_rows():
    assert layer_table(PRESETS["seed"]) == [
        LayerRow("Flatten", (784,), 0),
        LayerRow("Dense", (128,), 100_480),
        LayerRow("Dense (output logits)", (10,), 1_290),
    ]
    assert count_params(PRESETS["seed"]) == 101_770  # the tutorial's model.summary() total
    rows = layer_table(RunConfig(layers=(conv(3, True),), batch_norm=True, augment_flip=True))
    assert rows == [
        LayerRow("Reshape", (28, 28, 1), 0),
        LayerRow("RandomFlip", (28, 28, 1), 0),
        LayerRow("Conv2D 3x3", (26, 26, 4), 40),
        LayerRow("BatchNormalization", (26, 26, 4), 16),  # 2 trained + 2 moving statistics
        LayerRow("Activation (relu)", (26, 26, 4), 0),
        LayerRow("MaxPooling2D", (13, 13, 4), 0),
        LayerRow("Flatten", (676,), 0),
        LayerRow("Dense (output logits)", (10,), 6_770),
    ]


def test_plan_needs_no_tensorflow():
    code = (
        "import sys, core.spec.plan; from core.spec.presets import PRESETS; "
        "core.spec.plan.layer_plan(PRESETS['best'], (28, 28), 10); "
        "loaded = sorted({'tensorflow', 'keras', 'jax', 'torch'} & set(sys.modules)); "
        "assert not loaded, loaded"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


def test_same_padding_keeps_the_size_and_valid_trims_it():
    conv = LayerSpec(kind="conv", filters=4, kernel_size=5, pool=False)
    config = RunConfig(layers=(conv, dataclasses.replace(conv, pool=True)))
    shapes = {
        padding: [
            p.output_shape
            for p in layer_plan(config.replace(conv_padding=padding), (28, 28), 10)
            if p.keras_class in ("Conv2D", "MaxPooling2D")
        ]
        for padding in ("valid", "same")
    }
    assert shapes["valid"] == [(24, 24, 4), (20, 20, 4), (10, 10, 4)]
    assert shapes["same"] == [(28, 28, 4), (28, 28, 4), (14, 14, 4)]
    assert_model_is_the_plan(config.replace(conv_padding="same"), (28, 28))


def test_a_strided_block_halves_in_the_convolution_and_has_no_pooling_layer():
    blocks = (conv(3, True), conv(3, False), conv(5, True))
    config = RunConfig(layers=(*blocks, dense()), conv_downsample="stride")
    for padding, shapes in (
        ("same", [(14, 14, 4), (14, 14, 4), (7, 7, 4)]),  # ceil(n / 2)
        ("valid", [(13, 13, 4), (11, 11, 4), (4, 4, 4)]),  # (n - k) // 2 + 1
    ):
        plan = layer_plan(config.replace(conv_padding=padding), (28, 28), 10)
        convs = [p for p in plan if p.keras_class == "Conv2D"]
        assert [p.output_shape for p in convs] == shapes
        assert [p.args.get("strides", 1) for p in convs] == [2, 1, 2]  # only where pool is on
        assert [p.name for p in convs] == [
            "Conv2D 3x3 stride 2",
            "Conv2D 3x3",
            "Conv2D 5x5 stride 2",
        ]
        assert "MaxPooling2D" not in [p.keras_class for p in plan]
        assert_model_is_the_plan(config.replace(conv_padding=padding), (28, 28))
    assert (
        config.describe()
        == "Conv3x3(4)/stride2 → Conv3x3(4) → Conv5x5(4)/stride2 → Dense(12, relu)"
    )
    # the same blocks with max-pooling: a pooling layer after each block that halves
    pooled = layer_plan(
        config.replace(conv_downsample="maxpool", conv_padding="same"), (28, 28), 10
    )
    assert [p.keras_class for p in pooled].count("MaxPooling2D") == 2


def test_a_field_added_later_keeps_earlier_run_ids():
    """conv_padding came after CONFIG_VERSION 2: at its default the id is what it was before.

    The two ids were computed by the code before the field existed."""
    assert PRESETS["seed"].run_id_for("x") == "46c2600d4b71"
    valid = PRESETS["best"].replace(conv_padding="valid")
    assert valid.run_id_for("x") == "b88c7fc8f4ea"
    assert valid.replace(conv_padding="same").run_id_for("x") != "b88c7fc8f4ea"
    # lr_schedule came later still: constant (what every earlier run did) keeps the ids too
    assert PRESETS["seed"].replace(lr_schedule="constant").run_id_for("x") == "46c2600d4b71"
    assert PRESETS["seed"].replace(lr_schedule="cosine").run_id_for("x") != "46c2600d4b71"
    # and conv_downsample after that: max-pooling, the only way before it, keeps them
    assert valid.replace(conv_downsample="maxpool").run_id_for("x") == "b88c7fc8f4ea"
    assert valid.replace(conv_downsample="stride").run_id_for("x") != "b88c7fc8f4ea"


def test_a_cosine_schedule_starts_at_the_rate_and_ends_at_zero_on_the_last_batch():
    import keras
    import numpy as np

    from core.learn.model import build_model

    config = RunConfig(layers=(dense(0),), learning_rate=4e-3, lr_schedule="cosine", epochs=3)
    x = np.random.default_rng(0).random((200, 28, 28), dtype=np.float32)
    y = np.arange(200) % 10
    steps = 7  # ceil(200 / 32)
    model = build_model(config, (28, 28), 10, steps_per_epoch=steps)

    def rate() -> float:
        return float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))

    assert rate() == pytest.approx(4e-3)
    model.fit(x, y, batch_size=config.batch_size, epochs=1, verbose=0)
    # after a third of the run: 4e-3 * (1 + cos(pi / 3)) / 2
    assert rate() == pytest.approx(3e-3, rel=1e-3)
    model.fit(x, y, batch_size=config.batch_size, epochs=2, verbose=0)
    assert rate() == pytest.approx(0.0, abs=1e-9)
    assert optimizer_plan(config).args["learning_rate"].decay_steps is None  # export counts them
    assert optimizer_plan(config, steps).args["learning_rate"].decay_steps == 3 * steps
