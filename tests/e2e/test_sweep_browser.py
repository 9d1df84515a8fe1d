"""The Sweep page in a real browser: a 3-trial "Which learning rate?" experiment draws its chart."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

from playwright.sync_api import expect

from core.spec.config import LayerSpec, RunConfig
from core.store import RunStore
from core.sweeps.space import EXPERIMENTS

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
TINY = RunConfig(
    layers=(LayerSpec(units=32),), train_size=2000, epochs=1, batch_size=64, validation_split=0.1
)


def settle(pg, timeout: float = 60_000) -> None:
    pg.wait_for_selector(
        "[data-testid='stApp'][data-test-script-state='notRunning']", timeout=timeout
    )


def test_a_three_trial_learning_rate_experiment_shows_its_chart(app, page):
    page.goto(f"{app['url']}/?{urlencode(TINY.to_params())}")
    settle(page)
    page.get_by_test_id("stSidebarNav").get_by_text("Sweep", exact=True).click()
    page.get_by_role("heading", name="Sweep").wait_for()
    settle(page)
    page.get_by_text("Base run (the sidebar): Dense(32, relu) · 2,000 training images").wait_for()
    page.get_by_test_id("stSelectbox").filter(has_text="Question").click()
    page.get_by_role("option", name="Which learning rate?").click()
    # the rerun may not have begun when settle() first looks, and while it runs the first
    # question's Trials input stays on screen beside the new one (Streamlit removes stale
    # elements only when the script ends): wait for the new question's input, then for the old
    # one to go, and only then settle
    wanted = EXPERIMENTS["learning-rate"].trials
    assert wanted != EXPERIMENTS[next(iter(EXPERIMENTS))].trials
    page.locator(f"input[aria-label='Trials'][value='{wanted}']").wait_for(timeout=60_000)
    trials = page.get_by_label("Trials")
    expect(trials).to_have_count(1, timeout=60_000)
    settle(page)
    expect(trials).to_have_value(str(wanted))
    trials.fill("3")
    trials.press("Enter")
    settle(page)
    page.get_by_role("button", name="Start").click()
    # live: the trial table appears while the first trial trains, the chart once two have ended
    page.get_by_test_id("stDataFrame").wait_for(timeout=60_000)
    page.get_by_text(re.compile(r"3 of 3 trial\(s\) ended")).wait_for(timeout=300_000)
    time.sleep(1)
    settle(page)
    page.locator(".js-plotly-plot").first.wait_for(timeout=60_000)
    assert page.locator(".js-plotly-plot").count() == 4
    chart = page.locator(".js-plotly-plot").first
    assert "Which learning rate?" in chart.inner_text()
    page.get_by_test_id("stMetricLabel").get_by_text("Best validation accuracy").wait_for()
    assert not page.locator("[data-testid='stException']").all_inner_texts()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "sweep-learning-rate.png"), full_page=True)
    # the three trials are ordinary stored runs
    runs = RunStore(app["home"]).list_runs()
    assert len(runs) == 3

    # Compare opens Runs with the trials selected; the selection is then the table's own, so a
    # rerun (the R shortcut) keeps all three cards
    page.get_by_role("button", name="Compare on Runs (3 trial runs)").click()
    page.get_by_role("heading", name="Runs").wait_for(timeout=60_000)
    page.get_by_text(re.compile(r"Selected 3 trial runs of sweep")).wait_for(timeout=60_000)
    settle(page)
    cards = page.get_by_text(re.compile(r" · test accuracy 0\.\d{4}$"))
    expect(cards).to_have_count(3, timeout=30_000)
    page.get_by_role("heading", name="Compare").wait_for()
    page.screenshot(path=str(ARTIFACTS / "sweep-compare-on-runs.png"), full_page=True)
    page.locator("body").press("r")
    page.wait_for_timeout(500)
    settle(page)
    expect(page.get_by_text(re.compile(r"Selected 3 trial runs of sweep"))).to_have_count(0)
    expect(cards).to_have_count(3, timeout=30_000)
    for run in runs:
        page.get_by_text(re.compile(rf"^{run['run_id']} · ")).wait_for()

    # a run stored meanwhile (here by the CLI) goes to the top of the table and shifts every row:
    # the selection follows the run ids, so the same three are compared and the new one is not
    other = subprocess.run(
        [sys.executable, "-m", "core", "--home", str(app["home"]), "train", "--preset", "seed"]
        + ["--train-size", "1000", "--epochs", "1", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert other.returncode == 0, other.stderr[-800:]
    new_id = json.loads(other.stdout.strip().splitlines()[-1])["run_id"]
    page.locator("body").press("r")
    page.get_by_text(re.compile(r"^4 stored run\(s\) in")).wait_for(timeout=60_000)
    settle(page)
    expect(cards).to_have_count(3, timeout=30_000)
    for run in runs:
        page.get_by_text(re.compile(rf"^{run['run_id']} · ")).wait_for()
    expect(page.get_by_text(re.compile(rf"^{new_id} · "))).to_have_count(0)
