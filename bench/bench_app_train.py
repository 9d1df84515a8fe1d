"""In the app, as a person: open Train with the default (tutorial) settings, press Train, and time
until the final test accuracy is on the screen; the tutorial script is timed in the same run.

    .venv/bin/python bench/bench_app_train.py

Starts `streamlit run` on a free local port with an empty store and drives Debian's Chromium.
The clock starts at the click on Train (the page was open, as it is for a person deciding to
press it) and stops when the "Test accuracy" metric shows. Prints figures, asserts nothing.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_speed import tutorial  # noqa: E402
from bench.bench_training import machine  # noqa: E402
from tests.e2e.conftest import CHROMIUM, free_port  # noqa: E402


def start_app(home: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "streamlit_app.py"]
        + ["--server.headless", "true", "--server.port", str(port)]
        + ["--server.address", "127.0.0.1"],
        cwd=ROOT,
        env={**os.environ, "PLAYGROUND_HOME": home},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            urllib.request.urlopen(url + "/_stcore/health", timeout=2)
            return proc, url
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise SystemExit("streamlit did not start")


def press_train(url: str) -> tuple[float, str]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.goto(url)
        page.get_by_text("101,770").wait_for(timeout=120_000)  # the tutorial network is shown
        time.sleep(8)  # a person reads the page: the trainer process starts meanwhile
        started = time.perf_counter()
        page.get_by_role("button", name="Train", exact=True).click()
        page.get_by_text("Test accuracy").wait_for(timeout=900_000)
        seconds = time.perf_counter() - started
        accuracy = page.get_by_test_id("stMetricValue").nth(3).inner_text()
        page.screenshot(path=str(ROOT / "test-artifacts" / "bench-app-train.png"))
        browser.close()
    return seconds, accuracy


def main() -> None:
    print(f"machine: {machine()}", flush=True)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    script_seconds, script_accuracy = tutorial(env)
    print(f"tutorial script: {script_seconds:.1f} s, accuracy {script_accuracy:.4f}", flush=True)
    (ROOT / "test-artifacts").mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as home:
        proc, url = start_app(home)
        try:
            seconds, accuracy = press_train(url)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    print(f"app, Train with default settings -> accuracy on screen: {seconds:.1f} s ({accuracy})")
    print(f"ratio to the tutorial script: {seconds / script_seconds:.2f} (target <= 0.35)")


if __name__ == "__main__":
    main()
