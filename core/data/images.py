"""Any uploaded picture -> the 28x28 input a Fashion-MNIST model expects, or a one-line refusal.

The steps follow how Zalando made Fashion-MNIST from product photos: trim the background (pixels
close to the border's colour), resize so the longest edge is 28 keeping the aspect ratio, centre
the object on a 28x28 canvas, grey, negated so the object is light on black. A photo of a dark
boot on a white table therefore ends up looking like the dataset's own boots. Pictures of an
imported dataset "as they are" become colour squares instead (prepare_square).

Nothing here imports TensorFlow or Streamlit: the page, the CLI and the tests share it.
"""

from __future__ import annotations

import io
import math
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from core.data.reading import (
    MAX_FILE_BYTES,
    SAMPLE_BITS,
    WORK_SIDE,
    ImageRefused,
    open_image,
    release_memory,
    too_big,
)
from core.errors import short_reason

if TYPE_CHECKING:
    from core.data.dataset import Dataset


SIDE = 28

# ... and no side longer than this: a 40,000,000 x 1 strip (a 39 KB PNG) is worked on 8192 wide,
# not 3 million. Only pictures over 256 times longer than wide notice.
WORK_LONGEST_SIDE = 16 * WORK_SIDE
# Large pictures are reduced this many source pixels at a time, so that colour conversions and
# float arithmetic never make a second full-size copy of the picture.
TILE_PIXELS = 500_000
# Pictures up to this size are turned upright before they are reduced, as they always were
# (see prepare); a JPEG decoded at reduced scale has both sides under 2 * WORK_SIDE.
TURN_FIRST_PIXELS = 2_000_000
# Pictures prepared at once in one process. Streamlit runs each session's script in its own
# thread, so without a bound N people uploading together need N times the peak memory (six
# hostile TIFFs once took the server from 295 MB to 6.3 GB). Two keep both cores of these
# machines busy, since Pillow decodes and resizes without holding the GIL; more would add
# memory, not speed. Preparing takes well under a second, so the others barely wait.
MAX_CONCURRENT_PREPARES = 2
_PREPARING = threading.BoundedSemaphore(MAX_CONCURRENT_PREPARES)

# Distance from the background colour below which a pixel counts as background. Zalando trimmed
# at 5 % of the intensity range; a little more tolerates JPEG noise and uneven light.
BACKGROUND_TOLERANCE = 0.08
# Pictures at least this big (in working pixels) lose specks up to 2 px wide before the object's
# box is found, so dust or JPEG blocks near a corner do not stretch the box.
SPECK_FILTER_MIN_SIDE = 100
# The dataset's objects nearly always reach full white somewhere (92 % of training images have
# a 255 pixel); this percentile of the object's ink is stretched to white to match.
INK_PERCENTILE = 99.0


@dataclass(frozen=True)
class PreparedImage:
    pixels: np.ndarray  # (28, 28) uint8, light object on black, as in the dataset
    preview: Image.Image  # the picture as read (upright, first frame), at most WORK_SIDE wide
    notes: tuple[str, ...] = field(default=())  # what was done to it, in plain words
    source_size: tuple[int, int] = (0, 0)  # width, height of the file's picture


# ------------------------------------------------------------------------- grey levels
def _work_size(width: int, height: int, side: int = WORK_SIDE) -> tuple[int, int] | None:
    """At most side x side pixels' worth, keeping the aspect ratio; None when already that small.

    By area rather than by the longest edge, so a long thin strip keeps enough pixels across.
    """
    scale = min((side * side / (width * height)) ** 0.5, WORK_LONGEST_SIDE / max(width, height))
    if scale >= 1:
        return None
    return max(1, round(width * scale)), max(1, round(height * scale))


Box = tuple[float, float, float, float]


def _tiles(img: Image.Image, size: tuple[int, int]) -> Iterator[tuple[Image.Image, Box, Box]]:
    """Yield (tile of the picture, the part of the reduced picture it makes, the box in the tile
    that part averages), covering a picture to be reduced to size.

    Reducing a tile at a time means nothing but the decoded picture is ever held at full size.
    The BOX filter averages exactly the source pixels under each reduced one, so reducing tile by
    tile gives the pixels that reducing the whole picture at once would. Tiles are whole bands of
    rows unless a picture is extremely wide.
    """
    width, height = img.size
    step_x, step_y = width / size[0], height / size[1]  # source pixels per reduced one
    rows = int(TILE_PIXELS / (width * step_y))
    cols = size[0] if rows >= 1 else max(1, int(TILE_PIXELS / (step_x * step_y)))
    for top in range(0, size[1], max(1, rows)):
        bottom = min(size[1], top + max(1, rows))
        y0, y1 = top * step_y, bottom * step_y
        first_y, last_y = int(y0), min(height, math.ceil(y1))
        for left in range(0, size[0], cols):
            right = min(size[0], left + cols)
            x0, x1 = left * step_x, right * step_x
            first_x, last_x = int(x0), min(width, math.ceil(x1))
            tile = img.crop((first_x, first_y, last_x, last_y))
            box = (x0 - first_x, y0 - first_y, x1 - first_x, y1 - first_y)
            yield tile, (left, top, right, bottom), box


def _averageable(img: Image.Image) -> Image.Image:
    """The picture in a mode whose pixels can be averaged and made grey: L, LA, RGB or RGBA."""
    mode = img.mode
    if mode == "P":
        return img.convert("RGBA" if "transparency" in img.info else "RGB")
    if mode in ("1", "CMYK", "YCbCr", "LAB", "HSV", "RGBX"):
        return img.convert("RGB")
    if mode in ("PA", "RGBa", "La"):
        return img.convert("RGBA")
    return img


ToUnit = Callable[[np.ndarray], np.ndarray]


def grey_levels(img: Image.Image, notes: list[str]) -> np.ndarray:
    """Luminance in 0..1 as float32 (H, W), area-averaged to WORK_SIDE x WORK_SIDE pixels' worth
    when bigger, with transparency composited onto a background.

    The background for transparent parts is whichever of white or black contrasts with the
    opaque pixels, so both a dark shoe cut-out and a light-on-transparent drawing stay visible.
    Works a tile (a band of rows) at a time: converting a whole 7000 x 7000 16-bit TIFF to
    float64 at once took 1 GB for a 170 KB file.
    """
    width, height = img.size
    size = _work_size(width, height) or (width, height)
    to_unit = _wide_to_unit(img) if img.mode in SAMPLE_BITS else None
    grey = np.empty((size[1], size[0]), np.float32)
    alpha = np.ones_like(grey)
    # Compositing is linear, so it is done once reduced: averaging grey * alpha and alpha, then
    # adding the background where the averaged alpha is short of 1, gives the same pixels.
    opaque_sum = alpha_sum = 0.0
    lowest_alpha = 1.0
    for tile, (left, top, right, bottom), box in _tiles(img, size):
        levels, cover = _levels(_averageable(tile), to_unit)
        part = (right - left, bottom - top)
        if cover is not None:
            levels = levels * cover
            opaque_sum += float(levels.sum(dtype=np.float64))
            alpha_sum += float(cover.sum(dtype=np.float64))
            lowest_alpha = min(lowest_alpha, float(cover.min()))
            alpha[top:bottom, left:right] = _resize(cover, part, box)
        grey[top:bottom, left:right] = _resize(levels, part, box)
    if lowest_alpha < 1.0:
        opaque_mean = opaque_sum / alpha_sum if alpha_sum > 0 else 0.0
        background = 1.0 if opaque_mean < 0.5 else 0.0
        grey += background * (1.0 - alpha)
        notes.append(f"transparent parts placed on {'white' if background else 'black'}")
    return grey


def _levels(tile: Image.Image, to_unit: ToUnit | None) -> tuple[np.ndarray, np.ndarray | None]:
    """Grey levels in 0..1 (float32) of a tile, and its alpha (None when it has none)."""
    if to_unit is not None:
        return to_unit(np.array(tile, dtype=np.float64)), None
    alpha = None
    if tile.mode in ("RGBA", "LA"):
        alpha = np.asarray(tile.getchannel("A"), dtype=np.float32) / 255.0
        tile = tile.convert("RGB" if tile.mode == "RGBA" else "L")
    return np.asarray(tile.convert("L"), dtype=np.float32) / 255.0, alpha


def _wide_to_unit(img: Image.Image) -> ToUnit:
    """A function taking a 16-bit, 32-bit or float picture's samples to 0..1, set by its range.

    Float pictures are stretched from their lowest to highest value (not-a-number counts as the
    lowest); integer ones are read as 16-bit when any value exceeds 255, else as 8-bit.
    """
    lowest = highest = np.nan
    for tile, *_ in _tiles(img, img.size):
        samples = np.asarray(tile).ravel()
        lowest = np.fmin(lowest, np.fmin.reduce(samples))  # fmin and fmax skip not-a-number
        highest = np.fmax(highest, np.fmax.reduce(samples))
    lo, hi = float(lowest), float(highest)
    divisor = 65535.0 if hi > 255 else 255.0

    def to_unit(samples: np.ndarray) -> np.ndarray:  # works in place on a tile's fresh copy
        if img.mode == "F":
            if not hi > lo:
                return np.zeros(samples.shape, np.float32)
            samples -= lo
            samples /= hi - lo
            np.nan_to_num(samples, copy=False)
        else:
            samples /= divisor
        return np.clip(samples, 0, 1, out=samples).astype(np.float32)

    return to_unit


def _resize(grey: np.ndarray, size: tuple[int, int], box: Box | None = None) -> np.ndarray:
    """Area-averaging resize of a float image (or of the box part of it) to (width, height)."""
    pic = Image.fromarray(np.asarray(grey, dtype=np.float32), mode="F")
    return np.asarray(pic.resize(size, Image.Resampling.BOX, box=box), dtype=np.float32)


def _shown(img: Image.Image) -> Image.Image:
    """The picture area-averaged like grey_levels does, in colour, for the preview."""
    size = _work_size(*img.size) or img.size
    shown = None
    for tile, (left, top, right, bottom), box in _tiles(img, size):
        part_size = (right - left, bottom - top)
        part = _averageable(tile).resize(part_size, Image.Resampling.BOX, box=box)
        if shown is None:
            shown = Image.new(part.mode, size)
        shown.paste(part, (left, top))
    return shown


def _shrink(grey: np.ndarray, side: int = WORK_SIDE) -> np.ndarray:
    """At most side x side pixels' worth, keeping the aspect ratio (a long thin strip stays)."""
    h, w = grey.shape
    size = _work_size(w, h, side)
    return grey if size is None else _resize(grey, size)


# ---------------------------------------------------------------------------- preprocessing
def _background_surface(grey: np.ndarray) -> tuple[np.ndarray, float]:
    """The background as a smooth surface fitted to the picture's border, and the border's noise.

    A quadratic surface rather than one level, because in a phone photo light falls across the
    table (one side darker) and off towards the corners (vignetting, which is quadratic in the
    distance from the centre). Fitted to the border only, where there is no object.
    """
    h, w = grey.shape
    ring = max(1, round(0.03 * min(h, w)))
    edge = np.zeros((h, w), dtype=bool)
    edge[:ring], edge[-ring:], edge[:, :ring], edge[:, -ring:] = True, True, True, True
    ys, xs = np.nonzero(edge)
    values = grey[ys, xs].astype(np.float64)

    def terms(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        u, v = 2.0 * x / max(w - 1, 1) - 1.0, 2.0 * y / max(h - 1, 1) - 1.0
        return np.stack([np.ones_like(u), u, v, u * u, v * v, u * v], axis=-1)

    design = terms(xs.astype(np.float64), ys.astype(np.float64))
    # Robust fit: start from the median, then fit only border pixels near the current surface,
    # so an object touching the border (a sleeve, a trouser leg) does not bend the background.
    coef = np.zeros(design.shape[1])
    coef[0] = np.median(values)
    for _ in range(4):
        residual = values - design @ coef
        spread = float(np.median(np.abs(residual - np.median(residual))))
        inliers = np.abs(residual) <= max(0.04, 3.0 * spread)
        if inliers.sum() < 4 * design.shape[1]:
            break
        coef, *_ = np.linalg.lstsq(design[inliers], values[inliers], rcond=None)
    residual = values - design @ coef
    noise = float(np.median(np.abs(residual)))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    surface = terms(xx, yy) @ coef
    return surface.astype(np.float32), noise


def _without_specks(mask: np.ndarray) -> np.ndarray:
    """Morphological opening with a 3x3 square: drops features narrower than 3 pixels."""
    h, w = mask.shape
    padded = np.pad(mask, 1)
    eroded = np.ones_like(mask)
    for dy in range(3):
        for dx in range(3):
            eroded &= padded[dy : dy + h, dx : dx + w]
    padded = np.pad(eroded, 1)
    opened = np.zeros_like(mask)
    for dy in range(3):
        for dx in range(3):
            opened |= padded[dy : dy + h, dx : dx + w]
    return opened


def _box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """[top, bottom) x [left, right) around the object's pixels, or None if there are none."""
    if min(mask.shape) >= SPECK_FILTER_MIN_SIDE:
        opened = _without_specks(mask)
        if opened.any():  # a drawing made only of thin lines keeps its lines
            mask = opened
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if not len(rows):
        return None
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def to_model_input(grey: np.ndarray, notes: list[str] | None = None) -> np.ndarray:
    """Grey levels (H, W) in 0..1 -> (28, 28) uint8 like a Fashion-MNIST image.

    Raises ImageRefused when nothing stands out from the background.
    """
    notes = notes if notes is not None else []
    grey = _shrink(np.asarray(grey, dtype=np.float32))
    background, noise = _background_surface(grey)
    tolerance = max(BACKGROUND_TOLERANCE, 4.0 * noise)
    # The object is whatever stands out from the background, lighter or darker: a black shoe
    # on a grey floor and a white shirt on a grey table both count. The side with more ink wins.
    lighter = np.clip(grey - background, 0.0, None)
    darker = np.clip(background - grey, 0.0, None)
    lighter[lighter < tolerance] = 0.0
    darker[darker < tolerance] = 0.0
    if darker.sum() > lighter.sum():  # the dataset has light objects on black: negate
        ink = darker
        notes.append("dark object: negated so it is light on black, like the data")
    else:
        ink = lighter
    box = _box(ink > 0)
    if box is None:
        raise ImageRefused(
            "found no object: the picture is blank or one flat colour, nothing stands out"
        )
    top, bottom, left, right = box
    ink = ink[top:bottom, left:right]
    ink = ink / max(float(np.percentile(ink[ink > 0], INK_PERCENTILE)), 1e-6)
    h, w = ink.shape
    scale = SIDE / max(h, w)
    new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
    small = _resize(ink, (new_w, new_h))
    canvas = np.zeros((SIDE, SIDE), dtype=np.float32)
    y0, x0 = (SIDE - new_h) // 2, (SIDE - new_w) // 2
    canvas[y0 : y0 + new_h, x0 : x0 + new_w] = small
    return np.clip(np.rint(canvas * 255.0), 0, 255).astype(np.uint8)


def prepare(data: bytes) -> PreparedImage:
    """File bytes -> PreparedImage, or ImageRefused with one sentence saying why not.

    At most MAX_CONCURRENT_PREPARES run at once in a process; the others wait their turn.
    """
    with _PREPARING:
        try:
            return _prepare(data)
        finally:
            release_memory()


def _prepare(data: bytes) -> PreparedImage:
    img, notes, source_size, turn = open_image(data)
    if turn is not None and img.width * img.height <= TURN_FIRST_PIXELS:
        # Small (as a JPEG is, decoded at reduced scale): turned first, as before. Pillow's box
        # filter settles ties at box edges differently along and across rows, so turning after
        # reducing can move a 28 x 28 result by a pixel; for big pictures it saves a copy.
        img, turn = img.transpose(turn), None
    grey = grey_levels(img, notes)
    shown = None if img.mode in SAMPLE_BITS else _shown(img)
    del img  # the decoded picture is the biggest thing held; the rest works on small ones
    if turn is not None:
        grey = np.asarray(Image.fromarray(grey).transpose(turn))
        shown = shown.transpose(turn) if shown is not None else None
    pixels = to_model_input(grey, notes)
    return PreparedImage(pixels, _preview(shown, grey), tuple(notes), source_size)


def _preview(shown: Image.Image | None, grey: np.ndarray) -> Image.Image:
    """The picture as a browser can show it: RGB(A), or the grey levels for 16-bit/float ones."""
    if shown is None:
        preview = Image.fromarray(np.clip(grey * 255.0, 0, 255).astype(np.uint8))
    else:
        preview = shown.convert("RGBA" if shown.mode in ("RGBA", "LA") else "RGB")
    preview.thumbnail((WORK_SIDE, WORK_SIDE))
    if max(preview.size) < 112:  # tiny (a dataset image): enlarge with crisp pixels for display
        factor = 112 // max(preview.size)
        preview = preview.resize(
            (preview.width * factor, preview.height * factor), Image.Resampling.NEAREST
        )
    return preview


def prepare_file(
    path: str | Path, how: Callable[[bytes], PreparedImage] | None = None
) -> PreparedImage:
    """Like prepare(), for a path; a missing or unreadable file is refused, never raised.

    how: prepares the file's bytes (default prepare; an imported dataset's own way, say)."""
    path = Path(path)
    try:
        if path.is_dir():
            raise ImageRefused("it is a folder, not a file")
        if path.exists() and not path.is_file():
            raise ImageRefused("it is not a regular file (a device, pipe or socket)")
        with path.open("rb") as handle:  # never read more than the limit, whatever stat says
            data = handle.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:
            raise too_big(max(path.stat().st_size, len(data)))
    except FileNotFoundError:
        raise ImageRefused("no such file") from None
    except PermissionError:
        raise ImageRefused("permission denied: the file cannot be read") from None
    except OSError as exc:
        raise ImageRefused(f"the file cannot be read ({short_reason(exc)})") from None
    return (how or prepare)(data)


# A picture whose colours all lie within this many levels (of 255) of each other is blank.
FLAT_LEVELS = 3


def prepare_square(data: bytes, side: int) -> PreparedImage:
    """File bytes -> a colour picture "as it is": (side, side, 3) uint8, letterboxed on black.

    The whole picture is kept (no cropping): it is reduced so that its longer edge is `side`
    and centred, the bars left over stay black. Transparent parts are placed on white, as a
    viewer shows them. Read through open_image, so every refusal of prepare() applies; a picture
    of one flat colour is refused as blank.
    """
    with _PREPARING:
        try:
            return _prepare_square(data, side)
        finally:
            release_memory()


def _prepare_square(data: bytes, side: int) -> PreparedImage:
    img, notes, source_size, turn = open_image(data)
    shown = _shown(img) if img.mode not in SAMPLE_BITS else None
    if shown is None:  # 16-bit and float pictures: their grey levels, stretched as prepare() does
        grey = grey_levels(img, notes)
        shown = Image.fromarray(np.clip(np.rint(grey * 255.0), 0, 255).astype(np.uint8))
    del img
    if turn is not None:
        shown = shown.transpose(turn)
    if shown.mode in ("RGBA", "LA"):
        white = Image.new("RGBA", shown.size, (255, 255, 255, 255))
        shown = Image.alpha_composite(white, shown.convert("RGBA"))
        notes.append("transparent parts placed on white")
    shown = shown.convert("RGB")
    scale = side / max(shown.size)
    size = (max(1, round(shown.width * scale)), max(1, round(shown.height * scale)))
    small = shown.resize(size, Image.Resampling.BOX if scale < 1 else Image.Resampling.BICUBIC)
    canvas = Image.new("RGB", (side, side))
    canvas.paste(small, ((side - size[0]) // 2, (side - size[1]) // 2))
    pixels = np.asarray(canvas, dtype=np.uint8)
    spread = np.ptp(np.asarray(small, dtype=np.int16).reshape(-1, 3), axis=0)
    if int(spread.max()) <= FLAT_LEVELS:
        raise ImageRefused("the picture is blank: one flat colour, nothing to learn from")
    if size[0] != size[1]:
        notes.append(f"letterboxed: {size[0]}x{size[1]} centred on a black {side}x{side} square")
    return PreparedImage(
        pixels, _preview(shown, np.zeros((1, 1), np.float32)), tuple(notes), source_size
    )


def encode_png(pixels: np.ndarray) -> bytes:
    """A uint8 array, grey (H, W) or RGBA (H, W, 4), as PNG bytes.

    Dataset images and drawings go through these bytes, so they take the uploads' path.
    """
    out = io.BytesIO()
    Image.fromarray(np.asarray(pixels, dtype=np.uint8)).save(out, format="PNG")
    return out.getvalue()


def prepare_picture(data: bytes, mode: str, size: int) -> PreparedImage:
    """One picture's bytes prepared as a dataset of this mode and size prepares its pictures."""
    if mode == "plain":
        return prepare_square(data, size)
    return prepare(data)


def prepare_for(dataset: Dataset, data: bytes) -> PreparedImage:
    """One uploaded picture prepared the way that dataset's pictures were.

    .pixels is shaped like one of dataset.x_train's images: (28, 28) grey or (S, S, 3) colour.
    Raises ImageRefused with the reason, as prepare does.
    """
    shape = dataset.input_shape
    return prepare_picture(data, getattr(dataset, "mode", "fashion"), int(shape[0]))
