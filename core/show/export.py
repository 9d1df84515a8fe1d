"""Write a run as a standalone plain-Keras script: the bridge from playground to real code.

The script is written from core.spec.plan's layer plan (one line per planned layer), the same plan
the playground builds its model from, and it prepares the data and trains exactly as
core.learn.training does: the seeded subset, float32 pixels / 255, the validation images off the end
of the subset, the optimizer, early stopping on the validation loss, and the test loss without
weight decay. A run on an imported dataset gets a script that reads that dataset's stored
arrays.npz.
"""

from __future__ import annotations

import json
import textwrap
from dataclasses import dataclass
from string import Template

from core.data.catalog import ARRAYS_FILE, MODES, find_dataset
from core.data.sources import DATASETS, DEBIAN_DIR, IDX_FILES
from core.spec.config import RunConfig
from core.spec.plan import Regularizer, Schedule, kernel_regularizer, layer_plan, optimizer_plan
from core.spec.settings import ConfigError

LINE_LENGTH = 100  # the script reads like the playground's own code (ruff format, 100 columns)


@dataclass(frozen=True)
class ScriptLoader:
    """Where the script looks for a dataset: the places core.data.sources reads it from."""

    env_var: str  # a folder of the four IDX files, checked first, as the registry does
    folders: tuple[str, ...]  # further folders of IDX files
    keras_module: str  # keras.datasets.<module>: Keras's own cache, else a download
    input_shape: tuple[int, ...] = (28, 28)


# Mirrors core.data.sources' _fashion_sources and _mnist_sources (tests/test_export.py checks that):
# each dataset keeps its own folder variable, so an MNIST script never finds Fashion-MNIST files.
DATA_LOADERS: dict[str, ScriptLoader] = {
    "fashion_mnist": ScriptLoader(
        "PLAYGROUND_DATA_DIR", (str(DEBIAN_DIR / "fashion-mnist"),), "fashion_mnist"
    ),
    "mnist": ScriptLoader("PLAYGROUND_MNIST_DIR", (), "mnist"),
}

_SCRIPT = Template('''"""Reproduce $what with plain Keras.

    python $filename [--epochs N] [--train-size N] [--test-size N]

Dataset: $title.
$architecture
"""

import argparse
$imports
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
import keras
import numpy as np

SEED = $seed
BATCH_SIZE = $batch_size
VALIDATION_SPLIT = $validation_split  # held out from the end of the training subset
EARLY_STOPPING = $early_stopping  # patience in epochs on the validation loss; 0 = off

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=$epochs)
parser.add_argument("--train-size", type=int, default=$train_size, help="0 = every image")
parser.add_argument("--test-size", type=int, default=0, help="evaluate on the first N; 0 = all")
args = parser.parse_args()

$loader


keras.utils.set_random_seed(SEED)
(x_train, y_train), (x_test, y_test) = load_data()
# As the playground prepares them: a seeded subset, pixels as float32 in [0, 1], and the
# validation images taken off the end of the subset.
n = min(args.train_size or len(x_train), len(x_train))
if n < len(x_train):
    order = np.random.default_rng(SEED).permutation(len(x_train))[:n]
    x_train, y_train = x_train[order], y_train[order]
x_train = x_train.astype("float32") / np.float32(255.0)
n_fit = n - int(round(n * VALIDATION_SPLIT))
x_fit, y_fit = x_train[:n_fit], y_train[:n_fit]
validation_data = (x_train[n_fit:], y_train[n_fit:]) if n_fit < n else None
x_test, y_test = x_test[: args.test_size or None], y_test[: args.test_size or None]
x_test = x_test.astype("float32") / np.float32(255.0)
print(f"data: {n_fit} training, {n - n_fit} validation, {len(x_test)} test images")

''')

_IDX_LOADER = Template('''DATA_FOLDERS = [$folders]
IDX_FILES = [
$idx_files
]


def read_idx(path):
    """One IDX file: a magic number whose last byte is the number of dimensions, then the sizes."""
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    ndim = raw[3]
    dims = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_data():
    """$title from the first of DATA_FOLDERS that holds the four IDX files.

    Otherwise keras.datasets.$module, which reads Keras's cache or downloads.
    """
    for folder in filter(None, DATA_FOLDERS):
        paths = [Path(folder, name) for name in IDX_FILES]
        paths = [path if path.exists() else path.with_suffix("") for path in paths]
        if all(path.exists() for path in paths):
            x_train, y_train, x_test, y_test = (read_idx(path) for path in paths)
            print(f"data: $title from {folder}")
            return (x_train, y_train), (x_test, y_test)
    print("data: $title from keras.datasets.$module")
    return keras.datasets.$module.load_data()
''')

# An imported dataset: the arrays the playground stored at import (pictures already prepared).
_NPZ_LOADER = Template('''$dataset_file
DATASET_NAME = $name
CLASS_NAMES = $class_names


def load_data():
    """Your own pictures (DATASET_NAME), as the playground stored them at import.

    Prepared "$mode". Images are uint8: (N, height, width) grey or
    (N, height, width, 3) colour. Labels index CLASS_NAMES.
    """
    with np.load(DATASET_FILE, allow_pickle=False) as stored:
        x_train, y_train = stored["x_train"], stored["y_train"]
        x_test, y_test = stored["x_test"], stored["y_test"]
    print(f"data: {DATASET_NAME} from {DATASET_FILE}")
    return (x_train, y_train), (x_test, y_test)
''')

_TRAIN = """model.compile(
    optimizer=optimizer,
    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    metrics=["accuracy"],
)
model.summary()
print(f"params {model.count_params()}")

callbacks = []
if EARLY_STOPPING and validation_data is not None:
    callbacks.append(
        keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=EARLY_STOPPING, restore_best_weights=True
        )
    )
model.fit(
    x_fit,
    y_fit,
    batch_size=BATCH_SIZE,
    epochs=args.epochs,
    validation_data=validation_data,
    callbacks=callbacks,
    verbose=2,
)

# The playground reports the plain cross-entropy of the softmax: model.evaluate would add the
# weight-decay penalty to the test loss.
logits = model.predict(x_test, batch_size=1024, verbose=0).astype("float64")
probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
probabilities /= probabilities.sum(axis=1, keepdims=True)
picked = probabilities[np.arange(len(y_test)), y_test.astype("int64")]
test_loss = float(-np.log(np.clip(picked, 1e-12, 1.0)).mean())
test_accuracy = float((probabilities.argmax(axis=1) == y_test).mean())
print(f"test accuracy {test_accuracy:.4f}, test loss {test_loss:.4f}")
"""


def script_loader(dataset: str) -> ScriptLoader:
    """The script's loader for a built-in dataset; ConfigError for one it cannot fetch."""
    if dataset not in DATA_LOADERS:
        known = ", ".join(DATASETS[name].title for name in DATA_LOADERS)
        raise ConfigError(
            f"The exported script can load {known} only; it has no loader for '{dataset}' yet."
        )
    return DATA_LOADERS[dataset]


def reproduce_script(config: RunConfig, run_id: str | None = None, *, home=None) -> str:
    """Python source that rebuilds and retrains `config` with nothing but Keras and numpy.

    run_id (config.run_id_for(data fingerprint)) names the run and the file; without it the
    script is named playground.py. Raises ConfigError for an impossible network or a dataset
    the script cannot load. An imported dataset is looked for in `home` (PLAYGROUND_HOME).
    """
    if config.dataset in DATA_LOADERS:
        loader = script_loader(config.dataset)
        title, input_shape = DATASETS[config.dataset].title, loader.input_shape
        num_classes = len(DATASETS[config.dataset].class_names)
        imports = "import gzip\nimport os\nimport struct"
        load = _IDX_LOADER.substitute(
            title=title,
            folders=", ".join(
                [f"os.environ.get({_value(loader.env_var)})", *map(_value, loader.folders)]
            ),
            idx_files="\n".join(f"    {_value(name)}," for name in IDX_FILES.values()),
            module=loader.keras_module,
        )
    else:
        info = find_dataset(config.dataset, home)
        if info is None:
            script_loader(config.dataset)  # raises: no loader for it
        # the name as the docstrings show it: no quote or backslash can end them early
        title = "your dataset '{}'".format(info.name.replace("\\", "/").replace('"', "'"))
        input_shape = (info.size, info.size) + ((3,) if info.channels == 3 else ())
        num_classes = len(info.class_names)
        imports = "import os"
        load = _NPZ_LOADER.substitute(
            title=title,
            dataset_file=_dataset_file(info.path / ARRAYS_FILE),
            name=_quoted(info.name),
            class_names=json.dumps(list(info.class_names), ensure_ascii=False),
            mode=MODES.get(info.mode, info.mode),
        )
    if config.lr_schedule != "constant":  # the schedule's length: math.ceil(n_fit / BATCH_SIZE)
        imports = "\n".join(sorted([*imports.split("\n"), "import math"]))
    plan = layer_plan(config, input_shape, num_classes)
    header = _SCRIPT.substitute(
        what=f"playground run {run_id}" if run_id else "a playground run",
        filename=f"playground_{run_id}.py" if run_id else "playground.py",
        title=title,
        architecture=textwrap.fill(f"Architecture: {config.describe()}.", LINE_LENGTH),
        seed=config.seed,
        batch_size=config.batch_size,
        validation_split=repr(config.validation_split),
        early_stopping=config.early_stopping,
        epochs=config.epochs,
        train_size=config.train_size,
        imports=imports,
        loader=load.rstrip("\n"),
    )
    # One regularizer object serves every kernel: it holds no state, only the factor.
    regularizer = kernel_regularizer(config)
    names = {regularizer: "regularizer"} if regularizer else {}
    lines = []
    if regularizer:
        lines.append(f"regularizer = {_value(regularizer)}  # weight decay on every kernel")
    lines += ["model = keras.Sequential(", "    ["]
    lines.append(f"        keras.Input(shape={_value(tuple(input_shape))}),")
    for layer in plan:
        shape = " x ".join(map(str, layer.output_shape))
        lines.append(f"        # {layer.name}: {shape}, {layer.params:,} params")
        lines += _call_lines(" " * 8, f"keras.layers.{layer.keras_class}", layer.args, names, ",")
    lines += ["    ],", '    name="playground",', ")", ""]
    optimizer = optimizer_plan(config)
    keras_class = f"keras.optimizers.{optimizer.keras_class}"
    lines += _call_lines("optimizer = ", keras_class, optimizer.args, {})
    return header + "\n".join(lines) + "\n" + _TRAIN


def _call_lines(start: str, function: str, args: dict, names: dict, end: str = "") -> list[str]:
    """`start function(...)end`, its arguments wrapped as ruff format wraps a line too long."""
    line = f"{start}{_call(function, args, names)}{end}"
    if len(line) <= LINE_LENGTH:
        return [line]
    pad = start[: len(start) - len(start.lstrip())]
    rendered = [f"{name}={_value(value, names)}" for name, value in args.items()]
    inner = f"{pad}    {', '.join(rendered)}"
    body = [inner] if len(inner) <= LINE_LENGTH else [f"{pad}    {arg}," for arg in rendered]
    return [f"{start}{function}(", *body, f"{pad}){end}"]


def _call(function: str, args: dict, names: dict | None = None) -> str:
    """function(name=value, ...), with values the script already holds in a variable by name."""
    rendered = (f"{name}={_value(value, names)}" for name, value in args.items())
    return f"{function}({', '.join(rendered)})"


def _value(value, names: dict | None = None) -> str:
    """Python source for one of the plan's plain values."""
    if names and isinstance(value, Regularizer) and value in names:
        return names[value]
    if isinstance(value, Regularizer):
        return f"keras.regularizers.{value.kind}({value.factor!r})"
    if isinstance(value, Schedule):  # over every batch of the run, counted from the data
        steps = value.decay_steps or "args.epochs * math.ceil(n_fit / BATCH_SIZE)"
        return f"keras.optimizers.schedules.{value.kind}({value.initial!r}, decay_steps={steps})"
    if isinstance(value, str):
        return json.dumps(value)  # double quotes, as ruff format writes them
    return repr(value)


def _quoted(text: str) -> str:
    """A string literal as ruff format writes it: double quotes unless they need escaping."""
    if '"' in text and "'" not in text:
        return repr(text)
    return json.dumps(text, ensure_ascii=False)


def _dataset_file(path) -> str:
    """DATASET_FILE = Path(...), split into folder, dataset and file where one line is too long."""
    parts = [_quoted(str(path.parent.parent)), _quoted(path.parent.name), _quoted(path.name)]
    line = f"DATASET_FILE = Path({', '.join(parts)})"
    if len(line) <= LINE_LENGTH:
        return line
    return "DATASET_FILE = Path(\n" + "".join(f"    {part},\n" for part in parts) + ")"
