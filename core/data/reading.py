"""Reading a picture file: the first frame decoded, upright, or a one-line refusal of why not.

Every limit is checked before the pixels are decoded where it can be (file size, the pixel count
a header claims, the formats allowed), so a decompression bomb or a hostile file costs nothing.
"""

from __future__ import annotations

import ctypes
import io
import math
import os
import warnings

from PIL import Image, UnidentifiedImageError

from core.errors import PlaygroundError, short_reason

# Keep in step with server.maxUploadSize in .streamlit/config.toml (a test compares them).
MAX_FILE_MB = 10
# In megabytes of 1,000,000 bytes, as Streamlit's uploader counts them: its browser side shows
# "10MB per file" and turns bigger files away using 1000 per step (1024 only in browsers on
# Windows; the server's own backstop is 1024 * 1024 plus 1 MB of slack). Counting the same way
# here makes the app and the CLI refuse the same files, with the same number in the sentence.
MAX_FILE_BYTES = MAX_FILE_MB * 1_000_000
# Checked from the header, before any pixel is decoded: a 48-MP phone photo passes, a
# decompression bomb (a small file that claims a huge canvas) does not.
MAX_PIXELS = 50_000_000
# Grey pictures with 16- or 32-bit samples (scientific TIFFs, 16-bit PNGs) take 2 or 4 bytes a
# pixel once decoded, so they get the 50 MB that the largest 8-bit grey picture takes. Real
# ones within the file-size limit hold far fewer pixels; a 170 KB 7000 x 7000 16-bit TIFF,
# mostly one flat colour, is the kind of file these caps turn away.
SAMPLE_BITS = {"I;16": 16, "I;16B": 16, "I;16L": 16, "I;16N": 16, "I": 32, "F": 32}
MAX_PIXELS_BY_BITS = {16: 25_000_000, 32: 12_500_000}
# Large pictures are analysed at this size; 28x28 is the goal, so nothing is lost.
WORK_SIDE = 512

# glibc keeps memory that a thread frees in that thread's own pool, handing straight back to
# the system only blocks above a threshold that rises to 32 MB as big blocks are freed. So each
# session's thread would keep its last picture's worth: six 50-MP PNGs at once took 860 MB, not
# the 410 of two. Hence one allocation per decoded picture however big (Pillow's default is
# 16 MB blocks), which is always handed back, and a trim of the pools after each picture, which
# takes well under a millisecond. With both, six at once take what two take.
if "PILLOW_BLOCK_SIZE" not in os.environ:  # an operator's own setting wins
    Image.core.set_block_size(256 * 1024 * 1024)
try:
    _malloc_trim = ctypes.CDLL(None).malloc_trim
except (OSError, AttributeError, TypeError):  # not glibc: nothing to trim, or no way to
    _malloc_trim = None


def release_memory() -> None:
    """Hand the memory freed by the last picture back to the system (see above); a no-op where
    the C library has no malloc_trim."""
    if _malloc_trim is not None:
        _malloc_trim(0)


# Readers allowed to open a file. Pillow knows dozens of rarer formats; each is attack surface.
# (Multi-picture JPEGs from some cameras open through the JPEG reader as "MPO".)
Image.init()
FORMATS = tuple(f for f in ("PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF", "AVIF") if f in Image.OPEN)
FORMAT_NAMES = "PNG, JPEG, GIF, BMP, WebP or TIFF"


class ImageRefused(PlaygroundError, ValueError):
    """A file that cannot be classified; str(exc) is one sentence for the user."""


# ---------------------------------------------------------------------------------- reading
def _sniff(data: bytes) -> str | None:
    """A refusal for well-known non-pictures, more helpful than "unrecognised format"."""
    head = data[:1024].lstrip().lower()
    if head.startswith(b"%pdf"):
        return "it is a PDF document, not a picture; export the page as PNG or JPEG"
    if b"<svg" in head or (head.startswith(b"<?xml") and b"svg" in data[:4096].lower()):
        return "it is an SVG vector drawing; export it as PNG first"
    if data[4:8] == b"ftyp" and data[8:12] in (b"heic", b"heix", b"mif1", b"msf1", b"hevc"):
        return "HEIC photos are not supported here; share or export the photo as JPEG"
    return None


SIGNATURES = {
    b"\x89PNG\r\n\x1a\n": "PNG",
    b"\xff\xd8\xff": "JPEG",
    b"GIF87a": "GIF",
    b"GIF89a": "GIF",
    b"BM": "BMP",
    b"II*\x00": "TIFF",
    b"MM\x00*": "TIFF",
}


def _claimed_format(data: bytes) -> str | None:
    """The format a file's first bytes announce, whether or not the rest is intact."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WebP"
    return next((name for sig, name in SIGNATURES.items() if data.startswith(sig)), None)


def _looks_like_text(data: bytes) -> bool:
    sample = data[:4096]
    try:
        text = sample.decode("utf-8")
    except UnicodeDecodeError:
        return False
    printable = sum(ch.isprintable() or ch in "\r\n\t" for ch in text)
    return printable >= 0.95 * max(1, len(text))


def open_image(
    data: bytes,
) -> tuple[Image.Image, list[str], tuple[int, int], Image.Transpose | None]:
    """Decode the first frame of a picture; raise ImageRefused with the reason.

    Returns the picture as stored (a big JPEG decoded at reduced scale), notes on what was done,
    the file's own width and height as a viewer shows them, and the turn that makes the picture
    upright. The turn is left to the caller, to apply once the picture is small: turning copies.
    """
    if not data:
        raise ImageRefused("the file is empty")
    if len(data) > MAX_FILE_BYTES:
        raise too_big(len(data))
    sniffed = _sniff(data)
    if sniffed:
        raise ImageRefused(sniffed)
    notes: list[str] = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data), formats=FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageRefused(
            "the picture claims an enormous size (a decompression bomb); it was not opened"
        ) from None
    except UnidentifiedImageError:
        claimed = _claimed_format(data)
        if claimed:
            raise ImageRefused(f"the file starts like a {claimed} but is corrupt") from None
        if _looks_like_text(data):
            raise ImageRefused(f"it is a text file, not a picture ({FORMAT_NAMES})") from None
        raise ImageRefused(f"it is not a picture this app can read; use {FORMAT_NAMES}") from None
    except Exception as exc:  # a damaged header can make any reader raise anything
        claimed = _claimed_format(data)
        start = f"the file starts like a {claimed} but" if claimed else "the file"
        raise ImageRefused(f"{start} is corrupt ({short_reason(exc)})") from None
    width, height = img.size
    if width < 1 or height < 1:
        raise ImageRefused("the picture has no pixels")
    if img.format in ("JPEG", "MPO"):
        img.draft(None, (WORK_SIDE, WORK_SIDE))  # decode a big photo at 1/2, 1/4 or 1/8 scale
    _check_pixel_cap(img, width, height)
    if getattr(img, "is_animated", False) and img.format != "MPO":  # MPO: a stereo/preview pair
        notes.append(f"animated: used the first of its {img.n_frames} frames")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img.load()
    except Exception as exc:
        raise ImageRefused(f"the file is truncated or corrupt ({short_reason(exc)})") from None
    turn = None
    try:
        orientation = img.getexif().get(0x0112, 1)
        turn = ORIENTATIONS.get(orientation)  # 1 is upright; 0 and 9 are not valid values
    except Exception:  # a broken EXIF block must not cost the picture itself
        notes.append("its EXIF data is damaged; orientation left as stored")
    if turn is not None:
        if orientation in (5, 6, 7, 8):  # quarter turns swap width and height
            width, height = height, width
        notes.append("turned upright using the photo's orientation tag")
    return img, notes, (width, height), turn


# What each EXIF orientation value asks a viewer to do (the table ImageOps.exif_transpose uses).
ORIENTATIONS = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def _check_pixel_cap(img: Image.Image, width: int, height: int) -> None:
    """Refuse, from the header alone, a picture whose decoded pixels would take too much memory.

    The cap is on what will be decoded: for a JPEG that is the reduced draft size.
    """
    bits = SAMPLE_BITS.get(img.mode, 8)
    cap = MAX_PIXELS_BY_BITS.get(bits, MAX_PIXELS)
    if img.size[0] * img.size[1] <= cap:
        return
    claimed = f"{width:,} × {height:,} pixels"
    megapixels = f"{width * height / 1e6:,.0f} megapixels"
    if bits == 8:
        raise ImageRefused(
            f"the picture claims {claimed} ({megapixels}); the limit is {cap / 1e6:.0f}, "
            "so it was not decoded (a guard against decompression bombs)"
        )
    raise ImageRefused(
        f"the picture claims {claimed} of {bits} bits ({megapixels}); the limit for "
        f"{bits}-bit pictures is {cap / 1e6:g} megapixels, so it was not decoded (it would take "
        "too much memory)"
    )


def too_big(size: int) -> ImageRefused:
    # Rounded up, so that a file just over the limit never reads "10.0 MB; the limit is 10 MB".
    shown = math.ceil(size / 100_000) / 10
    return ImageRefused(f"the file is {shown:.1f} MB; the limit is {MAX_FILE_MB} MB")
