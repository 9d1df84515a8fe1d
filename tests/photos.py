"""Photo-like pictures made from real dataset images, for tests and benchmarks.

A Fashion-MNIST image is a light object on black. A phone photo of the same garment is a dark,
coloured object, much larger, somewhere on a light and slightly uneven background, saved as JPEG.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

# Garment colours (sRGB): navy, brown, red, dark green, charcoal, denim.
COLOURS = ((30, 40, 110), (100, 60, 30), (170, 30, 40), (30, 90, 50), (50, 50, 55), (60, 90, 140))


def photo_like(pixels: np.ndarray, rng: np.random.Generator, fmt: str = "JPEG") -> bytes:
    """Upscale, negate onto a light background, tint, place off-centre on a bigger canvas."""
    scale = int(rng.integers(6, 13))
    side = 28 * scale
    ink = Image.fromarray(pixels).resize((side, side), Image.Resampling.BICUBIC)
    amount = np.asarray(ink, dtype=np.float32)[..., None] / 255.0
    width = int(rng.integers(side + 40, side * 2 + 80))
    height = int(rng.integers(side + 40, side * 2))
    # a light table with a gentle gradient and sensor noise
    tone = rng.uniform(215, 250)
    ramp = np.linspace(0, rng.uniform(-15, 15), width, dtype=np.float32)[None, :, None]
    canvas = tone + ramp + rng.normal(0, 2.0, (height, width, 1)).astype(np.float32)
    canvas = np.repeat(canvas, 3, axis=2)
    colour = np.asarray(COLOURS[int(rng.integers(len(COLOURS)))], dtype=np.float32)
    x0 = int(rng.integers(0, width - side + 1))
    y0 = int(rng.integers(0, height - side + 1))
    patch = canvas[y0 : y0 + side, x0 : x0 + side]
    canvas[y0 : y0 + side, x0 : x0 + side] = patch * (1 - amount) + colour * amount
    picture = Image.fromarray(np.clip(canvas, 0, 255).astype(np.uint8), mode="RGB")
    out = io.BytesIO()
    picture.save(out, format=fmt, **({"quality": 85} if fmt == "JPEG" else {}))
    return out.getvalue()
