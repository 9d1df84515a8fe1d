"""Dataset: images and labels as uint8 arrays, where they came from, and a fingerprint of them."""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass

import numpy as np

from core.errors import PlaygroundError


class DataError(PlaygroundError):
    """A data source exists but cannot be used; the message names the file and the fault."""


class DatasetUnavailable(PlaygroundError):
    """No source of a dataset could be loaded; the message lists what was tried."""


@dataclass(frozen=True)
class Dataset:
    """Images as uint8 arrays (N, H, W), labels as uint8 (N,), and where they came from."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]
    source: str  # short key: env, keras-cache, debian, download, sample, imported
    source_detail: str  # where exactly (a path or a sentence)
    problems: tuple[str, ...] = ()  # sources tried before this one and why they failed
    # How pictures become input: "fashion" (28x28 grey, light on dark; the built-ins) or "plain"
    # (colour squares, letterboxed); an uploaded picture is prepared the same way (imports.py).
    mode: str = "fashion"

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def channels(self) -> int:
        return 1 if self.x_train.ndim == 3 else int(self.x_train.shape[-1])

    @property
    def is_sample(self) -> bool:
        return self.source == "sample"

    @property
    def is_imported(self) -> bool:
        return self.source == "imported"

    @functools.cached_property
    def fingerprint(self) -> str:
        """Identity of the content (not the source): part of every run id trained on it.

        The same images from Keras's cache or Debian's folder give the same fingerprint; the
        bundled sample and the full set give different ones. About 0.03 s for Fashion-MNIST on a
        2-core EPYC (SHA-NI), none when the data cache kept it (with_known_fingerprint).
        An imported dataset's is its folder's name; renaming the dataset does not change it.
        """
        tag = imported_tag(self.mode, self.class_names) if self.is_imported else self.name
        arrays = {"x_train": self.x_train, "y_train": self.y_train}
        arrays |= {"x_test": self.x_test, "y_test": self.y_test}
        return content_fingerprint(tag, arrays)

    def with_known_fingerprint(self, fingerprint: str) -> Dataset:
        """This Dataset, its fingerprint given rather than hashed: only for a value computed by
        this property from these very arrays (the data cache keeps it beside its checked copy).

        Stored where functools.cached_property keeps its value, so dataclasses.replace, which
        builds a new Dataset from the fields, never carries it over to other arrays.
        """
        self.__dict__["fingerprint"] = fingerprint
        return self


def content_fingerprint(tag: str, arrays: dict[str, np.ndarray]) -> str:
    """sha256 of a tag and the four arrays (dtype, shape and bytes), 16 hex digits."""
    digest = hashlib.sha256(tag.encode())
    for key in ("x_train", "y_train", "x_test", "y_test"):
        array = arrays[key]
        digest.update(str((array.dtype.str, array.shape)).encode())
        digest.update(np.ascontiguousarray(array).data)
    return digest.hexdigest()[:16]


def imported_tag(mode: str, class_names) -> str:
    """What an imported dataset's fingerprint covers besides the pixels: not its (changeable)
    name, but how the pictures were prepared and what the classes are called."""
    return "imported:" + json.dumps([mode, list(class_names)], ensure_ascii=False)
