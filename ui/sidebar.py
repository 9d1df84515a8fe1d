"""The shared sidebar: network and training controls <-> RunConfig <-> URL query parameters.

Every control is made from core.spec.settings' table of settings (SETTINGS, LAYER_SETTINGS), so a
value that validate() accepts is one the widget can show: a link or an "Open" never meets a widget
narrower than the engine. Widget keys are `sb_<field>` and `sb_<conv|dense>_<i>_<field>`.
"""

from __future__ import annotations

import streamlit as st

from core.data.dataset import DatasetUnavailable
from core.data.registry import dataset_names
from core.runtime import BACKEND_LABELS, unavailable_reason
from core.spec.config import LayerSpec, RunConfig
from core.spec.presets import PRESET_NOTES, PRESETS
from core.spec.settings import (
    CONV_FIELDS,
    DENSE_FIELDS,
    LAYER_SETTINGS,
    MAX_CONV_BLOCKS,
    MAX_DENSE_LAYERS,
    SETTINGS,
    ConfigError,
    Setting,
)
from core.spec.validate import validate
from ui.engine import get_dataset
from ui.notes import dataset_label
from ui.session import DEFAULT_DATASET, listed_name

TOP_FIELDS = tuple(name for name in SETTINGS)  # every RunConfig field except layers
SAVED = "sb_saved"  # JSON of the last config, restored when another page dropped the widgets


def _layer_key(kind: str, index: int, name: str) -> str:
    return f"sb_{kind}_{index}_{name}"


def _put(config: RunConfig) -> None:
    """Write a config into the widgets' session-state keys."""
    s = st.session_state
    for name in TOP_FIELDS:
        s[f"sb_{name}"] = getattr(config, name)
    for kind, fields in (("conv", CONV_FIELDS), ("dense", DENSE_FIELDS)):
        layers = [layer for layer in config.layers if layer.kind == kind]
        s[f"sb_n_{kind}"] = len(layers)
        for i, layer in enumerate(layers):
            for name in fields:
                s[_layer_key(kind, i, name)] = getattr(layer, name)


def _get() -> RunConfig:
    """Read the widgets' session-state keys back into a config."""
    s = st.session_state
    default = LayerSpec()
    layers = []
    for kind, fields in (("conv", CONV_FIELDS), ("dense", DENSE_FIELDS)):
        for i in range(s[f"sb_n_{kind}"]):
            values = {
                name: s.get(_layer_key(kind, i, name), getattr(default, name)) for name in fields
            }
            layers.append(LayerSpec(kind=kind, **values))
    return RunConfig(layers=tuple(layers), **{name: s[f"sb_{name}"] for name in TOP_FIELDS})


def load_config(config: RunConfig) -> None:
    """Make the sidebar show `config` the next time it is drawn (used by 'open run')."""
    st.session_state[SAVED] = config.to_json()
    st.session_state.sb_ready = True
    st.session_state.sb_notices = []
    st.session_state.pop("sb_n_dense", None)  # forces a restore from the saved copy


def _apply_preset() -> None:
    # A preset is a network and its training; the images stay the ones the person chose (a
    # network that does not fit them is refused by validate() with its sentence, as always).
    dataset = st.session_state.get("sb_dataset") or DEFAULT_DATASET
    _put(PRESETS[st.session_state.sb_preset].replace(dataset=dataset))


def _config_from_url() -> tuple[RunConfig, list[str]]:
    params = {k: st.query_params[k] for k in st.query_params}
    config, notices = RunConfig.from_params(params, base=PRESETS["seed"])
    listed = listed_name(config.dataset)
    if listed is None:
        notices.append(
            f"Ignored dataset={config.dataset!r}: no such dataset here; using Fashion-MNIST."
        )
    config = config.replace(dataset=listed or DEFAULT_DATASET)
    return config, notices


def _restore() -> None:
    """Fill the widgets: from the saved copy when there is one, else from the URL."""
    saved = st.session_state.get(SAVED)
    config = None
    if saved and st.session_state.get("sb_ready"):
        try:
            config = RunConfig.from_json(saved)
        except ConfigError:
            config = None
    if config is None:
        config, notices = _config_from_url()
        st.session_state.sb_notices = notices
    _put(config)
    st.session_state.sb_ready = True


def _options(setting: Setting, current) -> list:
    """A stepped control's values: the table's stops plus the current value, in order."""
    values = set(setting.stops) | {current}
    if setting.zero_label == "all":  # 0 means "everything": the far end, not the start
        return sorted(values - {0}) + ([0] if 0 in values else [])
    return sorted(values)


def _format(setting: Setting):
    def show(value) -> str:
        if value == 0 and setting.zero_label:
            return setting.zero_label
        if setting.name == "backend":
            reason = unavailable_reason(value)
            return BACKEND_LABELS[value] + (" (not installed)" if reason else "")
        if isinstance(value, float):
            return f"{value:g}"
        return (
            f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)
        )

    return show


def _control(setting: Setting, key: str) -> None:
    """The widget the table's row asks for, bound to session-state key `key`."""
    s = st.session_state
    kw = {"key": key, "help": setting.help or None}
    if setting.type is bool:
        st.checkbox(setting.label, **kw)
    elif setting.choices:
        st.selectbox(setting.label, setting.choices, format_func=_format(setting), **kw)
    elif setting.stops:
        st.select_slider(
            setting.label, _options(setting, s[key]), format_func=_format(setting), **kw
        )
    elif setting.high - setting.low > 10_000:
        st.number_input(setting.label, int(setting.low), int(setting.high), **kw)
    elif setting.type is float:
        st.slider(setting.label, float(setting.low), float(setting.high), step=setting.step, **kw)
    else:
        st.slider(setting.label, int(setting.low), int(setting.high), **kw)


def _layer_controls() -> None:
    s = st.session_state
    st.slider(
        "Convolution blocks",
        0,
        MAX_CONV_BLOCKS,
        key="sb_n_conv",
        help="Conv2D, optionally halving the feature map (2x2 max-pooling or stride 2), "
        "before the dense layers.",
    )
    for i in range(s.sb_n_conv):
        with st.expander(f"Conv block {i + 1}", expanded=False):
            for name in CONV_FIELDS:
                key = _layer_key("conv", i, name)
                s.setdefault(key, getattr(LayerSpec(kind="conv"), name))
                _control(LAYER_SETTINGS[name], key)
    st.slider(
        "Hidden dense layers",
        0,
        MAX_DENSE_LAYERS,
        key="sb_n_dense",
        help="0 leaves a linear classifier: Flatten straight into the outputs.",
    )
    for i in range(s.sb_n_dense):
        with st.expander(f"Dense layer {i + 1}", expanded=i == 0):
            for name in DENSE_FIELDS:
                key = _layer_key("dense", i, name)
                s.setdefault(key, getattr(LayerSpec(), name))
                _control(LAYER_SETTINGS[name], key)
    for name in (
        "conv_padding",
        "conv_downsample",
        "batch_norm",
        "augment_flip",
        "augment_translate",
    ):
        _control(SETTINGS[name], f"sb_{name}")


TRAINING_FIELDS = (
    "optimizer",
    "learning_rate",
    "lr_schedule",
    "batch_size",
    "epochs",
    "validation_split",
    "train_size",
    "early_stopping",
    "weight_decay",
    "seed",
    "backend",
)


def sidebar_config(
    train_available: int | None = None, page: str = "train"
) -> tuple[RunConfig, str | None]:
    """Draw the sidebar; return the config it describes and the reason it is invalid, if any.

    `page` names the page drawing it: each page's widgets are its own to Streamlit, so a page
    entered from another one that drew the sidebar gets its widgets back from the saved copy.
    """
    s = st.session_state
    entered = s.get("sb_page") != page
    s["sb_page"] = page
    if not s.get("sb_ready") or "sb_n_dense" not in s or (entered and s.get(SAVED)):
        # First run; or Streamlit dropped (or handed over reset) the widgets' state on a run that
        # did not draw them here: restore from the plain copy, else from the URL.
        _restore()
    with st.sidebar:
        for notice in st.session_state.get("sb_notices", []):
            st.warning(notice, icon=":material/link_off:")
        names = dataset_names()
        if st.session_state.sb_dataset not in names:  # renamed or deleted since it was chosen
            listed = listed_name(st.session_state.sb_dataset)
            if listed is None:
                st.warning(
                    f"The dataset {st.session_state.sb_dataset!r} is not here any more; "
                    "using Fashion-MNIST.",
                    icon=":material/link_off:",
                )
            st.session_state.sb_dataset = listed or DEFAULT_DATASET
        st.selectbox(
            "Dataset",
            names,
            key="sb_dataset",
            format_func=dataset_label,
            help="The built-in sets and the ones imported on the Data page.",
        )
        st.selectbox(
            "Start from a preset",
            list(PRESETS),
            key="sb_preset",
            index=None,
            placeholder=", ".join(PRESETS) + "…",
            on_change=_apply_preset,
            format_func=lambda k: f"{k}: {PRESET_NOTES[k]}",
        )
        st.subheader("Network")
        _layer_controls()
        st.subheader("Training")
        for name in TRAINING_FIELDS:
            _control(SETTINGS[name], f"sb_{name}")
    config = _get()
    st.session_state[SAVED] = config.to_json()
    error = unavailable_reason(config.backend)
    if error is None:
        try:  # the network is checked against this dataset's image shape and classes
            data = get_dataset(config.dataset)
            validate(
                config,
                train_available=train_available,
                input_shape=data.input_shape,
                num_classes=data.num_classes,
            )
        except (ConfigError, DatasetUnavailable) as exc:
            error = str(exc)
    params = config.to_params()
    if {k: st.query_params.get(k) for k in params} != params:
        st.query_params.from_dict(params)
    return config, error
