"""Peak memory and time of preparing tiny files that claim huge pictures; prints, asserts nothing.

    .venv/bin/python bench/bench_images_memory.py [--repeats 3]

Each file is prepared (core.data.images.prepare) in a fresh process, which reports its peak resident
memory (ru_maxrss) before and after, and the fastest of the repeats. The files: the two TIFFs from
issue 12 (7000 x 7000, 16-bit and float, a few hundred KB), the largest 16-bit and float TIFFs
still prepared, 8-bit PNGs at the 50-megapixel cap in grey, colour and colour with alpha, and a
40,000,000 x 1 strip; then two of them prepared by six threads at once, as six sessions of the
app would.
Figures before the fix cannot be printed here (that code is gone); issue 12 reports 1.06 GB and
1.2 GB for the first two.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import PIL
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.test_images import HOSTILE, tiff_of  # noqa: E402

CHILD = """
import json, resource, sys, threading, time
sys.path.insert(0, {root!r})
from core.data.reading import ImageRefused
from core.data.images import prepare
data = open({path!r}, "rb").read()
outcome = "prepared"

def one():
    global outcome
    try:
        prepare(data)
    except ImageRefused as exc:
        outcome = "refused: " + str(exc)

before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
best = float("inf")
for _ in range({repeats}):
    start = time.perf_counter()
    threads = [threading.Thread(target=one) for _ in range({sessions})]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    best = min(best, time.perf_counter() - start)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({{"outcome": outcome, "before": before / 1024, "peak": peak / 1024,
                  "seconds": best}}))
"""


def eight_bit_png(mode: str, width: int, height: int) -> bytes:
    """A flat PNG with a dark box in the middle: tiny on disk, big once decoded."""
    background = {"L": 230, "RGB": (230, 230, 230), "RGBA": (0, 0, 0, 0)}[mode]
    garment = {"L": 20, "RGB": (90, 60, 30), "RGBA": (90, 60, 30, 255)}[mode]
    picture = Image.new(mode, (width, height), background)
    box = (width * 3 // 7, height * 2 // 7, width * 4 // 7, max(1, height * 5 // 7))
    picture.paste(garment, box)
    out = io.BytesIO()
    picture.save(out, format="PNG")
    return out.getvalue()


def cpu_name() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return platform.processor() or platform.machine()
    names = [line.split(":", 1)[1].strip() for line in out.splitlines() if "Model name" in line]
    return names[0] if names else platform.machine()


def measure(path: Path, repeats: int, sessions: int = 1) -> dict:
    """Run prepare() in a process forked by a shell, in `sessions` threads at once (as Streamlit
    runs sessions). Started straight from here, the process would inherit this one's peak as its
    ru_maxrss (Linux keeps it across exec)."""
    code = CHILD.format(root=str(ROOT), path=str(path), repeats=repeats, sessions=sessions)
    out = subprocess.run(
        ["/bin/sh", "-c", '"$0" -c "$1"; exit $?', sys.executable, code],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if out.returncode != 0:
        raise SystemExit(out.stderr)
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(
        f"machine: {os.cpu_count()} cores ({cpu_name()}), Python {platform.python_version()}, "
        f"Pillow {PIL.__version__}, numpy {np.__version__}"
    )
    runs = [(f"TIFF {name}", tiff_of(mode, side), 1) for name, (mode, side, _) in HOSTILE.items()]
    for mode in ("L", "RGB", "RGBA"):
        runs.append((f"PNG 8-bit {mode}, 50 MP", eight_bit_png(mode, 7071, 7071), 1))
    runs.append(("PNG 8-bit L, 40 M x 1", eight_bit_png("L", 40_000_000, 1), 1))
    runs.append(("6 at once: TIFF 16-bit 25 MP", tiff_of("I;16", 5000), 6))
    runs.append(("6 at once: PNG RGB 50 MP", eight_bit_png("RGB", 7071, 7071), 6))
    columns = ("on disk", "before", "peak", "growth", "time")
    print(f"{'file':28} " + " ".join(f"{c:>8}" for c in columns) + "  outcome")
    with tempfile.TemporaryDirectory() as folder:
        for name, data, sessions in runs:
            path = Path(folder) / "picture"
            path.write_bytes(data)
            got = measure(path, args.repeats, sessions)
            print(
                f"{name:28} {len(data) / 1000:>5.0f} KB {got['before']:>5.0f} MB "
                f"{got['peak']:>5.0f} MB {got['peak'] - got['before']:>5.0f} MB "
                f"{got['seconds']:>6.2f} s  {got['outcome']}"
            )


if __name__ == "__main__":
    main()
