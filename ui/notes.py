"""Words and small tables about what is on screen: the layer table, how long training should take,
which backend trains it, how pictures become input, a dataset's name for people.
"""

from __future__ import annotations

import pandas as pd

from core.data.dataset import Dataset, DatasetUnavailable
from core.data.registry import dataset_title
from core.learn.pace import estimate_seconds
from core.runtime import BACKEND_LABELS, resolve
from core.spec.config import RunConfig
from core.spec.plan import layer_table
from core.spec.validate import fit_size
from core.store import RunStore


def dataset_label(name: str) -> str:
    """The dataset's title for people; a name no longer registered (deleted) as it is."""
    try:
        return dataset_title(name)
    except (KeyError, DatasetUnavailable):
        return name


def layer_frame(config: RunConfig, data: Dataset) -> pd.DataFrame:
    rows = layer_table(config, data.input_shape, data.num_classes)
    return pd.DataFrame(
        {
            "layer": [r.name for r in rows],
            "output shape": [" × ".join(str(d) for d in r.output_shape) for r in rows],
            "parameters": [r.params for r in rows],
        }
    )


def time_note(config: RunConfig, data: Dataset, store: RunStore) -> str:
    """How long training should take here, said before it starts."""
    seconds, basis = estimate_seconds(
        config, data.input_shape, fit_size(config, len(data.x_train)), store.list_runs()
    )
    text = f"about {_duration(seconds)} here ({basis})"
    if seconds > 120:
        text += "; a GPU trains it in seconds to a minute"
    return text


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def backend_note(config: RunConfig) -> str:
    """Which backend will train it, and why (auto's pick is named)."""
    try:
        chosen = resolve(config)
    except Exception as exc:  # BackendUnavailable: the sidebar already says so
        return str(exc)
    name = BACKEND_LABELS[chosen]
    return f"backend {name} (auto's pick)" if config.backend == "auto" else f"backend {name}"


def picture_size(data: Dataset) -> str:
    """What one network input is, in words: "28×28 grey", "32×32 colour"."""
    height, width = data.input_shape[:2]
    return f"{height}×{width} " + ("colour" if len(data.input_shape) == 3 else "grey")


def preparation(data: Dataset) -> str:
    """How a picture becomes this dataset's input, in words."""
    if data.mode == "fashion":
        how = "trimmed to the object, shrunk, centred, negated to light-on-black"
    else:
        how = "kept whole, in colour, shrunk and padded to a square"
    return f"each picture becomes a {picture_size(data)} square ({how})"
