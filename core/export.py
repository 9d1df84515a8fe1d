"""Write a run as a standalone plain-Keras script: the bridge from playground to real code."""

from __future__ import annotations

from core.config import RunConfig

_HEADER = '''"""Reproduce playground run {run_id} with plain Keras.

    python {filename} [--epochs N] [--train-size N]

Architecture: {architecture}
"""

import argparse
import gzip
import os
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
import keras
import numpy as np

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default={epochs})
parser.add_argument("--train-size", type=int, default={train_size})
args = parser.parse_args()


def load_data():
    """Fashion-MNIST from Debian's dataset-fashion-mnist or PLAYGROUND_DATA_DIR, else a download."""
    for folder in (os.environ.get("PLAYGROUND_DATA_DIR"), "/usr/share/datasets/fashion-mnist"):
        if folder and Path(folder, "train-images-idx3-ubyte.gz").exists():
            def read(name, offset):
                raw = gzip.decompress(Path(folder, name).read_bytes())
                return np.frombuffer(raw, np.uint8, offset=offset)
            x_train = read("train-images-idx3-ubyte.gz", 16).reshape(-1, 28, 28)
            x_test = read("t10k-images-idx3-ubyte.gz", 16).reshape(-1, 28, 28)
            y_train = read("train-labels-idx1-ubyte.gz", 8)
            y_test = read("t10k-labels-idx1-ubyte.gz", 8)
            return (x_train, y_train), (x_test, y_test)
    return keras.datasets.{dataset}.load_data()


keras.utils.set_random_seed({seed})
(x_train, y_train), (x_test, y_test) = load_data()
x_train, x_test = x_train / 255.0, x_test / 255.0
if args.train_size:
    order = np.random.default_rng({seed}).permutation(len(x_train))[: args.train_size]
    x_train, y_train = x_train[order], y_train[order]
'''


def reproduce_script(config: RunConfig, run_id: str | None = None) -> str:
    """Python source that rebuilds and retrains `config` with nothing but Keras and numpy."""
    lines = [
        _HEADER.format(
            run_id=run_id or config.run_id,
            filename=f"playground_{run_id or config.run_id}.py",
            architecture=config.describe(),
            epochs=config.epochs,
            train_size=config.train_size,
            dataset=config.dataset,
            seed=config.seed,
        )
    ]
    add = lines.append
    if config.validation_split:
        add(f"n_val = int(round(len(x_train) * {config.validation_split!r}))")
        add("x_train, x_val = x_train[: len(x_train) - n_val], x_train[len(x_train) - n_val :]")
        add("y_train, y_val = y_train[: len(y_train) - n_val], y_train[len(y_train) - n_val :]")
        add("validation_data = (x_val, y_val)")
    else:
        add("validation_data = None")
    regularizer = (
        f"keras.regularizers.L2({config.weight_decay!r})"
        if config.weight_decay and config.optimizer != "adamw"
        else "None"
    )
    add("")
    add("model = keras.Sequential([")
    add("    keras.Input(shape=x_train.shape[1:]),")
    spatial = any(layer.kind == "conv" for layer in config.layers) or (
        config.augment_flip or config.augment_translate > 0
    )
    if spatial:
        add("    keras.layers.Reshape((*x_train.shape[1:], 1)),")
    if config.augment_flip:
        add('    keras.layers.RandomFlip("horizontal"),')
    if config.augment_translate > 0:
        f = config.augment_translate
        add(f'    keras.layers.RandomTranslation({f!r}, {f!r}, fill_mode="constant"),')
    flat = False
    for spec in config.layers:
        activation = "None" if config.batch_norm else repr(spec.activation)
        if spec.kind == "conv":
            add(
                f'    keras.layers.Conv2D({spec.filters}, {spec.kernel_size}, padding="valid", '
                f"activation={activation}, kernel_regularizer={regularizer}),"
            )
        else:
            if not flat:
                add("    keras.layers.Flatten(),")
                flat = True
            add(
                f"    keras.layers.Dense({spec.units}, activation={activation}, "
                f"kernel_regularizer={regularizer}),"
            )
        if config.batch_norm:
            add("    keras.layers.BatchNormalization(),")
            add(f"    keras.layers.Activation({spec.activation!r}),")
        if spec.kind == "conv" and spec.pool:
            add("    keras.layers.MaxPooling2D(),")
        if spec.dropout:
            add(f"    keras.layers.Dropout({spec.dropout!r}),")
    if not flat:
        add("    keras.layers.Flatten(),")
    add(f"    keras.layers.Dense(10, kernel_regularizer={regularizer}),  # logits")
    add("])")
    optimizer = {
        "adam": f"keras.optimizers.Adam({config.learning_rate!r})",
        "sgd": f"keras.optimizers.SGD({config.learning_rate!r}, momentum=0.9)",
        "rmsprop": f"keras.optimizers.RMSprop({config.learning_rate!r})",
        "adamw": (
            f"keras.optimizers.AdamW({config.learning_rate!r}, "
            f"weight_decay={config.weight_decay!r})"
        ),
    }[config.optimizer]
    add("model.compile(")
    add(f"    optimizer={optimizer},")
    add("    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),")
    add('    metrics=["accuracy"],')
    add(")")
    add("model.summary()")
    add("")
    if config.early_stopping:
        add(
            'callbacks = [keras.callbacks.EarlyStopping(monitor="val_loss", '
            f"patience={config.early_stopping}, restore_best_weights=True)]"
        )
    else:
        add("callbacks = []")
    add(
        f"model.fit(x_train, y_train, batch_size={config.batch_size}, epochs=args.epochs,"
        " validation_data=validation_data, callbacks=callbacks)"
    )
    add("test_loss, test_accuracy = model.evaluate(x_test, y_test, verbose=0)")
    add('print(f"test accuracy {test_accuracy:.4f}, test loss {test_loss:.4f}")')
    return "\n".join(lines) + "\n"
