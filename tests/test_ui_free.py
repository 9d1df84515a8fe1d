"""core/ never imports streamlit, and the light modules never import TensorFlow."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def imported_after(statement: str) -> set[str]:
    code = f"{statement}; import sys; print(' '.join(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return set(out.stdout.split())


@pytest.mark.slow
def test_core_does_not_import_streamlit():
    modules = imported_after(
        "import core.data.registry, core.spec.config, core.learn.model, core.learn.training, "
        "core.store, core.learn.evaluation, core.cli.main, core.__main__"
    )
    assert "keras" in modules  # core.learn.model really loaded Keras
    assert not {m for m in modules if m == "streamlit" or m.startswith("streamlit.")}


def test_store_and_config_do_not_import_tensorflow():
    modules = imported_after(
        "import core.store, core.spec.config, core.data.registry, core.learn.training"
    )
    assert "tensorflow" not in modules and "keras" not in modules


@pytest.mark.slow
def test_pages_do_not_import_tensorflow(tmp_path, trained):
    """The UI process never needs TensorFlow: training runs in the trainer process, and the
    Classify and Inside pages ask the model process. Checked with stored runs and an upload."""
    home, dense, _ = trained
    code = f"""
import os, sys
import numpy
sys.path.insert(0, {str(ROOT)!r})
from streamlit.testing.v1 import AppTest
from core.data.images import encode_png
def visit(name, home):
    os.environ["PLAYGROUND_HOME"] = home
    at = AppTest.from_file({str(ROOT / "streamlit_app.py")!r}, default_timeout=120)
    at.switch_page(f"pages/{{name}}.py").run()
    assert not at.exception, (name, at.exception)
    return at
for name in ("train", "data", "evaluate", "runs", "classify", "inside"):
    visit(name, {str(tmp_path)!r})  # empty store
    visit(name, {str(home)!r})  # stored runs: the model process answers
at = visit("classify", {str(home)!r})
square = numpy.full((120, 120), 255, "uint8")
square[30:90, 40:80] = 0  # a dark block on white: something to classify
at.file_uploader(key="classify_files").upload("block.png", encode_png(square), "image/png")
at.button(key="classify_try").click().run()
assert not at.exception and len(at.get("plotly_chart")) == 7  # the upload + 6 examples
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras"))
print(" ".join(loaded[:5]))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-1500:]
    assert out.stdout.strip() == ""
