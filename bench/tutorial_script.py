"""The classic Keras tutorial as its readers run it: the yardstick every speed target is a ratio to.

TensorFlow backend, float64 input (x / 255.0), Flatten -> Dense(128, relu) -> Dense(10), adam,
batch 32, 10 epochs. Keras's own `fashion_mnist.load_data()` cannot download here, so the same four
files are read from Debian's dataset-fashion-mnist (or PLAYGROUND_DATA_DIR); nothing else differs.

    python bench/tutorial_script.py [--epochs 10]
"""

import argparse
import gzip
import os
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=10)
args = parser.parse_args()


def load_data():
    folder = Path(os.environ.get("PLAYGROUND_DATA_DIR") or "/usr/share/datasets/fashion-mnist")

    def read(name, offset):
        return np.frombuffer(gzip.decompress((folder / name).read_bytes()), np.uint8, offset=offset)

    return (
        (
            read("train-images-idx3-ubyte.gz", 16).reshape(-1, 28, 28),
            read("train-labels-idx1-ubyte.gz", 8),
        ),
        (
            read("t10k-images-idx3-ubyte.gz", 16).reshape(-1, 28, 28),
            read("t10k-labels-idx1-ubyte.gz", 8),
        ),
    )


(train_images, train_labels), (test_images, test_labels) = load_data()
train_images = train_images / 255.0
test_images = test_images / 255.0

model = tf.keras.Sequential(
    [
        tf.keras.Input(shape=(28, 28)),
        tf.keras.layers.Flatten(),
        tf.keras.layers.Dense(128, activation="relu"),
        tf.keras.layers.Dense(10),
    ]
)
model.compile(
    optimizer="adam",
    loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    metrics=["accuracy"],
)
model.fit(train_images, train_labels, epochs=args.epochs, verbose=0)
test_loss, test_acc = model.evaluate(test_images, test_labels, verbose=0)
print(f"test accuracy {test_acc:.4f}")
