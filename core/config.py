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
# Fields added since: they enter the run id only when set away from this value (which is what
# every earlier run did), so adding a field does not orphan the runs already stored.
ADDED_AFTER_V2 = {"conv_padding": "valid", "lr_schedule": "constant", "conv_downsample": "maxpool"}
PADDINGS = ("valid", "same")
DOWNSAMPLES = ("maxpool", "stride")
LR_SCHEDULES = ("constant", "cosine")
MAX_PARAMS = 20_000_000  # beyond this a 2-core machine trains for hours; refuse up front
ACTIVATIONS = ("relu", "tanh", "sigmoid", "elu", "gelu", "linear")
OPTIMIZERS = ("adam", "sgd", "rmsprop", "adamw")
BACKENDS = ("auto", "tensorflow", "jax", "torch")
LAYER_KINDS = ("dense", "conv")
MAX_DENSE_LAYERS = 8  # more than this trains no better on 28x28 images and only adds time
MAX_CONV_BLOCKS = 4  # four 2x2 poolings take 28x28 down to 1x1


class ConfigError(ValueError):
    """An impossible setting; the message is a sentence for the person who chose it."""


# ---------------------------------------------------------------------- the table of settings


@dataclass(frozen=True)
class Setting:
    """One setting: its type, allowed range or choices, label and help.

    validate(), the URL codec, the CLI's options and the sidebar's widgets are all made from these
    rows, so what one accepts the others can show. `stops` are the values a stepped slider offers;
    any other in-range value (from a link or the CLI) is still valid and is shown as it is.
    """

    name: str
    label: str
    type: type
    low: float | None = None
    high: float | None = None
    choices: tuple = ()
    stops: tuple = ()
    step: float | None = None
    log: bool = False
    zero_label: str = ""  # what 0 means when it is special ("all" images, "off")
    help: str = ""

    def parse(self, text: str):
        """A value from its URL/CLI text; ValueError with a short reason when it is not one."""
        text = str(text).strip()
        if self.type is bool:
            if text.lower() in ("1", "true", "yes", "on"):
                return True
            if text.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError("expected 1 or 0")
        if self.type is int:
            return int(text)
        if self.type is float:
            value = float(text)
            if not math.isfinite(value):
                raise ValueError("not a finite number")
            return value
        return text

    def format(self, value) -> str:
        """URL text of a value: floats with repr, so they come back bit for bit."""
        if self.type is bool:
            return "1" if value else "0"
        if self.type is float:
            text = repr(float(value))  # the shortest text that reads back bit for bit
            return text[:-2] if text.endswith(".0") else text
        return str(value)

    def problem(self, value) -> str | None:
        """None for an allowed value, else a sentence naming the setting and its range."""
        if self.choices and value not in self.choices:
            return f"{self.label}: '{value}' is not one of {', '.join(map(str, self.choices))}."
        if self.low is not None and value < self.low:
            return f"{self.label} must be at least {_show_number(self.low)} (it is {value!r})."
        if self.high is not None and value > self.high:
            return f"{self.label} must be at most {_show_number(self.high)} (it is {value!r})."
        return None

    def clamp(self, value):
        if self.low is not None and value < self.low:
            value = self.type(self.low)
        if self.high is not None and value > self.high:
            value = self.type(self.high)
        return value


def _show_number(value: float) -> str:
    return f"{value:,}" if float(value).is_integer() and abs(value) >= 1000 else f"{value:g}"


SETTINGS: dict[str, Setting] = {
    s.name: s
    for s in (
        Setting("dataset", "Dataset", str, help="Which images to learn from."),
        Setting(
            "train_size",
            "Training images",
            int,
            0,
            10_000_000,
            stops=(1000, 2000, 5000, 10000, 20000, 30000, 0),
            zero_label="all",
            help="A seeded random subset for quick experiments; 0 = every training image.",
        ),
        Setting(
            "validation_split",
            "Validation split",
            float,
            0.0,
            0.8,
            step=0.05,
            help="Held out from training to draw the validation curves.",
        ),
        Setting(
            "conv_padding",
            "Convolution padding",
            str,
            choices=PADDINGS,
            help="valid: each convolution trims kernel - 1 pixels off the feature map; "
            "same: pads the border so only halving (pooling or stride) shrinks it (deeper conv "
            "stacks fit).",
        ),
        Setting(
            "conv_downsample",
            "Halve feature maps by",
            str,
            choices=DOWNSAMPLES,
            help="How a conv block with 'Halve the feature map' on shrinks it. maxpool: a 2x2 "
            "max-pooling layer after the convolution keeps the strongest response. stride: the "
            "convolution itself steps 2 pixels at a time, so it computes a quarter of the "
            "positions and needs no pooling layer (much faster, on a CPU most of all).",
        ),
        Setting("batch_norm", "Batch normalisation", bool, help="After every hidden layer."),
        Setting("augment_flip", "Augment: random horizontal flip", bool),
        Setting(
            "augment_translate",
            "Augment: random shift (fraction)",
            float,
            0.0,
            0.5,
            step=0.05,
            help="Shift each training image by up to this fraction of its size.",
        ),
        Setting(
            "optimizer",
            "Optimizer",
            str,
            choices=OPTIMIZERS,
            help="sgd uses momentum 0.9; adamw decays weights separately from the gradient.",
        ),
        Setting(
            "learning_rate",
            "Learning rate (log scale)",
            float,
            1e-7,
            1e4,  # absurdly high on purpose: seeing a loss explode is a lesson too
            stops=(1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 2e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0),
            log=True,
            help="Step size of each update; adam's default is 0.001.",
        ),
        Setting(
            "lr_schedule",
            "Learning-rate schedule",
            str,
            choices=LR_SCHEDULES,
            help="constant: the same step size throughout. cosine: it falls smoothly from the "
            "learning rate to 0 over the run's epochs: large steps early, fine ones at the end, "
            "often more accuracy from the same epochs.",
        ),
        Setting(
            "batch_size",
            "Batch size",
            int,
            1,
            8192,
            stops=(8, 16, 32, 64, 128, 256, 512, 1024),
            help="Images per update.",
        ),
        Setting(
            "epochs",
            "Epochs",
            int,
            1,
            500,
            stops=(
                1,
                2,
                3,
                4,
                5,
                6,
                8,
                10,
                12,
                15,
                20,
                25,
                30,
                40,
                50,
                75,
                100,
                150,
                200,
                300,
                500,
            ),
            help="Passes over the training images.",
        ),
        Setting(
            "weight_decay",
            "L2 weight decay",
            float,
            0.0,
            0.1,
            stops=(0.0, 1e-5, 1e-4, 1e-3, 1e-2),
            zero_label="off",
            help="L2 penalty on kernels (decoupled decay for adamw).",
        ),
        Setting(
            "early_stopping",
            "Early stopping patience",
            int,
            0,
            50,
            zero_label="off",
            help="Stop after this many epochs without a better validation loss.",
        ),
        Setting("seed", "Random seed", int, 0, 2**31 - 1, help="Same seed, same run."),
        Setting(
            "backend",
            "Backend",
            str,
            choices=BACKENDS,
            help="The Keras backend that trains it; Auto picks the fastest for this network.",
        ),
    )
}
LAYER_SETTINGS: dict[str, Setting] = {
    s.name: s
    for s in (
        Setting("units", "Units", int, 1, 2048, help="Neurons in this dense layer."),
        Setting("activation", "Activation", str, choices=ACTIVATIONS),
        Setting("dropout", "Dropout", float, 0.0, 0.9, step=0.05, help="Share of outputs dropped."),
        Setting("filters", "Filters", int, 1, 256, stops=(4, 8, 16, 32, 64, 128, 256)),
        Setting("kernel_size", "Kernel size", int, 1, 9, help="Side of the square kernel."),
        Setting(
            "pool",
            "Halve the feature map",
            bool,
            help="By 2x2 max-pooling after the convolution, or by a stride of 2 in it: the "
            "'Halve feature maps by' setting decides.",
        ),
    )
}
CONV_FIELDS = ("filters", "kernel_size", "pool", "activation", "dropout")
DENSE_FIELDS = ("units", "activation", "dropout")


@dataclass(frozen=True)
class LayerSpec:
    """One hidden layer: a Dense layer, or a Conv2D block (conv, optionally halving the map by 2x2
    max-pooling or by stride 2, as RunConfig.conv_downsample says)."""

    kind: str = "dense"
    units: int = 128  # dense: neurons
    activation: str = "relu"
    dropout: float = 0.0  # fraction of this layer's outputs dropped while training
    filters: int = 32  # conv: feature maps
    kernel_size: int = 3  # conv: square kernel side
    pool: bool = True  # conv: 2x2 max-pooling after the convolution

    @property
    def fields(self) -> tuple[str, ...]:
        return CONV_FIELDS if self.kind == "conv" else DENSE_FIELDS

    def encode(self) -> str:
        """dense:UNITS:ACTIVATION:DROPOUT or conv:FILTERS:KERNEL:pool|nopool:ACTIVATION:DROPOUT."""
        parts = [self.kind]
        for name in self.fields:
            value = getattr(self, name)
            if name == "pool":
                parts.append("pool" if value else "nopool")
            else:
                parts.append(LAYER_SETTINGS[name].format(value))
        return ":".join(parts)

    @classmethod
    def decode(cls, text: str) -> LayerSpec:
        parts = text.strip().split(":")
        kind = parts[0]
        names = CONV_FIELDS if kind == "conv" else DENSE_FIELDS if kind == "dense" else ()
        if names and len(parts) == len(names) + 1:
            values = {}
            try:
                for name, part in zip(names, parts[1:], strict=True):
                    if name == "pool":
                        if part not in ("pool", "nopool"):
                            raise ValueError(part)
                        values[name] = part == "pool"
                    else:
                        values[name] = LAYER_SETTINGS[name].parse(part)
                return cls(kind=kind, **values)
            except ValueError:
                pass
        raise ConfigError(
            f"'{text}' is not a layer. Write dense:UNITS:ACTIVATION:DROPOUT or "
            "conv:FILTERS:KERNEL:pool|nopool:ACTIVATION:DROPOUT."
        )

    def describe(self, downsample: str = "maxpool") -> str:
        if self.kind == "conv":
            text = f"Conv{self.kernel_size}x{self.kernel_size}({self.filters}"
            text += f", {self.activation})" if self.activation != "relu" else ")"
            if self.pool:
                text += "/stride2" if downsample == "stride" else "+pool"
        else:
            text = f"Dense({self.units}, {self.activation})"
        return text + (f"+drop{self.dropout:g}" if self.dropout else "")


@dataclass(frozen=True)
class RunConfig:
    """Everything that decides a run's result. Equal configs (on equal data) are the same run."""

    # data
    dataset: str = "fashion_mnist"
    train_size: int = 0  # 0 = every training image; smaller for quick experiments
    validation_split: float = 0.0  # tutorial trains on everything and only tests at the end
    # architecture: hidden layers in order; the output layer (one unit per class) is always added
    layers: tuple[LayerSpec, ...] = (LayerSpec(),)
    conv_padding: str = "valid"  # Conv2D padding: "valid" trims the border, "same" keeps the size
    conv_downsample: str = "maxpool"  # how a block with pool=True halves: "maxpool" or "stride" 2
    batch_norm: bool = False  # after every hidden layer, before its activation
    augment_flip: bool = False  # random horizontal flip, training only
    augment_translate: float = 0.0  # random shift as a fraction of the image, training only
    # training
    optimizer: str = "adam"
    learning_rate: float = 1e-3  # Keras's adam default, the tutorial's setting
    lr_schedule: str = "constant"  # "cosine": decays to 0 over the run's steps (CosineDecay)
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
            try:
                values["layers"] = tuple(
                    layer if isinstance(layer, LayerSpec) else LayerSpec(**layer)
                    for layer in values["layers"]
                )
            except TypeError as exc:
                raise ConfigError(f"A layer in this config cannot be read ({exc}).") from None
        return cls(**values)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, indent=2)

    @classmethod
    def from_json(cls, text: str) -> RunConfig:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"This is not a config: not valid JSON ({exc.msg}).") from None
        if not isinstance(data, dict):
            raise ConfigError("This is not a config: expected a JSON object of settings.")
        return cls.from_dict(data)

    def run_id_for(self, data_id: str) -> str:
        """Stable content hash of the config *and* the data it trains on (Dataset.fingerprint).

        Same config on the same images: the same id, on any machine, whichever folder the images
        came from. Other data (the bundled sample, an imported set): another id.
        """
        fields = self.to_dict()
        for name, default in ADDED_AFTER_V2.items():
            if fields[name] == default:  # so every run stored before the field existed keeps its id
                del fields[name]
        payload = json.dumps(
            {"version": CONFIG_VERSION, "data": data_id, **fields},
            sort_keys=True,
            separators=(",", ":"),
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:12]

    def replace(self, **changes) -> RunConfig:
        return dataclasses.replace(self, **changes)

    @property
    def has_conv(self) -> bool:
        return any(layer.kind == "conv" for layer in self.layers)

    # ------------------------------------------------------------------ URL form
    def to_params(self) -> dict[str, str]:
        """Flat dict of strings, one entry per field (layers as a compact comma list)."""
        params = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "layers":
                params["layers"] = ",".join(layer.encode() for layer in value)
            else:
                params[f.name] = SETTINGS[f.name].format(value)
        return params

    @classmethod
    def from_params(
        cls, params: dict[str, str], base: RunConfig | None = None
    ) -> tuple[RunConfig, list[str]]:
        """Parse query parameters leniently; never fails, never changes a value silently.

        A value that cannot be read, or an unknown choice, keeps the base value; a number outside
        its range is clamped into it. Each such change comes back as a notice naming the setting
        and both values.
        """
        base = base or cls()
        values: dict = {}
        notices: list[str] = []
        for name, text in params.items():
            if name == "layers":
                try:
                    layers, layer_notices = _parse_layers(str(text))
                    values["layers"] = layers
                    notices += layer_notices
                except ConfigError as exc:
                    notices.append(
                        f"Ignored layers={text!r} ({exc}); using {_show(base.layers)} instead."
                    )
                continue
            setting = SETTINGS.get(name)
            if setting is None:
                notices.append(f"Ignored unknown setting '{name}'.")
                continue
            try:
                value = setting.parse(str(text))
            except ValueError as exc:
                notices.append(
                    f"Ignored {name}={text!r} ({exc}); using {_show(getattr(base, name))} instead."
                )
                continue
            value, notice = _fit(setting, value, name, getattr(base, name))
            values[name] = value
            if notice:
                notices.append(notice)
        return base.replace(**values), notices

    # ------------------------------------------------------------------ description
    def describe(self) -> str:
        layers = (layer.describe(self.conv_downsample) for layer in self.layers)
        return " → ".join(layers) or "no hidden layer"


def _fit(setting: Setting, value, where: str, fallback):
    """(value, notice): a value made allowed by its setting, and the notice if it changed."""
    if setting.choices and value not in setting.choices:
        return fallback, (
            f"Ignored {where}={value!r}: not one of {', '.join(setting.choices)}; "
            f"using {_show(fallback)} instead."
        )
    clamped = setting.clamp(value)
    if clamped != value:
        side = "smallest" if clamped > value else "largest"
        return clamped, (
            f"{setting.label}: {value!r} from the link is outside what is allowed; "
            f"using the {side} allowed value, {clamped!r}."
        )
    return value, None


def _parse_layers(text: str) -> tuple[tuple[LayerSpec, ...], list[str]]:
    notices = []
    layers = []
    for index, part in enumerate((p for p in text.split(",") if p.strip()), start=1):
        layer = LayerSpec.decode(part)
        changes = {}
        for name in layer.fields:
            value, notice = _fit(
                LAYER_SETTINGS[name],
                getattr(layer, name),
                f"layer {index} {name}",
                getattr(LayerSpec(), name),
            )
            if notice:
                notices.append(f"Layer {index}: {notice}")
                changes[name] = value
        layers.append(dataclasses.replace(layer, **changes))
    conv = [layer for layer in layers if layer.kind == "conv"]
    dense = [layer for layer in layers if layer.kind == "dense"]
    if len(conv) > MAX_CONV_BLOCKS or len(dense) > MAX_DENSE_LAYERS:
        notices.append(
            f"The link has {len(conv)} convolution block(s) and {len(dense)} dense layer(s); "
            f"the playground builds at most {MAX_CONV_BLOCKS} and {MAX_DENSE_LAYERS}, so the "
            "last ones were dropped."
        )
        conv, dense = conv[:MAX_CONV_BLOCKS], dense[:MAX_DENSE_LAYERS]
    ordered = conv + dense
    if ordered != layers[: len(ordered)] and len(ordered) == len(layers):
        notices.append(
            "The link had a convolution block after a dense layer; convolution blocks were "
            "moved first (a convolution needs an image, not a flat vector)."
        )
    return tuple(ordered), notices


def _show(value) -> str:
    if isinstance(value, tuple):
        return ",".join(layer.encode() for layer in value) or "(none)"
    return repr(value) if isinstance(value, float) else str(value)


# ---------------------------------------------------------------------- shapes and parameters


@dataclass(frozen=True)
class LayerRow:
    name: str
    output_shape: tuple[int, ...]
    params: int


def layer_table(
    config: RunConfig, input_shape: tuple[int, ...] = (28, 28), num_classes: int = 10
) -> list[LayerRow]:
    """The model's layers with output shapes and parameter counts (core.plan's layer plan)."""
    from core.plan import layer_table as plan_table  # local: core.plan imports core.config

    return plan_table(config, input_shape, num_classes)


def count_params(
    config: RunConfig, input_shape: tuple[int, ...] = (28, 28), num_classes: int = 10
) -> int:
    from core.plan import count_params as plan_count

    return plan_count(config, input_shape, num_classes)


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
    Ranges and choices come from SETTINGS / LAYER_SETTINGS, the same table the widgets use.
    """
    from core.datasets import dataset_names, known_dataset  # local: config imports on its own

    if not known_dataset(config.dataset):
        raise ConfigError(
            f"Unknown dataset '{config.dataset}'. Choose one of: {', '.join(dataset_names())}."
        )
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


# ---------------------------------------------------------------------- presets

PRESETS: dict[str, RunConfig] = {
    # Exactly the Keras tutorial: Flatten, Dense(128, relu), Dense(10) logits; adam; 10 epochs.
    "seed": RunConfig(),
    # Twice the units, batches of 256 (a quarter of the steps, each one cheap per image) and a
    # learning rate that starts 3x higher and falls to 0 along a cosine: 0.88 in 6 short epochs
    # (measured here, JAX, seed 42: 0.884; with a constant rate the same 6 epochs give 0.877).
    "fast": RunConfig(
        layers=(LayerSpec(units=256),),
        learning_rate=3e-3,
        lr_schedule="cosine",
        batch_size=256,
        epochs=6,
    ),
    # Two conv blocks learn local shapes (collars, heels, straps). Each halves its map by a stride
    # of 2, not a pooling layer, so it computes a quarter of the positions: on a 2-core EPYC an
    # epoch took 11 s where conv + max-pooling took 23 s (TensorFlow). Same padding keeps 7x7x64
    # features; dropout keeps the dense layer from memorising; the cosine schedule ends with fine
    # steps. Measured there (seed 42, through the CLI): 0.919 after 10 epochs in 1.3-1.6x the
    # tutorial script's time; the pooled net it replaced reached 0.914 in 3.5x.
    "cnn": RunConfig(
        layers=(
            LayerSpec(kind="conv", filters=32, kernel_size=3),
            LayerSpec(kind="conv", filters=64, kernel_size=3),
            LayerSpec(units=128, dropout=0.3),
        ),
        conv_padding="same",
        conv_downsample="stride",
        learning_rate=2e-3,
        lr_schedule="cosine",
        batch_size=128,
        epochs=10,
    ),
    # VGG-style: two convolutions before each pooling see 5x5 patterns cheaply; batch norm lets a
    # higher learning rate work and dropout after each stage fights the overfitting cnn shows.
    # Same padding keeps 7x7x64 features for the dense layer: 0.937 after 15 epochs on an H100
    # (JAX, seed 42), where the valid-padded version (4x4x64) stopped at 0.921.
    "best": RunConfig(
        layers=(
            LayerSpec(kind="conv", filters=32, kernel_size=3, pool=False),
            LayerSpec(kind="conv", filters=32, kernel_size=3, dropout=0.25),
            LayerSpec(kind="conv", filters=64, kernel_size=3, pool=False),
            LayerSpec(kind="conv", filters=64, kernel_size=3, dropout=0.25),
            LayerSpec(units=256, dropout=0.5),
        ),
        conv_padding="same",
        batch_norm=True,
        learning_rate=2e-3,
        batch_size=128,
        epochs=15,
    ),
}
PRESET_NOTES = {
    "seed": "the classic Keras tutorial network (about 0.88 test accuracy)",
    "fast": "a wider dense layer: the tutorial's accuracy in a fraction of its time",
    "cnn": "two strided convolution blocks (about 0.92)",
    "best": "a VGG-style network with batch norm (0.937 in 25 s on an H100; long on a CPU)",
}


def preset(name: str) -> RunConfig:
    if name not in PRESETS:
        raise ConfigError(f"Unknown preset '{name}'. Choose one of: {', '.join(PRESETS)}.")
    return PRESETS[name]
