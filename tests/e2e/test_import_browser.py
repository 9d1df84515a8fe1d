"""Your own images in a real browser: upload a zip on the Data page, train on it, evaluate it."""

from __future__ import annotations

import io
import zipfile
from urllib.parse import urlencode

import numpy as np

from core.data.catalog import find_dataset
from core.spec.config import LayerSpec, RunConfig
from tests.e2e.test_browser import nav, no_error_boxes, settle, shot
from tests.test_pages_import import SHAPES, drawn

PER_CLASS = 24
CONFIG = RunConfig(
    dataset="my-shapes",
    layers=(LayerSpec(kind="conv", filters=8, kernel_size=3), LayerSpec(units=32)),
    epochs=3,
    batch_size=8,
    learning_rate=3e-3,
)


def shapes_zip() -> bytes:
    """A zip as a file manager makes it: one wrapping folder, the class folders inside, a
    __MACOSX folder beside them, and one file that is not a picture."""
    rng = np.random.default_rng(3)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for kind in SHAPES:
            for i in range(PER_CLASS):
                archive.writestr(f"my-shapes/{kind}/{i:03d}.png", drawn(kind, rng))
        archive.writestr("my-shapes/red circle/readme.txt", "drawn with Pillow")
        archive.writestr("__MACOSX/my-shapes/._000.png", b"\x00\x05\x16\x07")
    return out.getvalue()


def test_upload_a_zip_train_on_it_and_see_its_classes(app, page):
    page.goto(app["url"])
    settle(page)
    nav(page, "Data")
    page.get_by_text("Your own images").first.wait_for()
    page.locator(".st-key-imp_zip input[type=file]").set_input_files(
        {"name": "my-shapes.zip", "mimeType": "application/zip", "buffer": shapes_zip()}
    )
    settle(page)
    page.locator(".st-key-imp_mode").get_by_text("as they are").click()
    settle(page)
    page.get_by_role("button", name="Import", exact=True).click()
    outcome = page.get_by_test_id("stAlertContentSuccess").filter(has_text="imported as")
    outcome.wait_for(timeout=120_000)
    settle(page)
    assert f"{3 * PER_CLASS} pictures in 3 classes imported as my-shapes" in outcome.inner_text()
    report = page.get_by_text("file(s) skipped, each with the reason").last
    report.wait_for()
    no_error_boxes(page)
    info = find_dataset("my-shapes", home=app["home"])
    assert info is not None and info.mode == "plain" and info.channels == 3
    assert sorted(info.class_names) == sorted(SHAPES)
    assert any(file.endswith("readme.txt") for file, _ in info.skipped)
    page.locator(".st-key-imp_go").scroll_into_view_if_needed()
    shot(page, "data-import")
    page.get_by_text("Examples of each class").scroll_into_view_if_needed()
    shot(page, "data-imported-examples")  # the new dataset is selected: colour examples

    page.goto(f"{app['url']}/?{urlencode(CONFIG.to_params())}")
    settle(page)
    page.get_by_role("button", name="Train", exact=True).click()
    page.get_by_text("Test accuracy").wait_for(timeout=300_000)
    settle(page)
    no_error_boxes(page)

    nav(page, "Evaluate")
    page.get_by_text("Confusion matrix").first.wait_for()
    chart = page.locator(".js-plotly-plot").first
    chart.wait_for()
    labels = chart.inner_text()
    assert all(kind in labels for kind in SHAPES), labels
    # click the top-left cell: true and predicted are the first class (blue square)
    grid = page.locator(".js-plotly-plot .nsewdrag").first.bounding_box()
    page.mouse.click(grid["x"] + grid["width"] / 6, grid["y"] + grid["height"] / 6)
    page.get_by_text("are blue square and were called blue square").wait_for(timeout=30_000)
    settle(page)
    no_error_boxes(page)
    shot(page, "evaluate-imported")
    page.get_by_text("Per class", exact=True).scroll_into_view_if_needed()
    shot(page, "evaluate-imported-gallery")  # the clicked cell's test pictures, in colour

    nav(page, "Inside the network")
    filters = page.get_by_text("of the first convolution, in the colours they reward")
    filters.wait_for(timeout=120_000)  # the first request starts the model process
    page.get_by_text("The picture, lit where the filter found its pattern").first.wait_for()
    settle(page)
    no_error_boxes(page)
    filters.scroll_into_view_if_needed()
    shot(page, "inside-imported")
