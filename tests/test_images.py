"""core/data/images.py: photo-like pictures are classified like the originals; bad files are
refused."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import threading
import time
import tomllib
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.data import images, reading
from core.data.familiar import doubts, reference_from
from core.data.images import encode_png, prepare, prepare_file
from core.data.reading import ImageRefused
from tests.photos import phone_photo, photo_like

ROOT = Path(__file__).resolve().parent.parent


def save(picture: Image.Image, fmt: str, **options) -> bytes:
    out = io.BytesIO()
    picture.save(out, format=fmt, **options)
    return out.getvalue()


def negated_rgb(pixels: np.ndarray) -> Image.Image:
    """A dataset image as a dark object on white, 8 times larger (a clean product shot)."""
    return Image.fromarray(255 - pixels).resize((224, 224), Image.Resampling.BICUBIC).convert("RGB")


@pytest.fixture(scope="module")
def garments(full_data):
    """A trouser, an ankle boot and a bag from the test set."""
    pick = {c: int(np.flatnonzero(full_data.y_test == c)[0]) for c in (1, 8, 9)}
    return {c: full_data.x_test[i] for c, i in pick.items()}


# ------------------------------------------------------------------- classified as well
@pytest.mark.slow
def test_photo_like_images_are_classified_within_five_points(trained, full_data):
    from core.learn import explain
    from core.store import RunStore

    home, dense, conv = trained
    store = RunStore(home)
    rng = np.random.default_rng(0)
    chosen = rng.choice(len(full_data.x_test), 500, replace=False)
    photos = [photo_like(full_data.x_test[i], rng) for i in chosen]
    assert all(p[:3] == b"\xff\xd8\xff" for p in photos)  # really JPEG files
    big = Image.open(io.BytesIO(photos[0]))
    assert big.mode == "RGB" and min(big.size) >= 200  # colour, large
    prepared = np.stack([prepare(p).pixels for p in photos])
    truth = full_data.y_test[chosen]
    for run in (dense, conv):
        model = store.load_model(run.run_id)
        original = (
            explain.probabilities(model, full_data.x_test[chosen]).argmax(1) == truth
        ).mean()
        photo = (explain.probabilities(model, prepared).argmax(1) == truth).mean()
        print(f"{run.config.describe()}: originals {original:.3f}, photo-like {photo:.3f}")
        assert original > 0.75  # a real, trained model
        assert abs(original - photo) <= 0.05


@pytest.mark.slow
def test_a_phone_photo_of_a_boot_on_a_white_table(trained, full_data):
    """12 MP, stored sideways with an EXIF tag, vignetting, a shadow, brown leather, JPEG."""
    from core.learn import explain
    from core.store import RunStore

    home, dense, _ = trained
    model = RunStore(home).load_model(dense.run_id)
    boots = np.flatnonzero(full_data.y_test == 9)[:10]
    known = boots[explain.probabilities(model, full_data.x_test[boots]).argmax(1) == 9]
    assert len(known) >= 5
    rng = np.random.default_rng(4)
    for index in known[:3]:
        data = phone_photo(full_data.x_test[index], rng)
        assert len(data) < reading.MAX_FILE_BYTES
        result = prepare(data)
        assert result.source_size == (4032, 3024)  # upright; the file stores 3024 x 4032
        p = explain.probabilities(model, result.pixels[None])[0]
        assert full_data.class_names[int(p.argmax())] == "Ankle boot", p.round(3)
        saliency = explain.occlusion_saliency(model, result.pixels, 9)
        peak = np.unravel_index(np.argmax(saliency), saliency.shape)
        assert result.pixels[peak] > 0  # what drove the answer is on the boot
        assert saliency[saliency > 0].sum() > -saliency[saliency < 0].sum()


def test_a_dataset_image_keeps_its_place_and_size(full_data):
    """Already 28x28, light on black and filling the frame: the object's box stays where it is."""
    same = 0
    for index in range(100):
        original = full_data.x_test[index]
        again = prepare(encode_png(original)).pixels
        boxes = []
        for picture in (original, again):
            ink = picture > 30
            rows, cols = np.flatnonzero(ink.any(1)), np.flatnonzero(ink.any(0))
            boxes.append(np.array([rows[0], rows[-1], cols[0], cols[-1]]))
        same += int(np.abs(boxes[0] - boxes[1]).max() <= 1)
    assert same >= 95


def test_object_is_trimmed_scaled_and_centred(garments):
    """A small boot in a corner of a big white photo fills the 28x28 like the dataset's boots."""
    boot = Image.fromarray(255 - garments[9]).resize((120, 120))
    canvas = Image.new("L", (900, 600), 240)
    canvas.paste(boot, (700, 40))
    result = prepare(save(canvas, "PNG"))
    ink = result.pixels > 0
    rows, cols = np.flatnonzero(ink.any(1)), np.flatnonzero(ink.any(0))
    assert max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1 >= 27  # longest edge fills the side
    assert abs((rows[0] + rows[-1]) / 2 - 13.5) <= 1 and abs((cols[0] + cols[-1]) / 2 - 13.5) <= 1
    assert any("negated" in note for note in result.notes)


# -------------------------------------------------------------------------- bad files
def png_with_size(width: int, height: int) -> bytes:
    """A real 1-bit PNG of the given size, all black: tiny on disk, huge once decoded."""
    row = b"\x00" + b"\x00" * ((width + 7) // 8)
    compressor = zlib.compressobj(9)
    body = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")
        )

    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([1, 0, 0, 0, 0])
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")
    )


def corrupt_png(garments) -> bytes:
    data = bytearray(save(negated_rgb(garments[1]), "PNG"))
    start = data.index(b"IDAT") + 4
    data[start + 50 : start + 250] = bytes(200)  # zeroes in the middle of the compressed pixels
    return bytes(data)


BAD = {
    "empty": (lambda g: b"", "empty"),
    "text": (lambda g: b"Ankle boot, size 42, brown leather\n" * 20, "text file"),
    "svg": (
        lambda g: b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><rect/></svg>',
        "SVG",
    ),
    "random bytes": (lambda g: np.random.default_rng(3).bytes(5000), "not a picture"),
    "pdf": (lambda g: b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n", "PDF"),
    "heic": (lambda g: b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64), "HEIC"),
    "truncated jpeg": (
        lambda g: save(negated_rgb(g[9]), "JPEG", quality=90)[:1500],
        "truncated or corrupt",
    ),
    "corrupt png": (corrupt_png, "corrupt"),
    "png signature, then garbage": (lambda g: b"\x89PNG\r\n\x1a\n" + bytes(40), "like a PNG"),
    "bomb beyond Pillow's own limit": (lambda g: png_with_size(20_000, 20_000), "bomb"),
    "bomb under Pillow's limit, over ours": (lambda g: png_with_size(9_000, 9_000), "bomb"),
    "over the upload limit": (
        lambda g: b"\x89PNG\r\n\x1a\n" + bytes(reading.MAX_FILE_BYTES),
        f"limit is {reading.MAX_FILE_MB} MB",
    ),
    "blank white": (lambda g: save(Image.new("RGB", (300, 200), "white"), "PNG"), "no object"),
    "blank grey jpeg": (
        lambda g: save(Image.new("RGB", (640, 480), (128, 128, 128)), "JPEG"),
        "no object",
    ),
    "one pixel": (lambda g: save(Image.new("L", (1, 1), 0), "PNG"), "no object"),
}


@pytest.mark.parametrize("kind", list(BAD))
def test_bad_files_are_refused_with_one_sentence(kind, garments):
    make, expected = BAD[kind]
    data = make(garments)
    with pytest.raises(ImageRefused) as caught:
        prepare(data)
    message = str(caught.value)
    assert expected.lower() in message.lower(), message
    assert "\n" not in message and "Traceback" not in message and len(message) < 200


PEAK_CODE = """
import json, resource, sys, threading
sys.path.insert(0, {root!r})
from core.data.reading import ImageRefused
from core.data.images import prepare_file
outcomes = []

def one():
    try:
        result = prepare_file({path!r})
        outcomes.append({{"pixels": result.pixels.tolist(), "notes": result.notes}})
    except ImageRefused as exc:
        outcomes.append({{"refused": str(exc)}})

before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
threads = [threading.Thread(target=one) for _ in range({sessions})]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
assert len(outcomes) == {sessions} and all(o == outcomes[0] for o in outcomes)
outcome = outcomes[0]
outcome["grown_mb"] = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
print(json.dumps(outcome))
"""


def peak_of_preparing(path: Path, sessions: int = 1) -> dict:
    """prepare_file() in a fresh process: its outcome and how far its peak memory grew (MB).

    With sessions > 1, that many threads prepare the file at once, as Streamlit's sessions would.

    The process is started by a shell that forks it. Started straight from pytest, it would
    inherit pytest's own peak as its ru_maxrss (Linux keeps it across exec), hiding any growth
    below that.
    """
    code = PEAK_CODE.format(root=str(ROOT), path=str(path), sessions=sessions)
    out = subprocess.run(
        ["/bin/sh", "-c", '"$0" -c "$1"; exit $?', sys.executable, code],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_bombs_are_refused_before_decoding(tmp_path):
    """The pixel cap applies to the header: refusing an 81-MP bomb never allocates its pixels."""
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_with_size(9_000, 9_000))
    assert bomb.stat().st_size < 200_000  # small on disk, 81 MB once decoded
    outcome = peak_of_preparing(bomb)
    message = outcome["refused"]
    assert "81 megapixels" in message and "not decoded" in message
    assert outcome["grown_mb"] < 20, f"peak memory grew by {outcome['grown_mb']:.0f} MB"


def test_a_big_jpeg_is_decoded_at_reduced_scale_not_refused():
    """80 MP is over the cap, but a JPEG decodes at 1/8 scale: only 1.25 MP are decoded."""
    picture = Image.new("L", (10_000, 8_000), 235)
    picture.paste(30, (3_000, 2_000, 7_000, 6_500))
    result = prepare(save(picture, "JPEG", quality=80))
    assert result.source_size == (10_000, 8_000)
    assert max(result.preview.size) <= reading.WORK_SIDE


def test_objects_on_mid_tone_backgrounds_are_found():
    """A black shoe on a grey floor, a white shirt on a grey table: both stand out."""
    for background, garment in ((115, 25), (100, 10), (140, 240), (128, 200)):
        picture = np.full((300, 400), background, np.uint8)
        picture[60:240, 120:260] = garment
        result = prepare(save(Image.fromarray(picture), "PNG"))
        assert result.pixels[14, 14] == 255 and result.pixels[0, 0] == 0, (background, garment)
        assert any("negated" in n for n in result.notes) == (garment < background)


def test_missing_file_folder_and_device_are_refused(tmp_path):
    with pytest.raises(ImageRefused, match="no such file"):
        prepare_file(tmp_path / "absent.png")
    with pytest.raises(ImageRefused, match="folder"):
        prepare_file(tmp_path)
    with pytest.raises(ImageRefused, match="not a regular file"):
        prepare_file("/dev/zero")  # endless: reading it whole would never finish


def test_upload_limit_matches_streamlit_config():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["maxUploadSize"] == reading.MAX_FILE_MB


# ------------------------------------------------------------------ odd but valid files
def close(a: np.ndarray, b: np.ndarray, tolerance: float = 6.0) -> bool:
    return float(np.abs(a.astype(int) - b.astype(int)).mean()) < tolerance


def test_sixteen_bit_png_matches_eight_bit(garments):
    grey = np.asarray(negated_rgb(garments[9]).convert("L"), dtype=np.uint16)
    wide = Image.fromarray(grey * 257)  # 16-bit: the full 0..65535 range
    data16 = save(wide, "PNG")
    assert Image.open(io.BytesIO(data16)).mode.startswith("I")
    result = prepare(data16)
    assert close(
        result.pixels, prepare(save(Image.fromarray(grey.astype(np.uint8)), "PNG")).pixels, 1.0
    )
    shown = np.asarray(result.preview.convert("L"), dtype=float)
    assert shown.std() > 20  # the boot is visible in the preview, not clipped to white


def test_cmyk_palette_and_other_formats_match_rgb(garments):
    base = negated_rgb(garments[9])
    reference = prepare(save(base, "PNG")).pixels
    variants = {
        "cmyk jpeg": save(base.convert("CMYK"), "JPEG", quality=95),
        "palette png": save(base.convert("P", palette=Image.Palette.ADAPTIVE), "PNG"),
        "tiff": save(base, "TIFF"),
        "webp": save(base, "WEBP", lossless=True),
        "bmp": save(base, "BMP"),
        "grey gif": save(base.convert("L"), "GIF"),
    }
    for name, data in variants.items():
        assert close(prepare(data).pixels, reference), name


def test_exif_orientation_is_applied(garments):
    upright = negated_rgb(garments[9])
    # stored rotated, with the tag that tells viewers to turn it back (6 = rotate 90° clockwise)
    stored = upright.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    result = prepare(save(stored, "JPEG", quality=95, exif=exif))
    assert close(result.pixels, prepare(save(upright, "JPEG", quality=95)).pixels)
    assert any("orientation" in note for note in result.notes)
    assert result.preview.size == upright.size
    exif[0x0112] = 9  # not a valid orientation: nothing is turned, nothing claimed
    odd = prepare(save(upright, "JPEG", quality=95, exif=exif))
    assert not any("orientation" in note for note in odd.notes)


def test_animated_gif_uses_first_frame(garments):
    first, second = negated_rgb(garments[1]).convert("L"), negated_rgb(garments[8]).convert("L")
    data = save(first, "GIF", save_all=True, append_images=[second], duration=200, loop=0)
    result = prepare(data)
    assert close(result.pixels, prepare(save(first, "GIF")).pixels, 1.0)
    assert not close(result.pixels, prepare(save(second, "GIF")).pixels)
    assert any("first of its 2 frames" in note for note in result.notes)


def test_transparency_is_composited_on_a_contrasting_background(garments):
    # cut-outs: the boot's ink is its opacity, in black (RGBA) and in white (grey + alpha)
    alpha = Image.fromarray(garments[9]).resize((224, 224), Image.Resampling.BICUBIC)
    black = Image.new("L", (224, 224), 0)
    dark_on_clear = Image.merge("RGBA", [black, black, black, alpha])
    light_on_clear = Image.merge("LA", [Image.new("L", (224, 224), 255), alpha])
    reference = prepare(save(negated_rgb(garments[9]), "PNG")).pixels
    for picture, background in ((dark_on_clear, "white"), (light_on_clear, "black")):
        result = prepare(save(picture, "PNG"))
        assert close(result.pixels, reference, 12.0), background
        assert any(f"placed on {background}" in note for note in result.notes)


def test_a_thin_line_drawing_is_not_taken_for_blank():
    """1-pixel pencil lines on a big page: the speck filter must not erase the whole object."""
    page = Image.new("L", (800, 800), 255)
    for x in (300, 500):
        page.paste(0, (x, 100, x + 1, 700))  # two legs, one pixel wide
    page.paste(0, (300, 100, 501, 101))
    result = prepare(save(page, "PNG"))
    assert (result.pixels > 0).any(axis=1).sum() >= 27  # the lines span the height


def test_extreme_shapes_do_not_crash():
    line = Image.new("L", (2000, 8), 255)
    line.paste(0, (100, 2, 1900, 6))
    flat = prepare(save(line, "PNG")).pixels
    assert (flat > 0).any(axis=0).sum() == 28 and (flat > 0).any(axis=1).sum() <= 2
    tall = Image.new("L", (3, 900), 0)
    tall.paste(255, (1, 100, 2, 800))
    thin = prepare(save(tall, "PNG")).pixels
    assert (thin > 0).any(axis=1).sum() == 28 and (thin > 0).any(axis=0).sum() <= 2


# ---------------------------------------------------------------- far from the training data
def test_doubts_flag_noise_but_not_confident_test_images(trained, full_data):
    from core.learn import explain
    from core.store import RunStore

    home, dense, _ = trained
    model = RunStore(home).load_model(dense.run_id)
    reference = reference_from(full_data.x_train, full_data.y_train, full_data.num_classes)
    names = full_data.class_names
    noise = np.random.default_rng(1).integers(0, 256, (20, 28, 28)).astype(np.uint8)
    tests = full_data.x_test[:200]
    p_noise, p_tests = explain.probabilities(model, noise), explain.probabilities(model, tests)
    flagged_noise = [bool(doubts(x, p, names, reference)) for x, p in zip(noise, p_noise)]
    flagged_tests = [bool(doubts(x, p, names, reference)) for x, p in zip(tests, p_tests)]
    assert all(flagged_noise)
    assert np.mean(flagged_tests) < 0.2
    unsure = np.full(10, 0.1)
    assert "unsure" in " ".join(doubts(tests[0], unsure, names, reference))


# ------------------------------------------------------------------ memory from tiny uploads
def tiff_of(mode: str, side: int) -> bytes:
    """A side x side grey TIFF, one flat colour but for a dark upright box in the middle.

    Compressed, it is a few hundred KB however many megapixels it claims.
    """
    background, garment = {"I;16": (50_000, 8_000), "F": (0.9, 0.1)}[mode]
    picture = Image.new(mode, (side, side), background)
    picture.paste(garment, (side * 3 // 7, side * 2 // 7, side * 4 // 7, side * 5 // 7))
    return save(picture, "TIFF", compression="tiff_deflate")


# name: (mode, side, what happens). The first two are the files from the report (a 170 KB
# 16-bit TIFF and a 333 KB float one, both 7000 x 7000, which took 1.06 and 1.2 GB); the others
# are the largest of each kind that is still prepared.
HOSTILE = {
    "16-bit, 49 MP": ("I;16", 7000, "refused"),
    "float, 49 MP": ("F", 7000, "refused"),
    "16-bit, 25 MP": ("I;16", 5000, "prepared"),
    "float, 12.5 MP": ("F", 3535, "prepared"),
}


@pytest.fixture(scope="module")
def hostile_tiffs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile")
    paths = {}
    for name, (mode, side, _) in HOSTILE.items():
        paths[name] = folder / f"{mode.replace(';', '')}-{side}.tif"
        paths[name].write_bytes(tiff_of(mode, side))
    return paths


@pytest.mark.parametrize("name", list(HOSTILE))
def test_tiny_tiffs_with_wide_pixels_take_little_memory(name, hostile_tiffs):
    """Peak memory growth of prepare(), measured with ru_maxrss in a fresh process.

    The 49-MP ones are refused from the header with a sentence: their pixels are never decoded,
    so the bound is the bomb test's 20 MB. The ones at the caps are prepared and the object is
    found; the bound is their decoded pixels (25 MP x 2 bytes, 12.5 MP x 4 bytes: 50 MB) plus
    40 MB for the bands and the 512 x 512 work. Measured: +0 MB refused, about +63 MB prepared;
    before the fix, +1,030, +1,170, +526 and +300 MB.
    """
    mode, side, expected = HOSTILE[name]
    path = hostile_tiffs[name]
    assert path.stat().st_size < 400_000  # tiny on disk
    assert Image.open(path).mode == mode
    outcome = peak_of_preparing(path)
    print(name, f"{path.stat().st_size / 1000:.0f} KB", outcome.get("refused", "prepared"))
    print(f"peak memory grew by {outcome['grown_mb']:.0f} MB")
    if expected == "refused":
        bits = 16 if mode == "I;16" else 32
        message = outcome["refused"]
        assert f"limit for {bits}-bit pictures" in message and "not decoded" in message, message
        assert "\n" not in message and len(message) < 200
        assert outcome["grown_mb"] < 20
    else:
        pixels = np.array(outcome["pixels"])
        assert pixels[14, 14] == 255 and pixels[14, 3] == 0 and pixels[0, 0] == 0  # a dark
        assert (pixels > 0).any(axis=1).sum() == 28  # upright box, negated, fills the height
        assert any("negated" in note for note in outcome["notes"])
        assert outcome["grown_mb"] < 50 + 40


def test_a_long_thin_strip_takes_little_memory(tmp_path):
    """A 40,000,000 x 1 grey PNG (39 KB) is worked on in tiles and at most 8192 wide.

    Decoding alone takes 115 MB here (the picture and Pillow's two 40 MB row buffers), so the
    bound is 160 MB; before, the whole row went to float at once, 3 million wide: 820 MB.
    """
    strip = Image.new("L", (40_000_000, 1), 230)
    strip.paste(20, (10_000_000, 0, 20_000_000, 1))
    path = tmp_path / "strip.png"
    path.write_bytes(save(strip, "PNG"))
    del strip
    assert path.stat().st_size < 100_000
    outcome = peak_of_preparing(path)
    print(f"peak memory grew by {outcome['grown_mb']:.0f} MB")
    pixels = np.array(outcome["pixels"])
    assert (pixels > 0).sum(axis=1).tolist() == [0] * 13 + [28] + [0] * 14  # one line across
    assert outcome["grown_mb"] < 160


def test_six_sessions_uploading_at_once_take_the_memory_of_two(hostile_tiffs):
    """Six sessions preparing the 25-MP 16-bit TIFF together (the report's six took 6.3 GB).

    Two are prepared at a time and each hands its memory back, so the peak stays under twice
    the single bound above (90 MB). Measured: 125 to 160 MB, against 62 MB for one; without the
    gate about 370 MB, with the gate but without handing memory back 200 to 330 MB.
    """
    outcome = peak_of_preparing(hostile_tiffs["16-bit, 25 MP"], sessions=6)
    print(f"six at once: peak memory grew by {outcome['grown_mb']:.0f} MB")
    assert "pixels" in outcome  # all six prepared, alike
    assert outcome["grown_mb"] < 2 * (50 + 40)


def test_at_most_two_pictures_are_prepared_at_once(monkeypatch, garments):
    """Eight real threads call prepare() together; no more than two are ever past the gate.

    Each one lingers a moment inside, so without the bound all eight would be in at once.
    Refusals (the blank pictures) must let the next one in too.
    """
    inside = peak = 0
    lock = threading.Lock()
    real_open_image = images.open_image

    def slow_open_image(data):
        nonlocal inside, peak
        with lock:
            inside += 1
            peak = max(peak, inside)
        try:
            time.sleep(0.15)
            return real_open_image(data)
        finally:
            with lock:
                inside -= 1

    monkeypatch.setattr(images, "open_image", slow_open_image)
    boot = save(negated_rgb(garments[9]), "PNG")
    blank = save(Image.new("RGB", (300, 200), "white"), "PNG")
    outcomes: dict[int, object] = {}

    def run(index: int, data: bytes) -> None:
        try:
            outcomes[index] = prepare(data).pixels
        except ImageRefused as exc:
            outcomes[index] = str(exc)

    def together(files: list[bytes]) -> None:
        threads = [threading.Thread(target=run, args=(i, d)) for i, d in enumerate(files)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert not any(thread.is_alive() for thread in threads), "a prepare() never got its turn"

    together([boot, blank] * 4)
    assert peak == images.MAX_CONCURRENT_PREPARES == 2
    reference = prepare(boot).pixels
    for index, outcome in outcomes.items():
        if index % 2:
            assert "no object" in outcome
        else:
            assert np.array_equal(outcome, reference)
    peak = 0
    together([boot, boot])  # after all those refusals, both places are free again
    assert peak == 2


def test_big_pictures_are_reduced_band_by_band_as_if_whole():
    """The grey levels of a big picture equal those of reducing it whole, as before the bands."""
    rng = np.random.default_rng(5)
    smooth = Image.fromarray(rng.integers(0, 256, (60, 90), dtype=np.uint8)).resize(
        (2700, 1800), Image.Resampling.BICUBIC
    )
    wide = np.asarray(smooth, dtype=np.float32) * 3.5 - 40.0
    wide[100:103, 50:2000] = np.nan  # a float picture may hold not-a-number
    for picture in (smooth.convert("RGB"), Image.fromarray(wide, mode="F")):
        whole = np.asarray(picture.convert("L") if picture.mode == "RGB" else picture, np.float64)
        if picture.mode == "F":
            lo, hi = np.nanmin(whole), np.nanmax(whole)
            whole = np.nan_to_num((whole - lo) / (hi - lo))
        else:
            whole = whole / 255.0
        reference = images._shrink(whole.astype(np.float32))
        grey = images.grey_levels(picture, [])
        assert grey.shape == reference.shape == (418, 627), picture.mode
        assert np.abs(grey - reference).max() < 1e-5, picture.mode


def test_a_big_picture_with_an_orientation_tag_is_turned_after_reducing(garments):
    """A 6-MP PNG stored sideways: reduced first (no full-size copy), then turned upright."""
    upright = Image.fromarray(255 - garments[9]).resize((2400, 2400)).convert("RGB")
    canvas = Image.new("RGB", (3000, 2000), (235, 235, 235))
    canvas.paste(upright.resize((1500, 1500)), (900, 250))
    exif = Image.Exif()
    exif[0x0112] = 6
    stored = canvas.transpose(Image.Transpose.ROTATE_90)
    result = prepare(save(stored, "PNG", exif=exif))
    assert result.source_size == (3000, 2000)
    assert any("orientation" in note for note in result.notes)
    assert close(result.pixels, prepare(save(canvas, "PNG")).pixels, 1.0)
    assert result.preview.width > result.preview.height  # the preview is upright too


def test_the_upload_limit_counts_megabytes_as_the_uploader_does(tmp_path):
    """Streamlit's uploader counts 1,000,000 bytes a MB; the app and the CLI refuse alike."""
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert reading.MAX_FILE_BYTES == config["server"]["maxUploadSize"] * 1_000_000
    at_limit = b"\x89PNG\r\n\x1a\n" + bytes(reading.MAX_FILE_BYTES - 8)
    with pytest.raises(ImageRefused, match="like a PNG"):  # judged on its content, not size
        prepare(at_limit)
    over = tmp_path / "over.png"
    over.write_bytes(at_limit + b"\x00")
    for attempt in (lambda: prepare(over.read_bytes()), lambda: prepare_file(over)):
        with pytest.raises(ImageRefused) as caught:
            attempt()
        assert str(caught.value) == "the file is 10.1 MB; the limit is 10 MB"


def test_the_app_shows_a_sentence_not_a_traceback():
    """client.showErrorDetails = "none": an unexpected error shows no traceback or server paths."""
    from streamlit.config import ShowErrorDetailsConfigOptions

    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["client"]["showErrorDetails"] == ShowErrorDetailsConfigOptions.NONE.value
