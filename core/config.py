"""RunConfig: one frozen description of a whole run (data, architecture, training), and presets.

The config is plain data: it validates, hashes to a run id, and round-trips through JSON and a flat
dict of strings (URL query parameters) without importing TensorFlow. Shapes and parameter counts are
computed here arithmetically, so the UI can show them while sliders move.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass

CONFIG_VERSION = 2  # bump when the meaning of a field changes, so old run ids stop matching
MAX_PARAMS = 20_000_000  # beyond this a 2-core machine trains for hours; refuse up front
ACTIVATIONS = ("relu", "tanh", "sigmoid", "elu", "gelu", "linear")
OPTIMIZERS = ("adam", "sgd", "rmsprop", "adamw")
LAYER_KINDS = ("dense", "conv")


class ConfigError(ValueError):
    """An impossible setting; the message is a sentence for the person who chose it."""


@dataclass(frozen=True)
class LayerSpec:
    """One hidden layer: a Dense layer, or a Conv2D block (conv + optional 2x2 max-pooling)."""

    kind: str = "dense"
    units: int = 128  # dense: neurons
    activation: str = "relu"
    dropout: float = 0.0  # fraction of this layer's outputs dropped while training
    filters: int = 32  # conv: feature maps
    kernel_size: int = 3  # conv: square kernel side
    pool: bool = True  # conv: 2x2 max-pooling after the convolution

    def encode(self) -> str:
        if self.kind == "conv":
            return (
                f"conv:{self.filters}:{self.kernel_size}:{'pool' if self.pool else 'nopool'}"
                f":{self.activation}:{_num(self.dropout)}"
            )
        return f"dense:{self.units}:{self.activation}:{_num(self.dropout)}"

    @classmethod
    def decode(cls, text: str) -> LayerSpec:
        parts = text.strip().split(":")
        try:
            if parts[0] == "conv" and len(parts) == 6:
                return cls(
                    kind="conv",
                    filters=int(parts[1]),
                    kernel_size=int(parts[2]),
                    pool=parts[3] == "pool",
                    activation=parts[4],
                    dropout=float(parts[5]),
                )
            if parts[0] == "dense" and len(parts) == 4:
                return cls(
                    kind="dense", units=int(parts[1]), activation=parts[2], dropout=float(parts[3])
                )
        except ValueError:
            pass
        raise ConfigError(
            f"'{text}' is not a layer. Write dense:UNITS:ACTIVATION:DROPOUT or "
            "conv:FILTERS:KERNEL:pool|nopool:ACTIVATION:DROPOUT."
        )

    def describe(self) -> str:
        if self.kind == "conv":
            text = f"Conv{self.kernel_size}x{self.kernel_size}({self.filters})"
            text += "+pool" if self.pool else ""
        else:
            text = f"Dense({self.units}, {self.activation})"
        return text + (f"+drop{self.dropout:g}" if self.dropout else "")


def _num(value: float) -> str:
    return f"{value:g}"


@dataclass(frozen=True)
class RunConfig:
    """Everything that decides a run's result. Equal configs are the same run."""

    # data
    dataset: str = "fashion_mnist"
    train_size: int = 0  # 0 = every training image; smaller for quick experiments
    validation_split: float = 0.0  # tutorial trains on everything and only tests at the end
    # architecture: hidden layers in order; the 10-way output layer is always added
    layers: tuple[LayerSpec, ...] = (LayerSpec(),)
    batch_norm: bool = False  # after every hidden layer, before its activation
    augment_flip: bool = False  # random horizontal flip, training only
    augment_translate: float = 0.0  # random shift as a fraction of the image, training only
    # training
    optimizer: str = "adam"
    learning_rate: float = 1e-3  # Keras's adam default, the tutorial's setting
    batch_size: int = 32  # Keras's fit default, the tutorial's setting
    epochs: int = 10
    weight_decay: float = 0.0  # L2 on kernels (decoupled decay for adamw)
    early_stopping: int = 0  # patience in epochs on validation loss; 0 = off
    seed: int = 42
    # engine: auto picks, per network, the installed Keras backend that trains it fastest here
    backend: str = "auto"

    def __post_init__(self) -> None:
        # accept lists (from JSON) while keeping the dataclass hashable
        object.__setattr__(self, "layers", tuple(self.layers))

    # ------------------------------------------------------------------ identity
    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["layers"] = [dataclasses.asdict(layer) for layer in self.layers]
        return data

    @classmethod
    def from_dict(cls, data: dict) -> RunConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"Unknown setting(s): {', '.join(sorted(unknown))}.")
        values = dict(data)
        if "layers" in values:
            values["layers"] = tuple(
                layer if isinstance(layer, LayerSpec) else LayerSpec(**layer)
                for layer in values["layers"]
            )
        return cls(**values)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, indent=2)

    @classmethod
    def from_json(cls, text: str) -> RunConfig:
        return cls.from_dict(json.loads(text))

    def run_id_for(self, data_id: str) -> str:
        """Stable content hash of the config *and* the data it trains on (Dataset.fingerprint).

        Same config on the same images: the same id, on any machine, whichever folder the images
        came from. Other data (the bundled sample, an imported set): another id.
        """
        payload = json.dumps(
            {"version": CONFIG_VERSION, "data": data_id, **self.to_dict()},
            sort_keys=True,
            separators=(",", ":"),
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:12]

    def replace(self, **changes) -> RunConfig:
        return dataclasses.replace(self, **changes)

    # ------------------------------------------------------------------ URL form
    def to_params(self) -> dict[str, str]:
        """Flat dict of strings, one entry per field (layers as a compact comma list)."""
        params = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "layers":
                params["layers"] = ",".join(layer.encode() for layer in value)
            elif isinstance(value, bool):
                params[f.name] = "1" if value else "0"
            elif isinstance(value, float):
                params[f.name] = _num(value)
            else:
                params[f.name] = str(value)
        return params

    @classmethod
    def from_params(
        cls, params: dict[str, str], base: RunConfig | None = None
    ) -> tuple[RunConfig, list[str]]:
        """Parse query parameters leniently: a bad or unknown one keeps the base value.

        Returns the config and one notice per parameter that was ignored.
        """
        base = base or cls()
        values: dict = {}
        notices: list[str] = []
        types = {f.name: f.type for f in dataclasses.fields(cls)}
        for name, text in params.items():
            if name not in types:
                notices.append(f"Ignored unknown setting '{name}'.")
                continue
            try:
                values[name] = _parse_field(name, str(text), getattr(base, name))
            except (ValueError, ConfigError) as exc:
                notices.append(
                    f"Ignored {name}={text!r} ({exc}); using {_show(getattr(base, name))} instead."
                )
        return base.replace(**values), notices

    # ------------------------------------------------------------------ description
    def describe(self) -> str:
        return " → ".join(layer.describe() for layer in self.layers) or "no hidden layer"


def _show(value) -> str:
    if isinstance(value, tuple):
        return ",".join(layer.encode() for layer in value)
    return str(value)


def _parse_field(name: str, text: str, current):
    if name == "layers":
        return tuple(LayerSpec.decode(part) for part in text.split(",") if part.strip())
    if isinstance(current, bool):
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError("expected 1 or 0")
    if isinstance(current, int):
        return int(text)
    if isinstance(current, float):
        value = float(text)
        if not math.isfinite(value):
            raise ValueError("not a finite number")
        return value
    return text


# ---------------------------------------------------------------------- shapes and parameters


@dataclass(frozen=True)
class LayerRow:
    name: str
    output_shape: tuple[int, ...]
    params: int


def layer_table(
    config: RunConfig, input_shape: tuple[int, ...] = (28, 28), num_classes: int = 10
) -> list[LayerRow]:
    """The model's layers with output shapes and parameter counts, matching core.model's build.

    Computed arithmetically (no TensorFlow). Raises ConfigError where a shape becomes impossible.
    """
    rows: list[LayerRow] = []
    shape: tuple[int, ...] = tuple(input_shape)
    height, width = shape[0], shape[1]
    channels = shape[2] if len(shape) == 3 else 1
    spatial = any(layer.kind == "conv" for layer in config.layers) or (
        config.augment_flip or config.augment_translate > 0
    )
    if spatial and len(shape) == 2:
        shape = (height, width, 1)
        rows.append(LayerRow("Reshape", shape, 0))
    if config.augment_flip:
        rows.append(LayerRow("RandomFlip", shape, 0))
    if config.augment_translate > 0:
        rows.append(LayerRow("RandomTranslation", shape, 0))
    flat = False
    for index, layer in enumerate(config.layers, start=1):
        if layer.kind == "conv":
            if flat:
                raise ConfigError(
                    f"Layer {index} is a convolution after a dense layer. Put all convolution "
                    "blocks before the dense layers."
                )
            k = layer.kernel_size
            if k > min(height, width):
                raise ConfigError(
                    f"Layer {index}: the {k}x{k} kernel is larger than its {height}x{width} input "
                    "feature map. Use a smaller kernel or fewer pooling steps before it."
                )
            params = k * k * channels * layer.filters + layer.filters
            channels = layer.filters
            height, width = height - k + 1, width - k + 1  # "valid" convolution: no padding
            rows.append(LayerRow(f"Conv2D {k}x{k}", (height, width, channels), params))
            if config.batch_norm:
                rows.append(LayerRow("BatchNormalization", (height, width, channels), 4 * channels))
            if layer.pool:
                if min(height, width) < 2:
                    raise ConfigError(
                        f"Layer {index}: the feature map is already {height}x{width}, too small "
                        "to pool again. Turn off pooling or remove a convolution block."
                    )
                height, width = height // 2, width // 2
                rows.append(LayerRow("MaxPooling2D", (height, width, channels), 0))
            if layer.dropout:
                rows.append(LayerRow("Dropout", (height, width, channels), 0))
            shape = (height, width, channels)
        else:
            if not flat:
                shape = (math.prod(shape),)
                rows.append(LayerRow("Flatten", shape, 0))
                flat = True
            params = shape[0] * layer.units + layer.units
            shape = (layer.units,)
            rows.append(LayerRow("Dense", shape, params))
            if config.batch_norm:
                rows.append(LayerRow("BatchNormalization", shape, 4 * layer.units))
            if layer.dropout:
                rows.append(LayerRow("Dropout", shape, 0))
    if not flat:
        shape = (math.prod(shape),)
        rows.append(LayerRow("Flatten", shape, 0))
    rows.append(
        LayerRow("Dense (output logits)", (num_classes,), shape[0] * num_classes + num_classes)
    )
    return rows


def count_params(
    config: RunConfig, input_shape: tuple[int, ...] = (28, 28), num_classes: int = 10
) -> int:
    return sum(row.params for row in layer_table(config, input_shape, num_classes))


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
    """
    from core.datasets import DATASETS  # local: keeps config importable on its own

    if config.dataset not in DATASETS:
        raise ConfigError(
            f"Unknown dataset '{config.dataset}'. Choose one of: {', '.join(DATASETS)}."
        )
    if len(config.layers) > 16:
        raise ConfigError(f"{len(config.layers)} hidden layers is too many; use at most 16.")
    for index, layer in enumerate(config.layers, start=1):
        if layer.kind not in LAYER_KINDS:
            raise ConfigError(f"Layer {index}: unknown kind '{layer.kind}' (dense or conv).")
        if layer.activation not in ACTIVATIONS:
            raise ConfigError(
                f"Layer {index}: unknown activation '{layer.activation}'. "
                f"Choose one of: {', '.join(ACTIVATIONS)}."
            )
        if not 0.0 <= layer.dropout < 1.0:
            raise ConfigError(
                f"Layer {index}: dropout must be at least 0 and below 1 (it is {layer.dropout:g}); "
                "a dropout of 1 would switch the layer off."
            )
        if layer.kind == "dense" and layer.units < 1:
            raise ConfigError(f"Layer {index} (Dense) needs at least 1 unit; it has {layer.units}.")
        if layer.kind == "conv" and layer.filters < 1:
            raise ConfigError(
                f"Layer {index} (Conv2D) needs at least 1 filter; it has {layer.filters}."
            )
        if layer.kind == "conv" and layer.kernel_size < 1:
            raise ConfigError(f"Layer {index} (Conv2D): the kernel size must be at least 1.")
    if not 0.0 <= config.augment_translate <= 0.5:
        raise ConfigError("Random translation must be between 0 and 0.5 of the image size.")
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
    if config.epochs > 500:
        raise ConfigError(f"{config.epochs} epochs is too many here; use at most 500.")
    if config.batch_size < 1:
        raise ConfigError(f"The batch size must be at least 1 (it is {config.batch_size}).")
    if not 0.0 <= config.validation_split < 0.9:
        raise ConfigError(
            f"The validation split must be between 0 and 0.9 (it is {config.validation_split:g})."
        )
    if config.weight_decay < 0:
        raise ConfigError("Weight decay cannot be negative.")
    if config.early_stopping < 0:
        raise ConfigError("Early-stopping patience cannot be negative.")
    if config.early_stopping and config.validation_split == 0:
        raise ConfigError(
            "Early stopping watches the validation loss: set a validation split above 0 "
            "or turn early stopping off."
        )
    if config.train_size < 0:
        raise ConfigError("The training subset size cannot be negative (0 means all images).")
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


# ---------------------------------------------------------------------- presets

PRESETS: dict[str, RunConfig] = {
    # Exactly the Keras tutorial: Flatten, Dense(128, relu), Dense(10) logits; adam; 10 epochs.
    "seed": RunConfig(),
    # One small convolution (8 filters) learns more per epoch than any dense layer did, and four
    # times the batch means a quarter of the steps: 0.89 in four epochs, under half seed's time.
    "fast": RunConfig(
        layers=(LayerSpec(kind="conv", filters=8, kernel_size=3), LayerSpec(units=128)),
        learning_rate=2e-3,
        batch_size=128,
        epochs=4,
    ),
    # Two conv blocks learn local shapes (collars, heels, straps). Sized for 2 CPU cores: six
    # epochs stay under 4 minutes (about 0.90); it keeps improving with more epochs.
    "cnn": RunConfig(
        layers=(
            LayerSpec(kind="conv", filters=32, kernel_size=3),
            LayerSpec(kind="conv", filters=64, kernel_size=3),
            LayerSpec(units=128, dropout=0.3),
        ),
        learning_rate=2e-3,
        batch_size=256,
        epochs=6,
    ),
}
PRESET_NOTES = {
    "seed": "the classic Keras tutorial network (about 0.88 test accuracy)",
    "fast": "one small convolution: the tutorial's accuracy in under half its time",
    "cnn": "two convolution blocks (about 0.90 in under 4 minutes on 2 cores)",
}


def preset(name: str) -> RunConfig:
    if name not in PRESETS:
        raise ConfigError(f"Unknown preset '{name}'. Choose one of: {', '.join(PRESETS)}.")
    return PRESETS[name]
