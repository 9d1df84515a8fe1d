"""The table of settings: every setting's type, range or choices, label and help, in one place.

validate(), the URL codec, the CLI's options, the sweeps' search space and the sidebar's widgets
are all made from these rows, so what one accepts the others can show.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from core.errors import PlaygroundError

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


class ConfigError(PlaygroundError, ValueError):
    """An impossible setting; the message is a sentence for the person who chose it."""


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
