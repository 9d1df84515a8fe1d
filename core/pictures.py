"""Arrays -> small RGB or grey pictures for the pages (numpy only: no Keras, no Streamlit)."""

from __future__ import annotations

import numpy as np

# Layers that only pass data through at inference time, or reshape it: not worth a picture.
PLUMBING = ("Reshape", "Flatten", "Dropout", "RandomFlip", "RandomTranslation")


def upscale(picture: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour enlargement, so a browser shows crisp pixels instead of a blur."""
    return np.repeat(np.repeat(picture, factor, axis=0), factor, axis=1)


def diverging_rgb(values: np.ndarray, limit: float | None = None) -> np.ndarray:
    """Blue (negative) - white (zero) - red (positive) colouring of a 2-D array, as uint8 RGB."""
    limit = limit or float(np.abs(values).max()) or 1.0
    t = np.clip(values / limit, -1.0, 1.0)[..., None]
    white = np.array([255.0, 255.0, 255.0])
    red, blue = np.array([213.0, 94.0, 0.0]), np.array([0.0, 114.0, 178.0])  # Okabe-Ito
    rgb = np.where(t >= 0, white + (red - white) * t, white + (blue - white) * (-t))
    return rgb.astype(np.uint8)


def saliency_overlay(pixels: np.ndarray, saliency: np.ndarray) -> np.ndarray:
    """The 28x28 input in grey with the saliency painted over it (red for, blue against)."""
    grey = np.repeat(pixels[..., None].astype(np.float64) * 0.6, 3, axis=2)
    limit = float(np.abs(saliency).max()) or 1.0
    strength = np.clip(np.abs(saliency) / limit, 0, 1)[..., None]
    colour = np.where(
        saliency[..., None] >= 0, np.array([255.0, 60.0, 0.0]), np.array([0.0, 140.0, 255.0])
    )
    return (grey * (1 - strength) + colour * strength).astype(np.uint8)


def tile(
    pictures: np.ndarray, columns: int, factor: int = 1, gap: int = 2, fill: int = 255
) -> np.ndarray:
    """Enlarge (n, h, w[, 3]) pictures by `factor` and arrange them in a grid with thin gaps."""
    pictures = np.stack([upscale(p, factor) for p in pictures]) if factor > 1 else pictures
    n, h, w = pictures.shape[:3]
    columns = max(1, min(columns, n))
    rows = -(-n // columns)
    extra = pictures.shape[3:]
    grid = np.full((rows * (h + gap) - gap, columns * (w + gap) - gap, *extra), fill, np.uint8)
    for i, picture in enumerate(pictures):
        r, c = divmod(i, columns)
        grid[r * (h + gap) : r * (h + gap) + h, c * (w + gap) : c * (w + gap) + w] = picture
    return grid


def grey_picture(values: np.ndarray) -> np.ndarray:
    """Scale any 2-D array to 0..255 uint8 (min black, max white) to show its pattern."""
    lo, hi = float(values.min()), float(values.max())
    if hi <= lo:
        return np.zeros(values.shape, np.uint8)
    return ((values - lo) / (hi - lo) * 255).astype(np.uint8)
