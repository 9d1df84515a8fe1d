"""Links reproduce exactly: every setting survives config -> URL -> config and URL -> sidebar ->
URL, a value the widgets cannot show is clamped with a notice naming it, and no link crashes a page.
"""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.spec.config import LayerSpec, RunConfig
from core.spec.settings import (
    ACTIVATIONS,
    CONV_FIELDS,
    DENSE_FIELDS,
    LAYER_SETTINGS,
    MAX_CONV_BLOCKS,
    MAX_DENSE_LAYERS,
    SETTINGS,
    Setting,
)

ROOT = Path(__file__).resolve().parent.parent


def random_value(setting: Setting, rng: random.Random):
    """Any allowed value, deliberately off the sliders' stops and with many digits."""
    if setting.type is bool:
        return rng.random() < 0.5
    if setting.choices:
        return rng.choice(setting.choices)
    if setting.type is int:
        return rng.randint(int(setting.low), int(min(setting.high, 100_000)))
    if setting.log:
        return 10 ** rng.uniform(-6, 0.5)
    return rng.uniform(setting.low, setting.high)


def random_config(rng: random.Random) -> RunConfig:
    layers = []
    for kind, fields, most in (
        ("conv", CONV_FIELDS, MAX_CONV_BLOCKS),
        ("dense", DENSE_FIELDS, MAX_DENSE_LAYERS),
    ):
        for _ in range(rng.randint(0, most)):
            values = {name: random_value(LAYER_SETTINGS[name], rng) for name in fields}
            layers.append(LayerSpec(kind=kind, **values))
    values = {
        name: random_value(setting, rng) for name, setting in SETTINGS.items() if name != "dataset"
    }
    return RunConfig(layers=tuple(layers), **values)


def test_the_table_covers_every_field():
    fields = {f.name for f in dataclasses.fields(RunConfig)} - {"layers"}
    assert set(SETTINGS) == fields
    layer_fields = {f.name for f in dataclasses.fields(LayerSpec)} - {"kind"}
    assert set(LAYER_SETTINGS) == layer_fields == set(CONV_FIELDS) | set(DENSE_FIELDS)


def test_random_configs_round_trip_through_the_url_exactly():
    rng = random.Random(2026)
    for _ in range(500):
        config = random_config(rng)
        back, notices = RunConfig.from_params(config.to_params())
        assert notices == [], config
        assert back == config  # floats bit for bit: repr, not 6 significant digits


def test_float_precision_and_conv_activation_survive():
    config = RunConfig(
        layers=(
            LayerSpec(kind="conv", filters=32, kernel_size=3, activation="tanh", dropout=0.25),
            LayerSpec(units=128),
        ),
        learning_rate=0.0012345678,
    )
    params = config.to_params()
    assert params["learning_rate"] == "0.0012345678"
    assert params["layers"] == "conv:32:3:pool:tanh:0.25,dense:128:relu:0"
    back, notices = RunConfig.from_params(params)
    assert back == config and not notices


@pytest.mark.parametrize(
    "params, field, shown",
    [
        ({"epochs": "900"}, "epochs", 500),
        ({"seed": "-1"}, "seed", 0),
        ({"seed": str(2**40)}, "seed", 2**31 - 1),
        ({"validation_split": "0.95"}, "validation_split", 0.8),
        ({"weight_decay": "0.5"}, "weight_decay", 0.1),
        ({"augment_translate": "0.9"}, "augment_translate", 0.5),
    ],
)
def test_out_of_range_values_are_clamped_with_a_notice(params, field, shown):
    config, notices = RunConfig.from_params(params)
    assert getattr(config, field) == shown
    assert len(notices) == 1
    label = SETTINGS[field].label
    assert label in notices[0] and params[field] in notices[0] and repr(shown) in notices[0]


def test_layers_beyond_the_limits_are_named_not_silently_changed():
    config, notices = RunConfig.from_params({"layers": ",".join(["dense:64:relu:0"] * 12)})
    assert len(config.layers) == MAX_DENSE_LAYERS
    assert any("12 dense layer(s)" in n and "at most" in n for n in notices)
    config, notices = RunConfig.from_params({"layers": "dense:64:relu:0,conv:8:3:pool:elu:0"})
    assert [layer.kind for layer in config.layers] == ["conv", "dense"]
    assert any("moved first" in n for n in notices)
    config, notices = RunConfig.from_params({"layers": "dense:5000:swish:0.95"})
    assert config.layers[0].units == 2048 and config.layers[0].dropout == 0.9
    assert config.layers[0].activation == "relu"
    assert len(notices) == 3 and all(n.startswith("Layer 1:") for n in notices)


# ------------------------------------------------------------------------------ the sidebar
@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("PLAYGROUND_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def train_page(params: dict) -> AppTest:
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=120)
    for key, value in params.items():
        at.query_params[key] = value
    return at.switch_page("pages/train.py").run()


def sidebar_notices(at: AppTest) -> str:
    return " ".join(w.value for w in at.sidebar.warning)


@pytest.mark.parametrize(
    "params",
    [
        {"epochs": "100"},
        {"layers": "dense:5:relu:0"},
        {"layers": "dense:2000:relu:0"},
        {"layers": "dense:128:relu:0.9"},
        {"validation_split": "0.6"},
        {"validation_split": "0.3", "early_stopping": "20"},
        {"augment_translate": "0.4"},
        {"layers": "conv:6:6:nopool:relu:0,conv:3:3:pool:relu:0,dense:64:relu:0"},
        {"weight_decay": "0.002"},
        {"seed": "123456789"},
        {"learning_rate": "0.0012345678"},
        {"layers": "conv:32:3:pool:tanh:0.25,dense:128:relu:0"},
        {"backend": "jax"},
    ],
)
def test_an_in_range_link_is_shown_faithfully(home, full_data, params):
    at = train_page(params)
    assert not at.exception
    assert sidebar_notices(at) == ""
    for key, value in params.items():
        assert at.query_params[key] == value, key  # what the widgets show went back unchanged


@pytest.mark.parametrize(
    "params, field, shown",
    [
        ({"epochs": "900"}, "epochs", "500"),
        ({"seed": "-1"}, "seed", "0"),
        ({"seed": str(2**40)}, "seed", str(2**31 - 1)),
        ({"weight_decay": "0.5"}, "weight_decay", "0.1"),
        ({"dataset": "cifar"}, "dataset", "fashion_mnist"),
        ({"optimizer": "lbfgs"}, "optimizer", "adam"),
    ],
)
def test_an_out_of_range_link_is_clamped_with_a_notice(home, full_data, params, field, shown):
    at = train_page(params)
    assert not at.exception
    notices = sidebar_notices(at)
    assert params[field] in notices
    assert at.query_params[field] == shown


def test_random_links_round_trip_through_the_sidebar(home, full_data):
    rng = random.Random(7)
    for _ in range(4):
        config = random_config(rng).replace(dataset="fashion_mnist")
        at = train_page(config.to_params())
        assert not at.exception
        assert sidebar_notices(at) == ""
        back, _ = RunConfig.from_params(dict(at.query_params.items()))
        assert back == config


@pytest.mark.slow
def test_open_of_a_run_trained_with_100_epochs(home, full_data):
    """Runs -> Open of a stored run whose epochs lie beyond the old 50-epoch slider."""
    from core.learn.training import train
    from core.store import RunStore

    config = RunConfig(layers=(LayerSpec(units=16),), train_size=500, epochs=100, batch_size=500)
    result = train(config, full_data, store=RunStore(home))
    assert result.ok
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=120)
    at.switch_page("pages/runs.py").run()
    at.dataframe[0].proto  # the table is there
    from ui.sidebar import SAVED

    at.session_state[SAVED] = config.to_json()
    at.session_state["sb_ready"] = True
    at.switch_page("pages/train.py").run()
    assert not at.exception
    assert at.select_slider(key="sb_epochs").value == 100
    assert at.query_params["epochs"] == "100"
    assert "Cached" in at.success[0].value


def test_every_activation_is_offered_for_conv_blocks(home, full_data):
    at = train_page({"layers": "conv:8:3:pool:relu:0"})
    assert list(at.selectbox(key="sb_conv_0_activation").options) == list(ACTIVATIONS)
