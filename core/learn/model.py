"""Build the Keras 3 model a RunConfig describes (keras-io style: one make_model function)."""

from __future__ import annotations

from core.runtime import import_keras
from core.spec.config import RunConfig
from core.spec.plan import Regularizer, Schedule, layer_plan, optimizer_plan

keras = import_keras()  # on the backend this process chose (core.runtime.use_backend)


def make_model(config: RunConfig, input_shape: tuple[int, ...], num_classes: int) -> keras.Model:
    """Input -> [augmentation] -> hidden layers -> Dense(num_classes) logits.

    Built from core.spec.plan's layer plan, the same list the exported script and the layer table
    show, so what the playground trains is what they describe.
    """
    layers: list = [keras.Input(shape=input_shape)]
    seen: dict[str, int] = {}
    for planned in layer_plan(config, input_shape, num_classes):
        layer_class = getattr(keras.layers, planned.keras_class)
        args = {name: _keras_value(v) for name, v in planned.args.items()}
        layers.append(layer_class(name=_layer_name(planned.keras_class, seen), **args))
    return keras.Sequential(layers, name="playground")


def _layer_name(keras_class: str, seen: dict[str, int]) -> str:
    """dense, dense_1, conv2d, ...: counted within this model, as a fresh Keras session names
    them, so the Inside page says "dense" and not "dense_37" in a trainer that built 37 before."""
    base = "".join(
        "_" + c.lower() if c.isupper() and i else c.lower() for i, c in enumerate(keras_class)
    )
    base = base.replace("conv2_d", "conv2d").replace("max_pooling2_d", "max_pooling2d")
    count = seen.get(base, 0)
    seen[base] = count + 1
    return base if count == 0 else f"{base}_{count}"


def _keras_value(value):
    """A plan's plain value as Keras takes it (a Regularizer becomes a regularizer object)."""
    if isinstance(value, Regularizer):
        return getattr(keras.regularizers, value.kind)(value.factor)
    if isinstance(value, Schedule):
        if value.decay_steps is None:
            raise ValueError("a learning-rate schedule needs the steps per epoch")
        schedule = getattr(keras.optimizers.schedules, value.kind)
        return schedule(value.initial, decay_steps=value.decay_steps)
    return value


def make_optimizer(
    config: RunConfig, steps_per_epoch: int | None = None
) -> keras.optimizers.Optimizer:
    planned = optimizer_plan(config, steps_per_epoch)
    args = {name: _keras_value(v) for name, v in planned.args.items()}
    return getattr(keras.optimizers, planned.keras_class)(**args)


def build_model(
    config: RunConfig,
    input_shape: tuple[int, ...],
    num_classes: int,
    steps_per_execution: int = 1,
    steps_per_epoch: int | None = None,
) -> keras.Model:
    """The compiled model, exactly as the tutorial compiles it (logits + from_logits loss).

    steps_per_execution: training steps per call into the backend (same arithmetic, fewer
    Python round trips; see core.learn.pace). steps_per_epoch: batches per epoch, needed by a
    learning-rate schedule (it spans the run's epochs).
    """
    model = make_model(config, input_shape, num_classes)
    model.compile(
        optimizer=make_optimizer(config, steps_per_epoch),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        steps_per_execution=steps_per_execution,
    )
    return model
