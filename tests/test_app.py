"""AppTest: the app renders its pages with real data and real engine calls."""

from __future__ import annotations

from pathlib import Path

import streamlit as st
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parent.parent


def test_data_page_shows_source_and_examples(full_data):
    at = AppTest.from_file(str(ROOT / "pages" / "data.py"), default_timeout=60).run()
    assert not at.exception
    assert "60,000 training and 10,000 test images" in at.success[0].value
    assert len(at.get("image")) == 11  # one strip of examples per class, then the class means
    chart = at.get("plotly_chart")[0].proto.spec
    assert "Images per class" in chart and '"test"' in chart
    labels = [m.value for m in at.markdown]
    assert "**Ankle boot**" in labels and "**T-shirt/top**" in labels


def test_data_page_says_when_it_runs_on_the_sample(monkeypatch, tmp_path):
    from core.data import registry, sources

    monkeypatch.delenv("PLAYGROUND_DATA_DIR", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setenv("PLAYGROUND_NO_DOWNLOAD", "1")
    monkeypatch.setattr(sources, "DEBIAN_DIR", tmp_path / "none")
    registry._cache.clear()
    st.cache_resource.clear()  # the page's dataset cache may hold the full set from another test
    try:
        at = AppTest.from_file(str(ROOT / "pages" / "data.py"), default_timeout=60)
        at.run()
        assert not at.exception
        warning = at.warning[0].value
        assert "bundled sample" in warning and "5,000 training" in warning
        assert "apt-get install dataset-fashion-mnist" in warning
    finally:
        registry._cache.clear()
        st.cache_resource.clear()


def test_router_opens_on_the_train_page(tmp_path, monkeypatch):
    monkeypatch.setenv("PLAYGROUND_HOME", str(tmp_path))
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60).run()
    assert not at.exception
    assert at.title[0].value == "Train"
    at.switch_page("pages/data.py").run()
    assert at.title[0].value == "The data"
