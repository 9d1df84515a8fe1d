"""The app with PLAYGROUND_RAY_ADDRESS set, in a real browser: Train says where it trains, a run
trained through the page on a real local Ray head is stored here and shown as trained on Ray."""

from __future__ import annotations

import sys
from pathlib import Path
from urllib.parse import urlencode

import pytest
from conftest import running_app

from core.spec.config import LayerSpec, RunConfig
from core.store import RunStore

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ray_cluster.py
from ray_cluster import ray_head  # noqa: E402

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
TINY = RunConfig(
    layers=(LayerSpec(units=24),), train_size=20000, epochs=6, batch_size=64, validation_split=0.1
)  # long enough (several seconds) for the live progress line to be read


def settle(pg, timeout: float = 60_000) -> None:
    pg.wait_for_selector(
        "[data-testid='stApp'][data-test-script-state='notRunning']", timeout=timeout
    )


@pytest.fixture(scope="module")
def ray_app(tmp_path_factory):
    with ray_head() as (address, _):
        home = tmp_path_factory.mktemp("e2e-ray-home")
        with running_app(home, {"PLAYGROUND_RAY_ADDRESS": address}) as running:
            yield {**running, "address": address}


def test_train_on_a_ray_cluster_from_the_page(ray_app, page):
    page.goto(f"{ray_app['url']}/?{urlencode(TINY.to_params())}")
    settle(page)
    # the cluster is asked for its size when the queue starts: the caption names it
    where = f"trains on the Ray cluster at {ray_app['address']} (2 CPUs, no GPU)"
    page.get_by_text(where).wait_for(timeout=120_000)
    page.get_by_role("button", name="Train", exact=True).click()
    # live progress streams back from the cluster, and says where it trains
    page.get_by_test_id("stProgress").filter(has_text="Ray cluster").wait_for(timeout=120_000)
    page.get_by_text("Test accuracy").wait_for(timeout=300_000)
    settle(page)
    assert not page.locator("[data-testid='stException']").all_inner_texts()
    accuracy = page.get_by_test_id("stMetricValue").nth(3).inner_text()
    assert accuracy.endswith("%") and float(accuracy.rstrip("%")) > 50, accuracy
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "train-on-ray.png"), full_page=True)

    # stored on the app's machine, and recorded as trained on the cluster
    runs = RunStore(ray_app["home"]).list_runs()
    assert len(runs) == 1 and runs[0]["executor"] == "ray"
