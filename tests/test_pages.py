"""AppTest for every page, against a real store (in tmp_path) and real trainer processes."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from core.learn.training import train
from core.runtime import BACKEND_LABELS
from core.spec.config import LayerSpec, RunConfig
from core.spec.presets import preset
from core.store import RunStore
from core.workspace import shared_queue

ROOT = Path(__file__).resolve().parent.parent
PAGES = ("train", "data", "evaluate", "runs", "classify", "inside")
SMALL = RunConfig(layers=(LayerSpec(units=32),), train_size=2000, epochs=2, batch_size=64)


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("PLAYGROUND_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def filled(home, full_data):
    store = RunStore(home)
    runs = [
        train(SMALL, full_data, store=store),
        train(SMALL.replace(seed=5), full_data, store=store),
    ]
    assert all(r.ok for r in runs)
    return runs


def page(name: str, **params) -> AppTest:
    """Open one page through the real router (so page links resolve), with URL parameters."""
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=120)
    for key, value in params.items():
        at.query_params[key] = value
    return at.switch_page(f"pages/{name}.py").run()


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


@pytest.mark.parametrize("name", PAGES)
def test_page_renders_on_an_empty_store(home, full_data, name):
    at = page(name)
    assert not at.exception
    assert not at.error


@pytest.mark.parametrize("name", PAGES)
def test_page_renders_with_stored_runs(filled, name):
    at = page(name)
    assert not at.exception
    assert not at.error


def test_slider_changes_parameter_count_and_url(home, full_data):
    at = page("train")
    assert metric(at, "Parameters") == "101,770"
    at.slider(key="sb_dense_0_units").set_value(256).run()
    assert metric(at, "Parameters") == "203,530"
    assert at.query_params["layers"] == "dense:256:relu:0"
    at.slider(key="sb_n_dense").set_value(2).run()
    assert at.query_params["layers"] == "dense:256:relu:0,dense:128:relu:0"
    assert metric(at, "Parameters") == f"{784 * 256 + 256 + 256 * 128 + 128 + 1290:,}"


def test_invalid_combination_disables_train_with_the_reason(home, full_data):
    at = page("train")
    at.select_slider(key="sb_train_size").set_value(1000).run()
    at.select_slider(key="sb_batch_size").set_value(1024).run()
    assert at.button(key="train_start").disabled
    assert "larger than the training set" in at.error[0].value
    at.select_slider(key="sb_batch_size").set_value(64).run()
    assert not at.button(key="train_start").disabled and not at.error


def test_stale_url_parameter_falls_back_with_a_notice(home, full_data):
    at = page("train", epochs="lots", learning_rate="0.01", colour="blue")
    assert not at.exception
    notices = " ".join(w.value for w in at.sidebar.warning)
    assert "epochs='lots'" in notices and "using 10 instead" in notices
    assert "unknown setting 'colour'" in notices
    assert at.select_slider(key="sb_epochs").value == 10
    assert at.select_slider(key="sb_learning_rate").value == 0.01  # the valid one was taken
    assert at.query_params["epochs"] == "10"


def test_cached_config_shows_results_and_retrain(filled):
    first = filled[0]
    at = page("train", **{k: v for k, v in first.config.to_params().items()})
    assert "Cached" in at.success[0].value
    assert metric(at, "Test accuracy") == f"{first.test_accuracy:.2%}"
    assert at.button(key="train_start").disabled
    assert at.button(key="train_retrain")
    assert len(at.get("plotly_chart")) == 2


@pytest.mark.slow
def test_two_sessions_train_in_turn_and_the_second_sees_its_place(home, full_data):
    queue = shared_queue()
    a = page("train", **SMALL.replace(epochs=3, train_size=6000).to_params())
    b = page("train", **SMALL.replace(seed=9).to_params())
    a.button(key="train_start").click().run()
    b.button(key="train_start").click().run()
    waiting = " ".join(i.value for i in b.info)
    assert "position 1 in the queue" in waiting
    for at in (a, b):
        job = at.session_state["train_job_id"]
        assert queue.wait(job, timeout=300).state == "finished"
        at.run()
        assert not at.exception
        assert float(metric(at, "Test accuracy").rstrip("%")) > 60
    assert len(RunStore(home).list_runs()) == 2


def test_evaluate_page_shows_a_confusion_cell(filled, full_data):
    at = page("evaluate")
    assert metric(at, "Test accuracy") == f"{filled[1].test_accuracy:.2%}"  # newest run first
    at.selectbox(key="evaluate_true").set_value("Shirt").run()
    at.selectbox(key="evaluate_pred").set_value("T-shirt/top").run()
    count = int(filled[1].confusion[6][0])
    assert any(f"**{count}** test images are **Shirt**" in m.value for m in at.markdown)
    chart = at.get("plotly_chart")[0].proto.spec
    assert "Confusion matrix" in chart
    report = next(d.value for d in at.dataframe if "recall" in d.value.columns)
    assert list(report["class"])[:2] == ["T-shirt/top", "Trouser"]


def test_runs_page_lists_every_run(filled):
    at = page("runs")
    table = at.dataframe[0].value
    assert sorted(table["run id"]) == sorted(r.run_id for r in filled)
    assert set(table.columns) >= {"test accuracy", "architecture", "parameters", "trained on"}
    by_id = dict(zip(table["run id"], table["trained on"], strict=True))
    for run in filled:  # device, backend, and no "Ray cluster" for runs trained here
        assert by_id[run.run_id] == f"{run.device} · {BACKEND_LABELS[run.backend]}"


def test_choosing_a_preset_fills_the_sidebar(home, full_data):
    at = page("train")
    at.selectbox(key="sb_preset").set_value("cnn").run()
    assert not at.exception
    assert metric(at, "Parameters") == "421,642"  # 320 + 18,496 + 401,536 + 1,290
    assert at.slider(key="sb_n_conv").value == 2
    assert at.selectbox(key="sb_conv_downsample").value == "stride"
    assert at.query_params["layers"].startswith("conv:32:3:pool")
    assert at.query_params["conv_downsample"] == "stride"


def test_divergence_shows_the_advice_not_a_traceback(home, full_data):
    exploding = SMALL.replace(optimizer="sgd", learning_rate=1e4)
    at = page("train", **exploding.to_params())
    at.button(key="train_start").click().run()
    status = shared_queue().wait(at.session_state["train_job_id"], timeout=300)
    assert status.state == "diverged"
    at.run()
    assert not at.exception and not at.error
    assert "Lower the learning rate" in at.warning[0].value
    assert RunStore(home).list_runs() == []


# ------------------------------------------------------------------ Classify and Inside
def image_captions(at: AppTest) -> list[str]:
    return [img.caption for element in at.get("image") for img in element.proto.imgs]


def plotly_values(values) -> np.ndarray:
    """Plotly 6 sends numpy arrays as base64 typed arrays; plain lists stay lists."""
    if isinstance(values, dict) and "bdata" in values:
        return np.frombuffer(base64.b64decode(values["bdata"]), dtype=values["dtype"])
    return np.asarray(values)


@pytest.fixture
def trained_home(trained, monkeypatch):
    home, dense, conv = trained
    monkeypatch.setenv("PLAYGROUND_HOME", str(home))
    return dense, conv


def test_classify_upload_one_good_and_one_bad_file(trained_home, full_data):
    from tests.photos import photo_like

    boot = full_data.x_test[np.flatnonzero(full_data.y_test == 9)[0]]
    at = page("classify")
    assert not at.exception
    assert (
        at.selectbox(key="classify_run").value
        == max(trained_home, key=lambda r: r.test_accuracy).run_id
    )  # the best run is the default
    uploader = at.file_uploader(key="classify_files")
    uploader.upload("boot.jpg", photo_like(boot, np.random.default_rng(1)), "image/jpeg")
    uploader.upload("broken.png", b"\x89PNG\r\n\x1a\n garbage", "image/png")
    at.run()
    assert not at.exception
    verdicts = [m.value for m in at.markdown if "→" in m.value]
    assert verdicts == ["**boot.jpg** → **Ankle boot** (" + verdicts[0].split("(")[1]]
    assert len(at.error) == 1
    assert at.error[0].value.startswith(
        "**broken.png** was not classified: the file starts like a PNG but is corrupt"
    )
    chart = at.get("plotly_chart")[0].proto.spec
    assert "Ankle boot" in chart and "Top predictions" in chart
    assert len(at.get("image")) == 3  # the picture, the 28x28 and the saliency map


def test_classify_examples_without_files(trained_home):
    at = page("classify")
    at.button(key="classify_try").click().run()
    assert not at.exception and not at.error
    verdicts = [m.value for m in at.markdown if "→" in m.value and "test image #" in m.value]
    assert len(verdicts) == 6
    assert sum("✓ correct" in v for v in verdicts) >= 3  # a trained network, not a guess
    assert len(at.get("plotly_chart")) == 6


def test_classify_offers_to_train_the_fast_preset_when_the_store_is_empty(home, full_data):
    at = page("classify")
    assert "No trained network is stored yet" in at.info[0].value
    at.button(key="classify_train").click().run()
    assert not at.exception
    job = at.session_state["classify_job_id"]
    queue = shared_queue()
    status = queue.status(job)
    assert status.active and status.epochs == preset("fast").epochs  # the fast preset's job
    queue.cancel(job)  # the real queue took it; no need to spend the test's time on it
    assert queue.wait(job, timeout=120).state == "cancelled"
    at.run()  # the progress fragment notices, forgets the job and says what happened
    assert not at.exception
    assert "classify_job_id" not in at.session_state
    assert len(at.error) == 1 and at.error[0].value == queue.status(job).message
    assert at.button(key="classify_train")  # offered again


def test_inside_page_for_a_dense_and_a_convolutional_run(trained_home):
    dense, conv = trained_home
    at = page("inside")
    at.selectbox(key="inside_run").set_value(dense.run_id).run()
    assert not at.exception and not at.error
    assert "The first 64 of 128 units of the first Dense layer." in image_captions(at)
    assert any(m.value.startswith("**dense** (Dense) — 128 units") for m in at.markdown)
    projection = json.loads(at.get("plotly_chart")[-1].proto.spec)
    assert sum(len(plotly_values(trace["x"])) for trace in projection["data"]) == 2000
    assert len(projection["data"]) == 10  # one trace per class
    at.selectbox(key="inside_run").set_value(conv.run_id).run()
    assert not at.exception and not at.error
    text = " ".join(m.value for m in at.markdown)
    assert "feature maps of 26×26" in text and "feature maps of 13×13" in text
    assert "The 8 filters (3×3) of the first convolution." in image_captions(at)
    at.selectbox(key="inside_class").set_value("Trouser").run()
    at.slider(key="inside_nth").set_value(3).run()
    assert not at.exception
    assert any("it is a **Trouser**" in m.value for m in at.markdown)
