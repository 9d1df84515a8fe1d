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


def phone_photo(pixels: np.ndarray, rng: np.random.Generator) -> bytes:
    """A 12-megapixel phone-style JPEG: a brown object on a white table, with uneven light.

    Like a phone, it stores the picture sideways with an EXIF orientation tag; the table has a
    fine texture, the light falls off towards the corners (vignetting), and the object casts a
    soft shadow.
    """
    from PIL import ImageFilter

    width, height = 4032, 3024
    side = 1400
    amount = (
        np.asarray(
            Image.fromarray(pixels).resize((side, side), Image.Resampling.BICUBIC), dtype=np.float32
        )[..., None]
        / 255.0
    )
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    radius = np.hypot((xx - width / 2) / (width / 2), (yy - height / 2) / (height / 2))
    light = 1.0 - 0.12 * radius**2  # vignetting: corners about 20 % darker than the centre
    texture = Image.fromarray(rng.normal(0, 6, (height // 8, width // 8)).astype(np.float32))
    texture = np.asarray(texture.resize((width, height), Image.Resampling.BICUBIC))
    table = (232.0 + texture) * light
    scene = np.repeat(table[..., None], 3, axis=2)
    x0, y0 = int(rng.integers(300, width - side - 300)), int(rng.integers(200, height - side - 200))
    shadow = Image.fromarray((amount[..., 0] * 255).astype(np.uint8)).filter(
        ImageFilter.GaussianBlur(40)
    )
    shade = np.asarray(shadow, dtype=np.float32)[..., None] / 255.0 * 0.35
    sy, sx = y0 + 60, x0 + 40  # the light comes from the upper left
    scene[sy : sy + side, sx : sx + side] *= 1.0 - shade
    leather = np.array([115.0, 72.0, 40.0]) * (0.85 + 0.3 * amount)  # lighter where thicker
    patch = scene[y0 : y0 + side, x0 : x0 + side]
    scene[y0 : y0 + side, x0 : x0 + side] = patch * (1 - amount) + leather * amount
    scene += rng.normal(0, 2.5, scene.shape).astype(np.float32)  # sensor noise
    picture = Image.fromarray(np.clip(scene, 0, 255).astype(np.uint8), mode="RGB")
    stored = picture.transpose(Image.Transpose.ROTATE_90)  # sideways, as the sensor saw it
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to view"
    out = io.BytesIO()
    stored.save(out, format="JPEG", quality=88, exif=exif)
    return out.getvalue()
