"""The layer plan: one walk over a RunConfig, shared by the model, the export and the layer table.

layer_plan() turns a config and the data's shape into the exact Keras layers, in order, each with
its constructor arguments as plain Python values, its output shape and its parameter count.
core.learn.model builds from it, core.show.export writes it out, and layer_table() shows it; so
the network is described once and the three cannot drift apart. Pure arithmetic: no TensorFlow,
no Keras.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from core.spec.config import RunConfig
from core.spec.settings import ConfigError


@dataclass(frozen=True)
class LayerRow:
    name: str
    output_shape: tuple[int, ...]
    params: int


POOL_SIZE = 2  # every pooling step halves the feature map (floor), as MaxPooling2D's default does


@dataclass(frozen=True)
class Regularizer:
    """A weight penalty as plain data: keras.regularizers.<kind>(factor) builds it."""

    kind: str  # a keras.regularizers class name, e.g. "L2"
    factor: float


@dataclass(frozen=True)
class PlannedLayer:
    """One Keras layer: keras.layers.<keras_class>(**args), and what it does to the shape."""

    keras_class: str  # e.g. "Conv2D"
    # keyword arguments as plain values (str, int, float, tuples, Regularizer); a dict is not
    # hashable, so it stays out of the hash but still counts for equality
    args: dict = field(hash=False)
    name: str  # the layer table's row, e.g. "Conv2D 3x3", "Dense (output logits)"
    output_shape: tuple[int, ...]  # without the batch axis
    params: int  # trainable and non-trainable weights, as Keras's count_params() counts them


@dataclass(frozen=True)
class PlannedOptimizer:
    """keras.optimizers.<keras_class>(**args)."""

    keras_class: str
    args: dict = field(hash=False)


def is_spatial(config: RunConfig) -> bool:
    """Whether the network needs images with a channel axis: convolutions and augmentation do."""
    return config.has_conv or config.augment_flip or config.augment_translate > 0


def kernel_regularizer(config: RunConfig) -> Regularizer | None:
    # AdamW decays the weights in its own update, so an L2 loss term on top would decay twice.
    if config.weight_decay and config.optimizer != "adamw":
        return Regularizer("L2", config.weight_decay)
    return None


@dataclass(frozen=True)
class Schedule:
    """keras.optimizers.schedules.<kind>(initial, decay_steps): a learning rate that changes.

    decay_steps is None where the number of steps is not known yet (the exported script works it
    out from its data and epochs)."""

    kind: str
    initial: float
    decay_steps: int | None = None


def optimizer_plan(config: RunConfig, steps_per_epoch: int | None = None) -> PlannedOptimizer:
    """The optimizer training uses: sgd with momentum 0.9, adamw with decoupled weight decay.

    steps_per_epoch: batches per epoch, which a cosine schedule needs to end at 0 on the last one.
    """
    rate: float | Schedule = config.learning_rate
    if config.lr_schedule == "cosine":
        total = config.epochs * steps_per_epoch if steps_per_epoch else None
        rate = Schedule("CosineDecay", config.learning_rate, total)
    if config.optimizer == "sgd":
        return PlannedOptimizer("SGD", {"learning_rate": rate, "momentum": 0.9})
    if config.optimizer == "rmsprop":
        return PlannedOptimizer("RMSprop", {"learning_rate": rate})
    if config.optimizer == "adamw":
        # explicit even when 0: Keras's AdamW otherwise decays by 0.004
        args = {"learning_rate": rate, "weight_decay": config.weight_decay}
        return PlannedOptimizer("AdamW", args)
    return PlannedOptimizer("Adam", {"learning_rate": rate})


def layer_plan(
    config: RunConfig, input_shape: tuple[int, ...], num_classes: int
) -> list[PlannedLayer]:
    """Input -> [reshape, augmentation] -> hidden layers -> Dense(num_classes) logits.

    input_shape is (height, width) for grey images or (height, width, channels) for colour.
    Raises ConfigError, with a sentence, where a shape becomes impossible.
    """
    shape = tuple(int(d) for d in input_shape)
    if len(shape) not in (2, 3) or min(shape) < 1:
        raise ConfigError(
            f"Images must be height x width (grey) or height x width x channels (colour); "
            f"this data has shape {shape}."
        )
    regularizer = kernel_regularizer(config)
    weights = {"kernel_regularizer": regularizer} if regularizer else {}
    plan: list[PlannedLayer] = []

    def add(keras_class: str, args: dict, out: tuple[int, ...], params: int = 0, name: str = ""):
        plan.append(PlannedLayer(keras_class, args, name or keras_class, out, params))

    if is_spatial(config) and len(shape) == 2:
        shape = (*shape, 1)  # Conv2D and the image augmentations want a channel axis
        add("Reshape", {"target_shape": shape}, shape)
    if config.augment_flip:
        add("RandomFlip", {"mode": "horizontal"}, shape)
    if config.augment_translate > 0:
        f = config.augment_translate
        # "constant" fills the uncovered border with black, the images' own background
        args = {"height_factor": f, "width_factor": f, "fill_mode": "constant"}
        add("RandomTranslation", args, shape)
    flat = False
    for index, layer in enumerate(config.layers, start=1):
        # With batch norm the activation comes after normalisation, so the layer itself is linear.
        activation = {} if config.batch_norm else {"activation": layer.activation}
        if layer.kind == "conv":
            if flat:
                raise ConfigError(
                    f"Layer {index} is a convolution after a dense layer. Put all convolution "
                    "blocks before the dense layers."
                )
            height, width, channels = shape
            k = layer.kernel_size
            if k > min(height, width):
                raise ConfigError(
                    f"Layer {index}: the {k}x{k} kernel is larger than its {height}x{width} input "
                    "feature map. Use a smaller kernel or fewer pooling steps before it."
                )
            # A strided block halves the map in the convolution itself: it computes a quarter of
            # the positions, and no pooling layer follows (much cheaper, on a CPU most of all).
            stride = 2 if layer.pool and config.conv_downsample == "stride" else 1
            if config.conv_padding == "same":  # zero-padded border: only the stride shrinks it
                shape = (-(-height // stride), -(-width // stride), layer.filters)
            else:  # "valid": no padding, so the kernel must fit wholly inside at every step
                shape = ((height - k) // stride + 1, (width - k) // stride + 1, layer.filters)
            args = {"filters": layer.filters, "kernel_size": k, "padding": config.conv_padding}
            if stride > 1:
                args["strides"] = stride
            params = k * k * channels * layer.filters + layer.filters
            name = f"Conv2D {k}x{k}" + (f" stride {stride}" if stride > 1 else "")
            add("Conv2D", {**args, **activation, **weights}, shape, params, name)
        else:
            if not flat:
                shape = (math.prod(shape),)
                add("Flatten", {}, shape)
                flat = True
            params = shape[0] * layer.units + layer.units
            shape = (layer.units,)
            add("Dense", {"units": layer.units, **activation, **weights}, shape, params)
        if config.batch_norm:
            # gamma and beta learn; the moving mean and variance are counted but not trained
            add("BatchNormalization", {}, shape, 4 * shape[-1])
            add(
                "Activation",
                {"activation": layer.activation},
                shape,
                name=f"Activation ({layer.activation})",
            )
        if layer.kind == "conv" and layer.pool and config.conv_downsample == "maxpool":
            height, width, channels = shape
            if min(height, width) < POOL_SIZE:
                raise ConfigError(
                    f"Layer {index}: the feature map is already {height}x{width}, too small "
                    "to pool again. Turn off pooling or remove a convolution block."
                )
            shape = (height // POOL_SIZE, width // POOL_SIZE, channels)
            add("MaxPooling2D", {"pool_size": POOL_SIZE}, shape)
        if layer.dropout:
            add("Dropout", {"rate": layer.dropout}, shape)
    if not flat:
        shape = (math.prod(shape),)
        add("Flatten", {}, shape)
    # No activation: the loss takes logits (from_logits=True), as the Keras tutorial does.
    params = shape[0] * num_classes + num_classes
    add("Dense", {"units": num_classes, **weights}, (num_classes,), params, "Dense (output logits)")
    return plan


def layer_table(
    config: RunConfig, input_shape: tuple[int, ...] = (28, 28), num_classes: int = 10
) -> list[LayerRow]:
    """The planned layers as the rows the Train page shows: name, output shape, parameters."""
    return [
        LayerRow(layer.name, layer.output_shape, layer.params)
        for layer in layer_plan(config, input_shape, num_classes)
    ]


def count_params(
    config: RunConfig, input_shape: tuple[int, ...] = (28, 28), num_classes: int = 10
) -> int:
    """The network's weights, trainable and not, exactly as Keras's model.count_params()."""
    return sum(layer.params for layer in layer_plan(config, input_shape, num_classes))
