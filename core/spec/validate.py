"""validate(config, data shape): the first impossible setting, as a sentence, before training.

Ranges and choices come from the table of settings; the data's part (how many images, their
shape, how many classes) is given by the caller, who has the data: nothing here looks a dataset
up, so a worker that received the data with the job validates it as the server does.
"""

from __future__ import annotations

import math

from core.spec.config import RunConfig
from core.spec.plan import count_params
from core.spec.settings import (
    LAYER_KINDS,
    LAYER_SETTINGS,
    MAX_CONV_BLOCKS,
    MAX_DENSE_LAYERS,
    MAX_PARAMS,
    OPTIMIZERS,
    SETTINGS,
    ConfigError,
)


def validate(
    config: RunConfig,
    *,
    train_available: int | None = None,
    input_shape: tuple[int, ...] = (28, 28),
    num_classes: int = 10,
    max_params: int = MAX_PARAMS,
) -> None:
    """Raise ConfigError with a sentence for the first impossible setting found.

    train_available: how many training images the dataset holds (to check subset and batch size).
    Ranges and choices come from SETTINGS / LAYER_SETTINGS, the same table the widgets use. The
    dataset's name is not looked up here: whoever loads the data says when it does not exist.
    """
    conv = [layer for layer in config.layers if layer.kind == "conv"]
    dense = [layer for layer in config.layers if layer.kind == "dense"]
    if len(dense) > MAX_DENSE_LAYERS:
        raise ConfigError(f"{len(dense)} dense layers is too many; use at most {MAX_DENSE_LAYERS}.")
    if len(conv) > MAX_CONV_BLOCKS:
        raise ConfigError(
            f"{len(conv)} convolution blocks is too many; use at most {MAX_CONV_BLOCKS}."
        )
    for index, layer in enumerate(config.layers, start=1):
        if layer.kind not in LAYER_KINDS:
            raise ConfigError(f"Layer {index}: unknown kind '{layer.kind}' (dense or conv).")
        if layer.kind == "dense" and layer.units < 1:
            raise ConfigError(f"Layer {index} (Dense) needs at least 1 unit; it has {layer.units}.")
        if layer.kind == "conv" and layer.filters < 1:
            raise ConfigError(
                f"Layer {index} (Conv2D) needs at least 1 filter; it has {layer.filters}."
            )
        if not 0.0 <= layer.dropout <= LAYER_SETTINGS["dropout"].high:
            raise ConfigError(
                f"Layer {index}: dropout must be between 0 and "
                f"{LAYER_SETTINGS['dropout'].high:g} (it is {layer.dropout:g}); "
                "a dropout of 1 would switch the layer off."
            )
        for name in layer.fields:
            problem = LAYER_SETTINGS[name].problem(getattr(layer, name))
            if problem:
                raise ConfigError(f"Layer {index}: {problem}")
    if config.optimizer not in OPTIMIZERS:
        raise ConfigError(
            f"Unknown optimizer '{config.optimizer}'. Choose one of: {', '.join(OPTIMIZERS)}."
        )
    if not (config.learning_rate > 0 and math.isfinite(config.learning_rate)):
        raise ConfigError(
            f"The learning rate must be greater than 0 (it is {config.learning_rate:g}); try 0.001."
        )
    if config.epochs < 1:
        raise ConfigError(f"Train for at least 1 epoch (asked for {config.epochs}).")
    if config.early_stopping and config.validation_split == 0:
        raise ConfigError(
            "Early stopping watches the validation loss: set a validation split above 0 "
            "or turn early stopping off."
        )
    for name, setting in SETTINGS.items():
        if name == "dataset":
            continue
        problem = setting.problem(getattr(config, name))
        if problem:
            raise ConfigError(problem)
    if train_available is not None:
        if config.train_size > train_available:
            raise ConfigError(
                f"The training subset asks for {config.train_size:,} images but the dataset has "
                f"{train_available:,}."
            )
        n_fit = fit_size(config, train_available)
        if n_fit < 1:
            raise ConfigError("The validation split leaves no images to train on.")
        if config.batch_size > n_fit:
            raise ConfigError(
                f"The batch size ({config.batch_size:,}) is larger than the training set "
                f"({n_fit:,} images after the validation split). Lower the batch size or use "
                "more training images."
            )
    params = count_params(config, input_shape, num_classes)  # raises for impossible shapes
    if params > max_params:
        raise ConfigError(
            f"This network has {params:,} parameters, more than the cap of {max_params:,}. "
            "Use fewer units or filters, or more pooling."
        )


def fit_size(config: RunConfig, train_available: int) -> int:
    """How many images model.fit trains on after the subset and the validation split."""
    n = min(config.train_size or train_available, train_available)
    return n - int(round(n * config.validation_split))
