"""Classify and Inside the network in a real browser: upload, draw, look inside."""

from __future__ import annotations

import numpy as np
import pytest

from core.learn.explain import probabilities
from core.learn.training import train
from core.spec.config import LayerSpec, RunConfig
from core.store import RunStore
from tests.e2e.test_browser import nav, no_error_boxes, settle, shot
from tests.photos import phone_photo


@pytest.fixture(scope="module")
def stored(app, full_data):
    """A real dense network in the app's store, and a phone-style photo of a boot it knows."""
    store = RunStore(app["home"])
    run = train(RunConfig(layers=(LayerSpec(units=128),), epochs=2), full_data, store=store)
    assert run.ok
    model = store.load_model(run.run_id)
    boots = np.flatnonzero(full_data.y_test == 9)[:20]
    p = probabilities(model, full_data.x_test[boots])
    boot = full_data.x_test[boots[int(p[:, 9].argmax())]]
    return run, phone_photo(boot, np.random.default_rng(11))


def test_upload_a_photo_and_a_bad_file_then_draw(app, page, stored):
    run, boot_jpeg = stored
    page.goto(app["url"])
    settle(page)
    nav(page, "Classify")
    page.get_by_test_id("stFileUploader").locator("input[type=file]").set_input_files(
        [
            {"name": "boot.jpg", "mimeType": "image/jpeg", "buffer": boot_jpeg},
            {"name": "broken.png", "mimeType": "image/png", "buffer": b"\x89PNG\r\n\x1a\nnope"},
        ]
    )
    verdict = page.get_by_text("boot.jpg → Ankle boot")
    verdict.wait_for(timeout=120_000)  # the first request starts the model process
    settle(page)
    # the bordered block of this picture: the innermost block that holds its verdict
    card = page.get_by_test_id("stVerticalBlock").filter(has_text="boot.jpg →").last
    card.locator(".js-plotly-plot").wait_for()
    assert "Ankle boot" in card.locator(".js-plotly-plot").inner_text()
    assert card.get_by_test_id("stImage").count() == 3  # picture, 28x28 input, saliency map
    refusal = page.get_by_test_id("stAlertContentError").filter(has_text="broken.png")
    assert "broken.png was not classified: the file starts like a PNG but is corrupt" in (
        refusal.inner_text()
    )
    no_error_boxes(page)
    verdict.scroll_into_view_if_needed()
    shot(page, "classify-upload")

    page.get_by_text("draw one with the mouse").click()
    canvas = page.locator("canvas").last
    canvas.wait_for()
    box = canvas.bounding_box()
    for x0, x1 in ((95, 125), (155, 185)):  # two filled legs and a waistband: a trouser
        for x in range(x0, x1, 8):
            page.mouse.move(box["x"] + x, box["y"] + 40)
            page.mouse.down()
            page.mouse.move(box["x"] + x, box["y"] + 250, steps=8)
            page.mouse.up()
    page.mouse.move(box["x"] + 95, box["y"] + 45)
    page.mouse.down()
    page.mouse.move(box["x"] + 185, box["y"] + 45, steps=8)
    page.mouse.up()
    drawn = page.get_by_text("your drawing →")
    drawn.wait_for(timeout=60_000)
    settle(page)
    no_error_boxes(page)
    drawn.scroll_into_view_if_needed()
    shot(page, "classify-drawing")


def test_inside_the_network_shows_every_view(app, page, stored):
    page.goto(app["url"])
    settle(page)
    nav(page, "Inside the network")
    page.get_by_text("How the last hidden layer arranges the test images").wait_for(timeout=120_000)
    settle(page)
    page.get_by_text("The first 64 of 128 units of the first Dense layer.").wait_for()
    assert page.locator(".js-plotly-plot").count() == 3  # units, probabilities, projection
    no_error_boxes(page)
    shot(page, "inside")
