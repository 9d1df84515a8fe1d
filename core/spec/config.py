"""RunConfig: one frozen description of a whole run (data, architecture, training).

The config is plain data: it hashes to a run id and round-trips through JSON and a flat dict of
strings (URL query parameters) without importing TensorFlow. Shapes and parameter counts are in
core.spec.plan, validation in core.spec.validate, the presets in core.spec.presets.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass

from core.spec.settings import (
    CONV_FIELDS,
    DENSE_FIELDS,
    LAYER_SETTINGS,
    MAX_CONV_BLOCKS,
    MAX_DENSE_LAYERS,
    SETTINGS,
    ConfigError,
    Setting,
)

CONFIG_VERSION = 2  # bump when the meaning of a field changes, so old run ids stop matching
# Fields added since: they enter the run id only when set away from this value (which is what
# every earlier run did), so adding a field does not orphan the runs already stored.
ADDED_AFTER_V2 = {"conv_padding": "valid", "lr_schedule": "constant", "conv_downsample": "maxpool"}


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
