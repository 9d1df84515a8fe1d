"""Folders of pictures and zips of them, made in the tests: real Fashion-MNIST images saved as
PNG/JPEG, coloured shapes drawn with Pillow, and hostile zips (slip, bomb, lies, floods)."""

from __future__ import annotations

import io
import struct
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

SHAPES = ("circle", "square", "triangle")
# Each shape's colour family (hue jittered per picture): colour must survive "as they are".
SHAPE_COLOURS = {"circle": (200, 40, 40), "square": (40, 170, 60), "triangle": (50, 70, 210)}


def encode(pixels: np.ndarray, fmt: str = "PNG") -> bytes:
    out = io.BytesIO()
    options = {"quality": 95} if fmt == "JPEG" else {}
    Image.fromarray(np.asarray(pixels, dtype=np.uint8)).save(out, format=fmt, **options)
    return out.getvalue()


def fashion_entries(data, classes: tuple[int, ...], per_class: int) -> dict[str, bytes]:
    """The first per_class training images of each class, alternately PNG and JPEG, by class
    folder (class names made folder-safe: "T-shirt/top" -> "T-shirt-top")."""
    entries = {}
    for c in classes:
        folder = data.class_names[c].replace("/", "-")
        for rank, index in enumerate(np.flatnonzero(data.y_train == c)[:per_class]):
            fmt = "PNG" if rank % 2 == 0 else "JPEG"
            entries[f"{folder}/{index:05d}.{fmt.lower()}"] = encode(data.x_train[index], fmt)
    return entries


def shape_picture(shape: str, rng: np.random.Generator, side: int = 96) -> bytes:
    """One shape at a random size and position on a random grey background (light or dark)."""
    level = int(rng.integers(0, 256))
    background = tuple(int(np.clip(level + rng.integers(-15, 16), 0, 255)) for _ in range(3))
    img = Image.new("RGB", (side, side), background)
    draw = ImageDraw.Draw(img)
    size = int(rng.integers(side // 4, side * 3 // 4))
    x0, y0 = (int(v) for v in rng.integers(0, side - size, 2))
    colour = tuple(int(np.clip(v + rng.integers(-30, 31), 0, 255)) for v in SHAPE_COLOURS[shape])
    box = (x0, y0, x0 + size, y0 + size)
    if shape == "circle":
        draw.ellipse(box, fill=colour)
    elif shape == "square":
        draw.rectangle(box, fill=colour)
    else:
        draw.polygon([(x0, y0 + size), (x0 + size, y0 + size), (x0 + size // 2, y0)], fill=colour)
    return encode(np.asarray(img), "PNG" if rng.random() < 0.5 else "JPEG")


def shape_entries(per_class: int, seed: int = 0) -> dict[str, bytes]:
    rng = np.random.default_rng(seed)
    return {
        f"{shape}/{i:04d}.png": shape_picture(shape, rng)
        for shape in SHAPES
        for i in range(per_class)
    }


def flat_picture(level: int, rng: np.random.Generator) -> bytes:
    """A small picture with a random smudge (so no two are byte-equal)."""
    pixels = np.full((28, 28), level, np.uint8)
    y, x = (int(v) for v in rng.integers(4, 20, 2))
    pixels[y : y + 6, x : x + 6] = 255 - level
    pixels[0, 0] = int(rng.integers(0, 256))
    return encode(pixels)


def simple_entries(counts: dict[str, int], seed: int = 0) -> dict[str, bytes]:
    """class -> n distinct small pictures (a light square somewhere on black)."""
    rng = np.random.default_rng(seed)
    return {f"{c}/{i:03d}.png": flat_picture(0, rng) for c, n in counts.items() for i in range(n)}


def write_zip(path: Path, entries: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, data in entries.items():
            archive.writestr(zipfile.ZipInfo(name, (2024, 1, 1, 0, 0, 0)), data, compression)
    return path


def zip_bytes(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    write_zip(buffer, entries)
    return buffer.getvalue()


def write_folder(root: Path, entries: dict[str, bytes]) -> Path:
    for name, data in entries.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def add_bomb(path: Path, name: str, size: int) -> None:
    """Append an entry of `size` zero bytes, deflated (about 1000 times smaller)."""
    chunk = bytes(1 << 20)
    info = zipfile.ZipInfo(name, (2024, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(path, "a") as archive:
        with archive.open(info, "w") as out:
            for _ in range(size // len(chunk)):
                out.write(chunk)


def declare_size(path: Path, name: str, size: int) -> None:
    """Rewrite the uncompressed size an entry declares, in its local header and in the central
    directory alike, leaving the packed bytes as they are: a zip that lies about itself."""
    raw = bytearray(path.read_bytes())
    encoded = name.encode()
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(name)
    local = info.header_offset
    assert raw[local : local + 4] == b"PK\x03\x04"
    struct.pack_into("<I", raw, local + 22, size)
    central = raw.find(b"PK\x01\x02")
    while central >= 0:
        name_length = struct.unpack_from("<H", raw, central + 28)[0]
        if raw[central + 46 : central + 46 + name_length] == encoded:
            struct.pack_into("<I", raw, central + 24, size)
            break
        central = raw.find(b"PK\x01\x02", central + 4)
    else:
        raise AssertionError(f"{name} is not in the central directory")
    path.write_bytes(bytes(raw))


def many_entries(path: Path, count: int) -> Path:
    """A zip of `count` one-byte entries, stored (no compression), in class folders."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for i in range(count):
            archive.writestr(f"c{i % 2}/{i}.png", b"x")
    return path
