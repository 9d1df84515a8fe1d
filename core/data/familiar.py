"""Whether a picture looks like the training images: class means and spreads, and plain doubts."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# ------------------------------------------------------------------------- far from the data
INK_LEVEL = 25  # a pixel above this (of 255) counts as part of the object


@dataclass(frozen=True)
class Reference:
    """What the training images look like, to say when a picture is unlike all of them."""

    class_means: np.ndarray  # (classes, 28*28) float32 in 0..1
    distance_limits: np.ndarray  # (classes,) distance to the class mean that 99 % stay within
    ink_range: tuple[float, float]  # share of non-black pixels: 0.5th and 99.5th percentiles


def reference_from(x_train: np.ndarray, y_train: np.ndarray, num_classes: int) -> Reference:
    """Class means and spreads of the training images, one class at a time (modest memory)."""
    means, limits = [], []
    for c in range(num_classes):
        members = x_train[y_train == c].reshape(-1, x_train[0].size)
        mean = members.mean(axis=0, dtype=np.float64) / 255.0
        distances = np.concatenate(
            [
                np.linalg.norm(chunk.astype(np.float32) / 255.0 - mean, axis=1)
                for chunk in np.array_split(members, max(1, len(members) // 2000))
            ]
        )
        means.append(mean)
        limits.append(np.percentile(distances, 99))
    ink = (x_train.reshape(len(x_train), -1) > INK_LEVEL).mean(axis=1)
    return Reference(
        np.stack(means).astype(np.float32),
        np.array(limits),
        (float(np.percentile(ink, 0.5)), float(np.percentile(ink, 99.5))),
    )


UNSURE_BELOW = 0.5  # a top probability under this is called a guess


def doubts(
    pixels: np.ndarray, probabilities: np.ndarray, class_names, reference: Reference
) -> list[str]:
    """Plain sentences saying why an answer deserves distrust (empty when nothing stands out)."""
    found = []
    best = int(np.argmax(probabilities))
    if probabilities[best] < UNSURE_BELOW:
        found.append(
            f"the network is unsure: its best guess, {class_names[best]}, has only "
            f"{probabilities[best]:.0%}"
        )
    flat = pixels.reshape(-1).astype(np.float32) / 255.0
    ink = float((pixels > INK_LEVEL).mean())
    low, high = reference.ink_range
    if ink < low:
        found.append(
            f"the object covers only {ink:.0%} of the square, less than nearly every training "
            "image (thin lines or a tiny object)"
        )
    elif ink > high:
        found.append(
            f"the object covers {ink:.0%} of the square, more than nearly every training image "
            "(a busy background may have been taken for the object)"
        )
    distance = float(np.linalg.norm(flat - reference.class_means[best]))
    if distance > reference.distance_limits[best]:
        found.append(
            f"it looks unlike the training images of {class_names[best]}: further from their "
            "average than 99 % of them, so the answer may be wrong"
        )
    return found
