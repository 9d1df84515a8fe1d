"""AppTest of the Sweep page: start a real (tiny) sweep, watch its table, figures and best run."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.spec.config import LayerSpec, RunConfig
from core.store import RunStore
from core.sweeps import study
from core.sweeps.runner import background
from core.workspace import shared_queue

ROOT = Path(__file__).resolve().parent.parent
TINY = RunConfig(
    layers=(LayerSpec(units=32),), train_size=2000, epochs=1, batch_size=64, validation_split=0.1
)


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("PLAYGROUND_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def sweep_page(config: RunConfig) -> AppTest:
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=120)
    for key, value in config.to_params().items():
        at.query_params[key] = value
    at.run()  # Train first: the sidebar's network must come along to Sweep
    return at.switch_page("pages/sweep.py").run()


def compared(at: AppTest) -> set[str]:
    """The run ids the Runs page shows a card for ("**id** · network · test accuracy ...")."""
    return {m.value.split("**")[1] for m in at.markdown if " · test accuracy " in m.value}


@pytest.mark.slow
def test_sweep_page_runs_an_experiment_live_and_opens_the_best_run_in_train(home, full_data):
    at = sweep_page(TINY)
    assert not at.exception and not at.error
    assert at.selectbox(key="sweep_experiment").value == "data"
    base = "Base run (the sidebar): Dense(32, relu) · 2,000 training images"
    assert any(c.value.startswith(base) for c in at.caption)
    at.selectbox(key="sweep_experiment").select("learning-rate").run()
    at.number_input(key="sweep_trials_learning-rate").set_value(3).run()
    # Another person's long run holds the one trainer, so the sweep's first trial must wait in
    # the queue: the live table is seen before any trial ends, however fast the machine trains.
    queue = shared_queue(store=RunStore(home))
    blocker = queue.submit(TINY.replace(train_size=0, epochs=500, batch_size=1))
    at.button(key="sweep_start").click().run()
    assert not at.exception and not at.error
    name = at.session_state["sweep_name"]
    runner = background(str(home), name)
    assert runner is not None and at.button(key="sweep_stop").disabled is False

    # live: the table lists the trial in the queue before any has ended. The runner thread may
    # not have asked Optuna for it when the page first drew: then the table has only its headers
    table = at.dataframe[0].value
    assert "state" in table.columns
    deadline = time.monotonic() + 60
    while not runner.summary().trials and time.monotonic() < deadline:
        time.sleep(0.05)
    at.run()
    table = at.dataframe[0].value
    assert list(table["state"]) == ["queued"]
    assert "learning_rate" in table.columns
    assert "The charts appear once two trials have finished." in [c.value for c in at.caption]
    assert queue.cancel(blocker).stopped  # the sweep's trials now train

    runner.join()
    at.run()
    assert not at.exception and not at.error
    table = at.dataframe[0].value
    assert list(table["state"]) == ["finished"] * 3
    assert table["validation accuracy"].notna().all()
    charts = at.get("plotly_chart")
    assert len(charts) == 4
    slice_chart = charts[0].proto.spec
    assert "Which learning rate?" in slice_chart and "learning_rate" in slice_chart
    best = max(runner.summary().finished, key=lambda t: t.value)
    assert any(best.run_id in m.value for m in at.markdown)
    assert at.metric[0].value == f"{best.value:.4f}"
    assert at.button(key="sweep_start").disabled is False  # Start again resumes / re-answers

    assert at.button(key="sweep_compare").label == "Compare on Runs (3 trial runs)"

    at.button(key="sweep_open_best").click().run()
    assert not at.exception
    stored = RunStore(home).get(best.run_id)
    # the sidebar and the URL now hold the best trial's config; Train shows it as cached
    back, _ = RunConfig.from_params(dict(at.query_params.items()))
    assert back == stored.config
    assert any("Cached" in s.value for s in at.success)

    # back on Sweep, Compare opens Runs with the three trials selected and compared
    at.switch_page("pages/sweep.py").run()
    at.button(key="sweep_compare").click().run()
    assert not at.exception and not at.error
    assert [i.value for i in at.info][0].startswith(f"Selected 3 trial runs of sweep {name};")
    assert "Compare" in [h.value for h in at.subheader]
    trial_ids = {t.run_id for t in runner.summary().finished}
    assert compared(at) == trial_ids


def test_a_bad_own_space_is_refused_with_its_sentence(home, full_data):
    at = sweep_page(TINY)
    at.segmented_control(key="sweep_mode").set_value("My own space").run()
    at.text_input(key="sweep_range_learning_rate").input("0:0.1:log").run()
    assert not at.exception
    assert "must start above 0" in at.error[0].value
    assert at.button(key="sweep_start").disabled


def test_the_sidebar_network_survives_train_sweep_train(home, full_data):
    """Going between the two pages that draw the sidebar keeps its network (it once came back
    to Train with no hidden layers)."""
    config = TINY.replace(layers=(LayerSpec(units=48), LayerSpec(units=24, dropout=0.2)))
    at = sweep_page(config)
    assert not at.exception
    at.switch_page("pages/train.py").run()
    assert not at.exception
    state = at.session_state
    assert state["sb_n_dense"] == 2
    assert (state["sb_dense_0_units"], state["sb_dense_1_units"]) == (48, 24)
    assert state["sb_dense_1_dropout"] == 0.2
    at.switch_page("pages/sweep.py").run()
    assert at.session_state["sb_n_dense"] == 2 and not at.exception


@pytest.mark.slow
def test_a_finished_sweep_runs_more_trials_and_is_deleted_from_the_page(home, full_data):
    at = sweep_page(TINY)
    at.selectbox(key="sweep_experiment").select("learning-rate").run()
    at.number_input(key="sweep_trials_learning-rate").set_value(2).run()
    at.button(key="sweep_start").click().run()
    name = at.session_state["sweep_name"]
    background(str(home), name).join()
    at.run()
    assert not at.exception and not at.error
    assert len(at.dataframe[0].value) == 2
    assert at.button(key="sweep_extend").disabled is False  # a TPE search can always go on

    # two more: the same sweep resumes, keeps its two trials and runs two new ones
    at.number_input(key="sweep_more").set_value(2).run()
    assert at.button(key="sweep_extend").proto.label == "Run 2 more"
    at.button(key="sweep_extend").click().run()
    assert not at.exception and not at.error and not at.warning
    runner = background(str(home), name)
    assert runner is not None
    runner.join()
    at.run()
    summary = study.summary(home, name)
    assert summary.spec.trials == 4 and len(summary.finished) == 4
    assert list(at.dataframe[0].value["state"]) == ["finished"] * 4
    assert len(RunStore(home).list_runs()) == 4

    # delete: the study goes, its four runs stay
    at.button(key="sweep_delete").click().run()
    assert not at.exception and not at.error
    assert name not in study.names(home)
    assert any(f"Deleted the sweep '{name}'" in s.value for s in at.success)
    assert any("4 finished trial run(s) stay on Runs" in s.value for s in at.success)
    assert len(RunStore(home).list_runs()) == 4
    assert not [b for b in at.button if b.key == "sweep_delete"]  # nothing shown to delete


@pytest.mark.slow
def test_a_complete_grid_offers_no_more_trials(home, full_data):
    at = sweep_page(TINY)
    at.segmented_control(key="sweep_mode").set_value("My own space").run()
    at.multiselect(key="sweep_fields").set_value(["batch_size"]).run()
    at.text_input(key="sweep_range_batch_size").input("32,64").run()
    at.selectbox(key="sweep_sampler").set_value("grid").run()
    at.button(key="sweep_start").click().run()
    assert not at.exception and not at.error
    background(str(home), at.session_state["sweep_name"]).join()
    at.run()
    assert len(at.dataframe[0].value) == 2  # both points of the grid
    assert at.button(key="sweep_extend").disabled is True
