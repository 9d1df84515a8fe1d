"""The shared sidebar: network and training controls <-> RunConfig <-> URL query parameters.

Widget keys start with `sb_`.
"""

from __future__ import annotations

import streamlit as st

from core.config import (
    ACTIVATIONS,
    OPTIMIZERS,
    PRESET_NOTES,
    PRESETS,
    ConfigError,
    LayerSpec,
    RunConfig,
    validate,
)
from core.datasets import DATASETS

LEARNING_RATES = [1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 2e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0]
BATCH_SIZES = [8, 16, 32, 64, 128, 256, 512, 1024]
TRAIN_SIZES = [1000, 2000, 5000, 10000, 20000, 30000, 0]  # 0 = all
MAX_DENSE, MAX_CONV = 8, 3


def _put(config: RunConfig) -> None:
    """Write a config into the widgets' session-state keys."""
    s = st.session_state
    s.sb_dataset = config.dataset
    dense = [layer for layer in config.layers if layer.kind == "dense"]
    conv = [layer for layer in config.layers if layer.kind == "conv"]
    s.sb_n_dense, s.sb_n_conv = len(dense), len(conv)
    for i, layer in enumerate(dense):
        s[f"sb_units_{i}"] = layer.units
        s[f"sb_act_{i}"] = layer.activation
        s[f"sb_drop_{i}"] = layer.dropout
    for i, layer in enumerate(conv):
        s[f"sb_filters_{i}"] = layer.filters
        s[f"sb_kernel_{i}"] = layer.kernel_size
        s[f"sb_pool_{i}"] = layer.pool
    s.sb_batch_norm = config.batch_norm
    s.sb_flip = config.augment_flip
    s.sb_translate = config.augment_translate
    s.sb_optimizer = config.optimizer
    s.sb_lr = config.learning_rate
    s.sb_batch = config.batch_size
    s.sb_epochs = config.epochs
    s.sb_val = config.validation_split
    s.sb_train_size = config.train_size
    s.sb_early = config.early_stopping
    s.sb_decay = config.weight_decay
    s.sb_seed = config.seed


def _get() -> RunConfig:
    """Read the widgets' session-state keys back into a config."""
    s = st.session_state
    conv = tuple(
        LayerSpec(
            kind="conv",
            filters=s.get(f"sb_filters_{i}", 32),
            kernel_size=s.get(f"sb_kernel_{i}", 3),
            pool=s.get(f"sb_pool_{i}", True),
        )
        for i in range(s.sb_n_conv)
    )
    dense = tuple(
        LayerSpec(
            units=s.get(f"sb_units_{i}", 128),
            activation=s.get(f"sb_act_{i}", "relu"),
            dropout=s.get(f"sb_drop_{i}", 0.0),
        )
        for i in range(s.sb_n_dense)
    )
    return RunConfig(
        dataset=s.sb_dataset,
        train_size=s.sb_train_size,
        validation_split=s.sb_val,
        layers=conv + dense,
        batch_norm=s.sb_batch_norm,
        augment_flip=s.sb_flip,
        augment_translate=s.sb_translate,
        optimizer=s.sb_optimizer,
        learning_rate=s.sb_lr,
        batch_size=s.sb_batch,
        epochs=s.sb_epochs,
        weight_decay=s.sb_decay,
        early_stopping=s.sb_early,
        seed=s.sb_seed,
    )


def _supported(config: RunConfig) -> RunConfig:
    """Fit a config parsed from a URL into what the sidebar can show (convs first, limits)."""
    conv = [layer for layer in config.layers if layer.kind == "conv"][:MAX_CONV]
    dense = [layer for layer in config.layers if layer.kind == "dense"][:MAX_DENSE]
    return config.replace(layers=tuple(conv + dense))


def load_config(config: RunConfig) -> None:
    """Make the sidebar show `config` the next time it is drawn (used by 'open run')."""
    st.session_state.sb_saved = config.to_json()
    st.session_state.sb_ready = True
    st.session_state.pop("sb_n_dense", None)  # forces a restore from sb_saved


def _apply_preset() -> None:
    _put(PRESETS[st.session_state.sb_preset])


def _init_from_url() -> None:
    params = {k: st.query_params[k] for k in st.query_params}
    config, notices = (
        RunConfig.from_params(params, base=PRESETS["seed"])
        if params
        else (
            PRESETS["seed"],
            [],
        )
    )
    try:
        validate(config)
    except ConfigError as exc:
        notices.append(f"The link's settings are impossible ({exc}) Using the seed preset.")
        config = PRESETS["seed"]
    if _supported(config) != config:
        notices.append("The link's layer order was adjusted: convolution blocks come first.")
    _put(_supported(config))
    st.session_state.sb_notices = notices
    st.session_state.sb_ready = True


def _layer_controls() -> None:
    s = st.session_state
    st.slider(
        "Convolution blocks",
        0,
        MAX_CONV,
        key="sb_n_conv",
        help="Conv2D (valid padding) + optional 2x2 max-pooling, before the dense layers.",
    )
    for i in range(s.sb_n_conv):
        with st.expander(f"Conv block {i + 1}", expanded=False):
            s.setdefault(f"sb_filters_{i}", 32)
            s.setdefault(f"sb_kernel_{i}", 3)
            s.setdefault(f"sb_pool_{i}", True)
            st.select_slider("Filters", [4, 8, 16, 32, 64, 128], key=f"sb_filters_{i}")
            st.select_slider("Kernel size", [1, 2, 3, 4, 5, 7, 9], key=f"sb_kernel_{i}")
            st.checkbox("2x2 max-pooling", key=f"sb_pool_{i}")
    st.slider(
        "Hidden dense layers",
        0,
        MAX_DENSE,
        key="sb_n_dense",
        help="0 leaves a linear classifier: Flatten straight into the 10 outputs.",
    )
    for i in range(s.sb_n_dense):
        with st.expander(f"Dense layer {i + 1}", expanded=i == 0):
            s.setdefault(f"sb_units_{i}", 128)
            s.setdefault(f"sb_act_{i}", "relu")
            s.setdefault(f"sb_drop_{i}", 0.0)
            st.slider("Units", 8, 1024, step=8, key=f"sb_units_{i}")
            st.selectbox("Activation", ACTIVATIONS, key=f"sb_act_{i}")
            st.slider("Dropout", 0.0, 0.8, step=0.05, key=f"sb_drop_{i}")
    st.checkbox("Batch normalisation", key="sb_batch_norm")
    st.checkbox("Augment: random horizontal flip", key="sb_flip")
    st.slider("Augment: random shift (fraction)", 0.0, 0.3, step=0.05, key="sb_translate")


def _training_controls() -> None:
    s = st.session_state
    st.selectbox(
        "Optimizer",
        OPTIMIZERS,
        key="sb_optimizer",
        help="sgd uses momentum 0.9; adamw decays weights separately from the gradient.",
    )
    # a value from a link may lie between the steps: offer it too (local copies, never shared)
    learning_rates = sorted({*LEARNING_RATES, s.sb_lr})
    st.select_slider(
        "Learning rate (log scale)", learning_rates, key="sb_lr", format_func=lambda v: f"{v:g}"
    )
    st.select_slider("Batch size", sorted({*BATCH_SIZES, s.sb_batch}), key="sb_batch")
    st.slider("Epochs", 1, 50, key="sb_epochs")
    st.slider(
        "Validation split",
        0.0,
        0.5,
        step=0.05,
        key="sb_val",
        help="Held out from training to draw the validation curves.",
    )
    sizes = sorted({*TRAIN_SIZES, s.sb_train_size} - {0}) + [0]
    st.select_slider(
        "Training images",
        sizes,
        key="sb_train_size",
        format_func=lambda v: "all" if v == 0 else f"{v:,}",
    )
    st.slider("Early stopping patience (0 = off)", 0, 10, key="sb_early")
    st.select_slider(
        "L2 weight decay",
        [0.0, 1e-5, 1e-4, 1e-3, 1e-2],
        key="sb_decay",
        format_func=lambda v: f"{v:g}",
    )
    st.number_input("Random seed", 0, 2**31 - 1, key="sb_seed")


def sidebar_config(train_available: int | None = None) -> tuple[RunConfig, str | None]:
    """Draw the sidebar; return the config it describes and the reason it is invalid, if any."""
    if not st.session_state.get("sb_ready"):
        _init_from_url()
    elif "sb_n_dense" not in st.session_state:
        # Streamlit drops a widget's state on runs that do not draw it (another page was shown):
        # restore the sidebar from the plain copy kept below.
        _put(_supported(RunConfig.from_json(st.session_state.sb_saved)))
    with st.sidebar:
        for notice in st.session_state.get("sb_notices", []):
            st.warning(notice, icon=":material/link_off:")
        st.selectbox(
            "Dataset", list(DATASETS), key="sb_dataset", format_func=lambda k: DATASETS[k].title
        )
        st.selectbox(
            "Start from a preset",
            list(PRESETS),
            key="sb_preset",
            index=None,
            placeholder="seed, fast or cnn…",
            on_change=_apply_preset,
            format_func=lambda k: f"{k}: {PRESET_NOTES[k]}",
        )
        st.subheader("Network")
        _layer_controls()
        st.subheader("Training")
        _training_controls()
    config = _get()
    st.session_state.sb_saved = config.to_json()
    error = None
    try:
        validate(config, train_available=train_available)
    except ConfigError as exc:
        error = str(exc)
    params = config.to_params()
    if {k: st.query_params.get(k) for k in params} != params:
        st.query_params.from_dict(params)
    return config, error
