"""AppTest: pictures imported class by class on the Data page, then trained, evaluated,
classified and looked inside through the same pages, against a real store and real trainers.

The per-class uploaders are driven with AppTest's FileUploader.set_value (Streamlit 1.67); the
pictures are real PNGs drawn with Pillow: coloured shapes at random sizes and positions.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw
from streamlit.testing.v1 import AppTest
from streamlit.typing import PlotlyState

from core.data.catalog import find_dataset
from core.data.importer import import_pictures
from core.data.registry import load_dataset
from core.spec.config import LayerSpec, RunConfig
from core.store import RunStore
from core.workspace import shared_queue

ROOT = Path(__file__).resolve().parent.parent
SHAPES = {
    "red circle": (210, 40, 40),
    "blue square": (40, 60, 200),
    "green triangle": (30, 150, 60),
}
PER_CLASS = 20
NAME = "shapes"
CONV = RunConfig(
    dataset=NAME,
    layers=(LayerSpec(kind="conv", filters=8, kernel_size=3), LayerSpec(units=32)),
    epochs=3,
    batch_size=8,
    learning_rate=3e-3,
)


def drawn(kind: str, rng: np.random.Generator, side: int = 48) -> bytes:
    """A PNG of one shape in its colour, at a random size and place on a light background."""
    background = tuple(int(v) for v in rng.integers(200, 256, 3))
    picture = Image.new("RGB", (side, side), background)
    draw = ImageDraw.Draw(picture)
    size = int(rng.integers(side // 3, side - 4))
    x, y = (int(v) for v in rng.integers(0, side - size, 2))
    box = [x, y, x + size, y + size]
    colour = SHAPES[kind]
    if kind == "red circle":
        draw.ellipse(box, fill=colour)
    elif kind == "blue square":
        draw.rectangle(box, fill=colour)
    else:
        draw.polygon([(x, y + size), (x + size, y + size), (x + size // 2, y)], fill=colour)
    out = io.BytesIO()
    picture.save(out, format="PNG")
    return out.getvalue()


def uploads(kind: str, seed: int, count: int = PER_CLASS) -> list[tuple[str, bytes, str]]:
    rng = np.random.default_rng(seed)
    stem = kind.replace(" ", "-")
    return [(f"{stem}-{i:02d}.png", drawn(kind, rng), "image/png") for i in range(count)]


def page(name: str, **params) -> AppTest:
    """One page through the real router, with URL parameters."""
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=180)
    for key, value in params.items():
        at.query_params[key] = value
    return at.switch_page(f"pages/{name}.py").run()


def image_captions(at: AppTest) -> list[str]:
    return [caption for element in at.get("image") for caption in element.captions]


def fill_class_rows(at: AppTest, classes: dict[str, list]) -> None:
    """Name each class row and drop its pictures, adding rows as needed (as a person does)."""
    at.radio(key="imp_source").set_value("classes").run()
    for index, (name, files) in enumerate(classes.items()):
        if index >= 2:  # the form starts with two rows
            at.button(key="imp_add").click().run()
        at.text_input(key=f"imp_class_{index}").input(name)
        at.file_uploader(key=f"imp_files_{index}").set_value(files)
    at.run()


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        folder = tmp_path_factory.mktemp("import-home")
        patch.setenv("PLAYGROUND_HOME", str(folder))
        yield folder


@pytest.fixture(scope="module")
def imported(home) -> AppTest:
    """The Data page after importing three classes of shapes (plus a text file) as they are."""
    at = page("data")
    classes = {kind: uploads(kind, seed) for seed, kind in enumerate(SHAPES)}
    classes["blue square"].append(("notes.txt", b"not a picture", "text/plain"))
    fill_class_rows(at, classes)
    at.text_input(key="imp_name").input(NAME)
    at.radio(key="imp_mode").set_value("plain").run()
    at.select_slider(key="imp_size").set_value(32).run()
    at.button(key="imp_go").click().run()
    assert not at.exception
    return at


@pytest.fixture(scope="module")
def trained(imported) -> str:
    """A small conv net trained on the imported shapes through the Train page's button."""
    at = page("train", **CONV.to_params())
    at.button(key="train_start").click().run()
    job = at.session_state["train_job_id"]
    status = shared_queue().wait(job, timeout=600)
    assert status.state == "finished", status.message
    at.run()
    assert not at.exception and not at.error
    return status.run_id


def test_import_through_the_per_class_uploaders(imported, home):
    at = imported
    assert not at.error
    outcome = at.success[-1].value
    assert f"{3 * PER_CLASS} pictures in 3 classes imported as **{NAME}**" in outcome
    assert "48 for training, 12 for testing" in outcome  # 20 % of every class held out
    skipped = next(df.value for df in at.dataframe if "reason" in df.value.columns)
    assert skipped["file"].tolist() == ["blue square/notes.txt"]
    # the new dataset is selected and shown: colour examples per class and its import report
    assert at.selectbox(key="data_dataset").value == NAME
    assert "32×32 colour pixels each" in " ".join(c.value for c in at.caption)
    labels = [m.value for m in at.markdown]
    assert all(f"**{kind}**" in labels for kind in SHAPES)
    balance = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert sorted(balance["data"][0]["x"]) == sorted(SHAPES)
    # what was stored is what the uploads held, prepared as they are
    info = find_dataset(NAME)
    data = load_dataset(NAME)
    assert info.source == "uploads" and data.input_shape == (32, 32, 3)
    assert dict(
        zip(info.class_names, np.add(info.train_counts, info.test_counts), strict=True)
    ) == {kind: PER_CLASS for kind in SHAPES}
    assert len(set(np.unique(data.x_train[..., 0] - data.x_train[..., 2]))) > 2  # not grey


@pytest.mark.slow
def test_every_refusal_is_one_sentence(home):
    at = page("data")
    fill_class_rows(at, {"tiny": uploads("red circle", 7, 3), "other": uploads("blue square", 8)})
    at.text_input(key="imp_name").input("too-few")
    at.button(key="imp_go").click().run()
    assert not at.exception
    assert "at least 10 usable pictures" in at.error[0].value and "tiny (3)" in at.error[0].value
    at.text_input(key="imp_class_1").input("tiny").run()
    at.button(key="imp_go").click().run()
    assert at.error[0].value == "Two classes are called 'tiny'; give each its own name."
    at.radio(key="imp_source").set_value("zip").run()
    at.button(key="imp_go").click().run()
    assert at.error[0].value == "Choose a .zip file of class folders first."
    at.file_uploader(key="imp_zip").set_value(("photos.zip", b"PK not really", "application/zip"))
    at.button(key="imp_go").click().run()
    assert not at.exception
    assert at.error[0].value.startswith("This is not a zip file, or it is damaged")
    assert find_dataset("too-few") is None and find_dataset("photos") is None


@pytest.mark.slow
def test_camera_pictures_go_into_the_chosen_class(home):
    at = page("data")
    rows = {
        "camera circle": uploads("red circle", 21, 9),
        "camera square": uploads("blue square", 22),
    }
    fill_class_rows(at, rows)
    at.toggle(key="imp_camera_on").set_value(True).run()
    at.selectbox(key="imp_camera_class").set_value(0).run()  # the first row: 9 pictures
    photo = io.BytesIO()
    Image.open(io.BytesIO(drawn("red circle", np.random.default_rng(23)))).save(photo, "JPEG")
    at.camera_input(key="imp_camera").set_value(("shot.jpg", photo.getvalue(), "image/jpeg"))
    at.run()
    assert "+ 1 picture(s) from the camera" in [c.value for c in at.caption]
    at.text_input(key="imp_name").input("camera shapes")
    at.button(key="imp_go").click().run()
    assert not at.exception and not at.error
    info = find_dataset("camera shapes")
    counts = dict(zip(info.class_names, np.add(info.train_counts, info.test_counts), strict=True))
    assert counts == {"camera circle": 10, "camera square": PER_CLASS}


def test_train_page_builds_the_network_for_the_datasets_shape(imported):
    from core.learn.model import make_model

    at = page("train", **CONV.to_params())
    assert not at.exception and not at.error
    assert at.selectbox(key="sb_dataset").value == NAME
    assert NAME in at.selectbox(key="sb_dataset").options
    expected = make_model(CONV, (32, 32, 3), 3).count_params()  # Keras is the reference
    parameters = next(m.value for m in at.metric if m.label == "Parameters")
    assert parameters == f"{expected:,}"
    assert next(m.value for m in at.metric if m.label == "Training images") == "48"


def test_the_trained_run_is_stored_on_the_imported_pictures(trained, home):
    stored = RunStore(home).get(trained)
    assert stored.config.dataset == NAME
    assert stored.data_id == find_dataset(NAME).dataset_id
    assert np.asarray(stored.confusion).shape == (3, 3)
    assert np.asarray(stored.confusion).sum() == 12


def test_evaluate_names_its_classes_and_a_clicked_cell_shows_pictures(trained, home):
    at = page("evaluate")
    assert not at.exception and not at.error
    classes = sorted(SHAPES, key=str.casefold)
    chart = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert chart["data"][0]["x"] == classes and chart["data"][0]["y"] == classes
    assert at.selectbox(key="evaluate_true").options == classes
    click = {"x": "green triangle", "y": "green triangle"}  # as the browser reports a click
    at.session_state["evaluate_confusion"] = PlotlyState(
        {"selection": {"points": [click], "point_indices": [0], "box": [], "lasso": []}}
    )
    at.run()
    assert at.selectbox(key="evaluate_true").value == "green triangle"
    assert at.selectbox(key="evaluate_pred").value == "green triangle"
    confusion = np.asarray(RunStore(home).get(trained).confusion)
    count = confusion[classes.index("green triangle"), classes.index("green triangle")]
    sentence = f"**{count}** test images are **green triangle** and were called **green triangle**."
    assert sentence in [m.value for m in at.markdown]


def test_classify_prepares_uploads_like_the_dataset(trained):
    at = page("classify")
    assert not at.exception and not at.error
    rng = np.random.default_rng(99)
    at.file_uploader(key="classify_files").set_value(
        [
            ("circle.png", drawn("red circle", rng, side=120), "image/png"),
            ("a.txt", b"hi", "text/plain"),
        ]
    )
    at.run()
    assert not at.exception
    assert "what the network sees (32×32 colour)" in image_captions(at)
    top = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert set(top["data"][0]["y"]) == set(SHAPES)  # top-k over its three classes
    assert "**a.txt** was not classified" in at.error[0].value


def test_inside_shows_colour_filters_and_lit_feature_maps(trained):
    at = page("inside")
    assert not at.exception and not at.error
    captions = " ".join(image_captions(at))
    assert "filters (3×3) of the first convolution, in the colours they reward" in captions
    assert "The picture, lit where the filter found its pattern" in captions
    assert at.selectbox(key="inside_class").options == sorted(SHAPES, key=str.casefold)


def test_runs_lists_it_and_its_script_does_not_crash(trained):
    at = page("runs")
    table = at.dataframe[0].value
    assert table.loc[table["run id"] == trained, "dataset"].tolist() == [NAME]
    at.session_state["runs_table"] = {"selection": {"rows": [0], "columns": []}}
    at.run()
    assert not at.exception and not at.error
    assert at.button(key=f"runs_open_{trained}")


@pytest.mark.slow
def test_rename_keeps_runs_and_delete_asks_before_removing_them(trained, home):
    # a second dataset of the same pictures, prepared like Fashion-MNIST, with one run on it
    rng = np.random.default_rng(5)
    pictures = {k: [(f"{i}.png", drawn(k, rng)) for i in range(12)] for k in SHAPES}
    import_pictures(pictures, "grey shapes", mode="fashion")
    from core.learn.training import train

    dense = RunConfig(dataset="grey shapes", layers=(LayerSpec(units=16),), epochs=1, batch_size=8)
    run = train(dense, load_dataset("grey shapes"), store=RunStore(home))
    assert run.ok

    at = page("data")
    at.text_input(key="imp_rename_grey shapes").input("outlines")
    at.button(key="imp_do_rename_grey shapes").click().run()
    assert not at.exception and not at.error
    assert "outlines" in at.selectbox(key="data_dataset").options
    assert "grey shapes" not in at.selectbox(key="data_dataset").options
    evaluate = page("evaluate")
    evaluate.selectbox(key="evaluate_run").set_value(run.run_id).run()
    assert not evaluate.exception and not evaluate.error  # the run still finds its pictures

    assert "1 stored run(s) were trained on it" in " ".join(m.value for m in at.markdown)
    at.button(key="imp_do_delete_outlines").click().run()  # the box left unticked
    assert not at.exception
    assert find_dataset("outlines") is None
    assert RunStore(home).get(run.run_id) is not None  # its run stays

    assert RunStore(home).get(trained) is not None
    at.checkbox(key=f"imp_delete_runs_{NAME}").check()
    at.button(key=f"imp_do_delete_{NAME}").click().run()
    assert not at.exception
    assert find_dataset(NAME) is None and RunStore(home).get(trained) is None
    assert at.selectbox(key="data_dataset").value == "fashion_mnist"
