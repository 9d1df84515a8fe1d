"""Build the Keras 3 model a RunConfig describes (keras-io style: one make_model function)."""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter quiet

import keras  # noqa: E402

from core.config import RunConfig  # noqa: E402


def make_model(config: RunConfig, input_shape: tuple[int, ...], num_classes: int) -> keras.Model:
    """Input -> [augmentation] -> hidden layers -> Dense(num_classes) logits.

    The layer sequence mirrors core.config.layer_table, which counts parameters without Keras.
    """
    regularizer = (
        keras.regularizers.L2(config.weight_decay)
        if config.weight_decay and config.optimizer != "adamw"
        else None
    )
    layers: list = [keras.Input(shape=input_shape)]
    spatial = any(layer.kind == "conv" for layer in config.layers) or (
        config.augment_flip or config.augment_translate > 0
    )
    if spatial and len(input_shape) == 2:
        layers.append(keras.layers.Reshape((*input_shape, 1)))
    if config.augment_flip:
        layers.append(keras.layers.RandomFlip("horizontal"))
    if config.augment_translate > 0:
        f = config.augment_translate
        layers.append(keras.layers.RandomTranslation(f, f, fill_mode="constant"))
    flat = False
    for spec in config.layers:
        # With batch norm the activation comes after normalisation, so the layer itself is linear.
        activation = None if config.batch_norm else spec.activation
        if spec.kind == "conv":
            layers.append(
                keras.layers.Conv2D(
                    spec.filters,
                    spec.kernel_size,
                    padding="valid",
                    activation=activation,
                    kernel_regularizer=regularizer,
                )
            )
        else:
            if not flat:
                layers.append(keras.layers.Flatten())
                flat = True
            layers.append(
                keras.layers.Dense(
                    spec.units, activation=activation, kernel_regularizer=regularizer
                )
            )
        if config.batch_norm:
            layers.append(keras.layers.BatchNormalization())
            layers.append(keras.layers.Activation(spec.activation))
        if spec.kind == "conv" and spec.pool:
            layers.append(keras.layers.MaxPooling2D())
        if spec.dropout:
            layers.append(keras.layers.Dropout(spec.dropout))
    if not flat:
        layers.append(keras.layers.Flatten())
    layers.append(keras.layers.Dense(num_classes, kernel_regularizer=regularizer))
    return keras.Sequential(layers, name="playground")


def make_optimizer(config: RunConfig) -> keras.optimizers.Optimizer:
    lr = config.learning_rate
    if config.optimizer == "sgd":
        return keras.optimizers.SGD(lr, momentum=0.9)
    if config.optimizer == "rmsprop":
        return keras.optimizers.RMSprop(lr)
    if config.optimizer == "adamw":
        return keras.optimizers.AdamW(lr, weight_decay=config.weight_decay)
    return keras.optimizers.Adam(lr)


def build_model(
    config: RunConfig,
    input_shape: tuple[int, ...],
    num_classes: int,
    steps_per_execution: int = 1,
) -> keras.Model:
    """The compiled model, exactly as the tutorial compiles it (logits + from_logits loss).

    steps_per_execution: training steps per call into the backend (same arithmetic, fewer
    Python round trips; see core.training).
    """
    model = make_model(config, input_shape, num_classes)
    model.compile(
        optimizer=make_optimizer(config),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        steps_per_execution=steps_per_execution,
    )
    return model
