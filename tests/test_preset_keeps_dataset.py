"""AppTest: a preset changes the network and its training, never the images the person chose."""

from __future__ import annotations

from pathlib import Path

import pytest
from picture_sets import simple_entries, zip_bytes
from streamlit.testing.v1 import AppTest

from core.data.importer import import_zip

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def home(tmp_path, monkeypatch):
    folder = tmp_path / "home"
    monkeypatch.setenv("PLAYGROUND_HOME", str(folder))
    return folder


def train_page_on(name: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "pages" / "train.py"), default_timeout=120).run()
    at.selectbox(key="sb_dataset").set_value(name).run()
    assert at.query_params["dataset"] == name
    return at


def test_a_preset_keeps_the_imported_dataset(home, full_data):
    import_zip(zip_bytes(simple_entries({"a": 90, "b": 90})), "letters", home=home)
    at = train_page_on("letters")
    at.selectbox(key="sb_preset").set_value("cnn").run()
    assert not at.exception and not at.error
    assert at.selectbox(key="sb_dataset").value == "letters"
    assert at.query_params["dataset"] == "letters"
    assert at.slider(key="sb_n_conv").value == 2  # the preset's network did arrive
    assert at.query_params["layers"].startswith("conv:32:3:pool")
    # sized for the chosen data: 2 output units, not Fashion-MNIST's 10 (421,642 - 8 * 129)
    assert [m.value for m in at.metric if m.label == "Parameters"] == ["420,610"]


def test_a_preset_too_big_for_the_data_says_why_and_keeps_it(home, full_data):
    import_zip(zip_bytes(simple_entries({"a": 12, "b": 12})), "tiny", home=home)
    at = train_page_on("tiny")
    at.selectbox(key="sb_preset").set_value("cnn").run()
    assert not at.exception
    assert at.selectbox(key="sb_dataset").value == "tiny"  # never swapped back silently
    [error] = [e.value for e in at.error]
    assert error.startswith("The batch size (128) is larger than the training set (20 images")
