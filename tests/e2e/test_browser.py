"""The app in a real browser: train through the UI, read the results, leave and come back, stop."""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import urlencode

from core.spec.config import LayerSpec, RunConfig
from core.store import RunStore

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def settle(pg, timeout: float = 60_000) -> None:
    """Wait until the script has finished its run."""
    pg.wait_for_selector(
        "[data-testid='stApp'][data-test-script-state='notRunning']", timeout=timeout
    )


def shot(pg, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    pg.screenshot(path=str(path), full_page=True)
    return path


def no_error_boxes(pg) -> None:
    errors = pg.locator("[data-testid='stException']").all_inner_texts()
    assert not errors, errors


TINY = RunConfig(
    layers=(LayerSpec(units=40),), train_size=4000, epochs=4, batch_size=32, validation_split=0.1
)
LONG = RunConfig(layers=(LayerSpec(units=300),), train_size=30000, epochs=40, batch_size=32)


def open_config(pg, app, config: RunConfig) -> None:
    pg.goto(f"{app['url']}/?{urlencode(config.to_params())}")
    settle(pg)


def nav(pg, title: str) -> None:
    pg.get_by_test_id("stSidebarNav").get_by_text(title, exact=True).click()
    time.sleep(0.5)
    settle(pg)


def test_train_a_tiny_network_and_inspect_it(app, page):
    open_config(page, app, TINY)
    page.get_by_text("31,810").wait_for()  # the URL's 40-unit layer: 784*40+40 + 41*10 params
    page.get_by_role("button", name="Train", exact=True).click()
    # live: a progress bar, then the curves while it is still training
    page.get_by_test_id("stProgress").wait_for(timeout=60_000)
    page.locator(".js-plotly-plot").first.wait_for(timeout=120_000)
    shot(page, "train-live")
    page.get_by_text("Test accuracy").wait_for(timeout=120_000)
    settle(page)
    shot(page, "train-done")
    no_error_boxes(page)
    accuracy = page.get_by_test_id("stMetricValue").nth(3).inner_text()
    assert accuracy.endswith("%") and float(accuracy.rstrip("%")) > 60, accuracy
    assert page.locator(".js-plotly-plot").count() == 2  # loss and accuracy curves

    nav(page, "Evaluate")
    page.get_by_text("Confusion matrix").first.wait_for()
    page.locator(".js-plotly-plot").first.wait_for()
    # click the cell in row Shirt (7th of 10), column T-shirt/top (1st): it selects that pair
    grid = page.locator(".js-plotly-plot .nsewdrag").first.bounding_box()
    page.mouse.click(grid["x"] + grid["width"] * 0.05, grid["y"] + grid["height"] * 0.65)
    page.get_by_text("are Shirt and were called T-shirt/top").wait_for(timeout=30_000)
    settle(page)
    assert page.get_by_text("Most confident mistakes").count() == 1
    gallery = page.get_by_test_id("stImageContainer")
    gallery.nth(9).wait_for(timeout=30_000)  # the cell's images and the mistakes gallery
    assert gallery.count() >= 10
    shot(page, "evaluate")
    no_error_boxes(page)

    nav(page, "Runs")
    table = page.get_by_test_id("stDataFrame")
    table.wait_for()
    shot(page, "runs")
    runs = RunStore(app["home"]).list_runs()
    assert [r["run_id"] for r in runs] == [run_id(TINY)]
    # select the run (the grid's checkbox column, first row) and download its script
    box = table.bounding_box()
    page.mouse.click(box["x"] + 16, box["y"] + 52)
    script_button = page.get_by_role("button", name="Python script")
    script_button.wait_for(timeout=30_000)
    with page.expect_download() as download:
        script_button.click()
    source = open(download.value.path()).read()
    assert "model.fit(" in source and run_id(TINY) in source
    shot(page, "runs-selected")
    no_error_boxes(page)
    # open it: back on Train with its settings and its stored results
    page.get_by_role("button", name="Open", exact=True).click()
    page.get_by_role("heading", name="Train", exact=True).wait_for(timeout=30_000)
    page.get_by_text("Test accuracy").wait_for(timeout=30_000)
    settle(page)
    assert page.get_by_text("31,810").count() == 1
    assert accuracy in page.inner_text("body")
    assert "layers=dense%3A40" in page.url
    shot(page, "runs-opened")
    no_error_boxes(page)


def run_id(config) -> str:
    from core.data.registry import load_dataset

    return config.run_id_for(load_dataset(config.dataset).fingerprint)


def test_training_survives_page_switches_and_stops(app, page):
    open_config(page, app, LONG)
    page.get_by_role("button", name="Train", exact=True).click()
    progress = page.get_by_test_id("stProgress")
    progress.wait_for(timeout=60_000)
    page.get_by_text("images/s").first.wait_for(timeout=120_000)  # batches are flowing
    nav(page, "Data")
    page.get_by_text("Examples of each class").wait_for()
    time.sleep(2)
    nav(page, "Train")
    progress.wait_for(timeout=30_000)
    text = progress.inner_text()
    assert "Epoch" in text and "images/s" in text, text
    shot(page, "train-still-running")

    page.get_by_role("button", name="Stop", exact=True).click()
    page.get_by_text("Training was stopped").wait_for(timeout=30_000)
    shot(page, "train-stopped")
    no_error_boxes(page)
    store = RunStore(app["home"])
    assert store.get(run_id(LONG)) is None
    assert not store.run_dir(run_id(LONG)).exists()
