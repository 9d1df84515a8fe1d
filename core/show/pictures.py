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


def signed_rgb(values: np.ndarray, limit: float | None = None) -> np.ndarray:
    """Colour weights (H, W, 3) as a picture: mid-grey is zero, each channel brighter where its
    weight is positive and darker where negative, so a filter that looks for red shows red."""
    limit = limit or float(np.abs(values).max()) or 1.0
    return (127.5 + 127.5 * np.clip(values / limit, -1.0, 1.0)).astype(np.uint8)


def weight_picture(values: np.ndarray, limit: float | None = None) -> np.ndarray:
    """One unit's or filter's weights as RGB: diverging for grey input, signed_rgb for colour."""
    return signed_rgb(values, limit) if values.ndim == 3 else diverging_rgb(values, limit)


def saliency_overlay(pixels: np.ndarray, saliency: np.ndarray) -> np.ndarray:
    """The input (grey (H, W) or colour (H, W, 3)), dimmed, with the saliency painted over it
    (red for, blue against)."""
    pixels = pixels.astype(np.float64)
    base = (pixels if pixels.ndim == 3 else np.repeat(pixels[..., None], 3, axis=2)) * 0.6
    limit = float(np.abs(saliency).max()) or 1.0
    strength = np.clip(np.abs(saliency) / limit, 0, 1)[..., None]
    colour = np.where(
        saliency[..., None] >= 0, np.array([255.0, 60.0, 0.0]), np.array([0.0, 140.0, 255.0])
    )
    return (base * (1 - strength) + colour * strength).astype(np.uint8)


def lit_picture(image: np.ndarray, activation: np.ndarray) -> np.ndarray:
    """A colour image (H, W, 3) lit by one feature map (h, w): bright where the map is strong.

    Feature maps of colour input are still one number per spot; laid over the picture they show
    which coloured parts the filter answers to. The map is stretched to the image's size by
    nearest neighbour (a pooled map covers blocks of pixels).
    """
    height, width = image.shape[:2]
    rows = np.arange(height) * activation.shape[0] // height
    cols = np.arange(width) * activation.shape[1] // width
    light = grey_picture(activation)[rows][:, cols].astype(np.float64) / 255.0
    return (image.astype(np.float64) * light[..., None]).astype(np.uint8)


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
