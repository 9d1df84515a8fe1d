"""RunConfig: validation sentences, run-id stability, JSON and query-parameter round trips,
and arithmetic parameter counts checked against Keras itself."""

from __future__ import annotations

import subprocess
import sys

import pytest

from core.spec.config import LayerSpec, RunConfig
from core.spec.plan import count_params, layer_table
from core.spec.presets import PRESETS
from core.spec.settings import ConfigError
from core.spec.validate import validate

CONV = LayerSpec(kind="conv", filters=8, kernel_size=3)


@pytest.mark.parametrize(
    "config, fragment",
    [
        (RunConfig(layers=(LayerSpec(units=0),)), "needs at least 1 unit"),
        (RunConfig(layers=(LayerSpec(kind="conv", kernel_size=29),)), "at most 9 (it is 29)"),
        (
            RunConfig(layers=(CONV, CONV, CONV, LayerSpec(kind="conv", kernel_size=2))),
            "larger than its 1x1 input",
        ),
        (
            RunConfig(layers=(CONV, CONV, LayerSpec(kind="conv", kernel_size=7))),
            "larger than its 5x5 input",
        ),
        (RunConfig(learning_rate=0.0), "learning rate must be greater than 0"),
        (RunConfig(learning_rate=-0.1), "learning rate must be greater than 0"),
        (RunConfig(batch_size=70_000), "Batch size must be at most 8,192"),
        (RunConfig(train_size=500, batch_size=600), "larger than the training set"),
        (RunConfig(layers=(LayerSpec(units=1024),) * 20), "too many"),
        (
            RunConfig(layers=(LayerSpec(units=2048),) * 6),
            "more than the cap of 20,000,000",
        ),
        (RunConfig(layers=(LayerSpec(units=64), CONV)), "convolution after a dense layer"),
        (RunConfig(layers=(LayerSpec(dropout=1.0),)), "dropout"),
        (RunConfig(epochs=0), "at least 1 epoch"),
        (RunConfig(early_stopping=3), "validation split above 0"),
        (RunConfig(optimizer="lbfgs"), "Unknown optimizer"),
        (RunConfig(train_size=70_000), "dataset has 60,000"),
    ],
)
def test_impossible_values_get_a_sentence(config, fragment):
    with pytest.raises(ConfigError) as info:
        validate(config, train_available=60_000)
    message = str(info.value)
    assert fragment in message
    assert message.endswith(".") and "Traceback" not in message


def test_presets_are_valid():
    for name, config in PRESETS.items():
        validate(config, train_available=60_000)
    seed = PRESETS["seed"]
    assert seed.layers == (LayerSpec(kind="dense", units=128, activation="relu", dropout=0.0),)
    assert (seed.optimizer, seed.epochs, seed.batch_size, seed.validation_split) == (
        "adam",
        10,
        32,
        0.0,
    )
    assert count_params(seed) == 101_770  # the tutorial's model.summary() total


def test_run_id_is_stable_and_content_based():
    config = PRESETS["cnn"]
    data = "0123456789abcdef"

    def rid(c):
        return c.run_id_for(data)

    assert rid(config) == rid(RunConfig.from_json(config.to_json()))
    assert rid(config) == rid(config.replace())
    assert rid(config) != rid(config.replace(epochs=config.epochs + 1))
    assert rid(config) != rid(config.replace(learning_rate=config.learning_rate * 2))
    assert rid(config) != config.run_id_for("fedcba9876543210")  # other data, other run
    # the same id from a fresh interpreter with a different hash seed
    code = (
        "from core.spec.presets import PRESETS; "
        "print(PRESETS['cnn'].run_id_for('0123456789abcdef'))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "123", "PATH": ""},
        cwd=str(__import__("pathlib").Path(__file__).resolve().parent.parent),
    ).stdout.strip()
    assert out == rid(config)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_query_parameter_round_trip(name):
    config = PRESETS[name].replace(augment_flip=True, augment_translate=0.1, validation_split=0.2)
    params = config.to_params()
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in params.items())
    back, notices = RunConfig.from_params(params)
    assert notices == []
    assert back == config and back.to_json() == config.to_json()


def test_bad_query_parameters_fall_back_with_a_notice():
    params = RunConfig().to_params()
    params.update(epochs="many", learning_rate="nan", layers="dense:abc", bogus="1")
    config, notices = RunConfig.from_params(params)
    assert config == RunConfig()
    assert len(notices) == 4
    assert any("epochs='many'" in n and "using 10" in n for n in notices)
    assert any("unknown setting 'bogus'" in n for n in notices)


def test_layer_table_matches_keras():
    import keras

    from core.learn.model import make_model

    configs = [
        PRESETS["seed"],
        PRESETS["fast"],
        PRESETS["cnn"],
        RunConfig(
            layers=(
                LayerSpec(kind="conv", filters=6, kernel_size=5, pool=False, dropout=0.1),
                LayerSpec(kind="conv", filters=4, kernel_size=3),
                LayerSpec(units=20, activation="tanh", dropout=0.2),
                LayerSpec(units=10, activation="gelu"),
            ),
            batch_norm=True,
            augment_flip=True,
            augment_translate=0.1,
            weight_decay=1e-4,
        ),
        RunConfig(layers=()),
    ]
    for config in configs:
        model = make_model(config, (28, 28), 10)
        rows = layer_table(config)
        assert count_params(config) == model.count_params(), config.describe()
        assert rows[-1].output_shape == tuple(model.output_shape[1:])
        assert isinstance(model, keras.Model)
