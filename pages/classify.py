"""Classify page: upload pictures (or draw one), see what a stored network says and why."""

import numpy as np
import streamlit as st

from core.data.dataset import DatasetUnavailable
from core.data.familiar import doubts
from core.data.images import PreparedImage, encode_png
from core.data.reading import MAX_FILE_MB
from core.run.queue import QueueFull
from core.show import charts
from core.show.pictures import saliency_overlay, upscale
from core.spec.presets import preset
from ui.engine import (
    answer_or_stop,
    data_reference,
    dataset_or_stop,
    get_analyst,
    get_queue,
    get_store,
    prepared_upload,
    runs_warming_the_model,
)
from ui.notes import dataset_label, picture_size, preparation
from ui.runs import pick_run, stored_run_or_stop
from ui.session import session_owner

EXAMPLES = 6
TOP_K = 5

st.title("Classify")
st.caption(
    "Bring a photo of one object, ideally on a plain background. It is prepared the way the "
    "network's training pictures were, and the network picks one of the classes it knows."
)
store = get_store()
rows = runs_warming_the_model(store)


@st.fragment(run_every=1.0)
def training_progress(job_id: int) -> None:
    status = get_queue().status(job_id)
    if status is None or not status.active:
        # done (or gone): forget the job, then redraw the whole page, which now has a run
        # (or, if it failed, shows the offer again with the reason)
        st.session_state.pop("classify_job_id", None)
        if status is not None and status.state != "finished":
            st.session_state.classify_job_message = status.message or f"Training {status.state}."
        st.rerun(scope="app")
    where = f"queued, position {status.position}" if status.state == "queued" else "training"
    st.progress(status.fraction_done, text=f"`fast` preset: {where}…")


if not rows:
    st.info(
        "No trained network is stored yet, so there is nothing to classify with. The `fast` "
        "preset (a small convolutional network, 4 epochs) trains in well under a minute on "
        "two cores and reaches about 89 % test accuracy.",
        icon=":material/info:",
    )
    if "classify_job_message" in st.session_state:
        st.error(st.session_state.pop("classify_job_message"), icon=":material/error:")
    job_id = st.session_state.get("classify_job_id")
    if st.button("Train the fast preset", key="classify_train", type="primary"):
        try:
            job_id = st.session_state.classify_job_id = get_queue().submit(
                preset("fast"), session=session_owner()
            )
        except QueueFull as exc:
            st.error(str(exc))
    if job_id:
        training_progress(job_id)
    st.stop()

run_id = pick_run(rows, "classify_run", "Network (stored run) that classifies")
result = stored_run_or_stop(store, run_id)
dataset = dataset_or_stop(result.config.dataset)
names = dataset.class_names
shape = dataset.input_shape
side = picture_size(dataset)
st.caption(
    f"Trained on {dataset_label(result.config.dataset)}: {preparation(dataset)}. "
    f"Classes it knows: {', '.join(names)}."
)


@st.cache_data(max_entries=256, show_spinner=False)
def classified(home: str, run: str, created_at: float, pixels: bytes, shape: tuple) -> tuple:
    """Probabilities and saliency map of one prepared picture, cached per picture."""
    image = np.frombuffer(pixels, np.uint8).reshape(1, *shape)
    answer = get_analyst().classify(home, run, image, saliency=True)
    return answer.probabilities[0], answer.saliency[0]


# ------------------------------------------------------------------------------ the inputs
upload_col, example_col = st.columns([3, 1])
uploads = upload_col.file_uploader(
    "Pictures to classify",
    accept_multiple_files=True,
    key="classify_files",
    help=f"PNG, JPEG, GIF, BMP, WebP or TIFF, up to {MAX_FILE_MB} MB each.",
)
example_col.write("No picture at hand?")
if example_col.button("Try examples", key="classify_try", icon=":material/casino:"):
    st.session_state.classify_round = st.session_state.get("classify_round", 0) + 1
examples_round = st.session_state.get("classify_round", 0)

drawing = None
with st.expander("…or draw one with the mouse", icon=":material/draw:"):
    try:
        from streamlit_drawable_canvas import st_canvas
    except Exception as exc:  # an optional extra: the page works without it
        st.info(f"Drawing needs the streamlit-drawable-canvas package ({exc}).")
    else:
        st.caption("Draw the outline of a garment in black on the white square, filled in.")
        canvas = st_canvas(
            stroke_width=st.slider("Pen width", 5, 40, 18, key="classify_pen"),
            stroke_color="#000000",
            background_color="#FFFFFF",
            height=280,
            width=280,
            key="classify_canvas",
            return_image_data=True,
        )
        strokes = (canvas.json_data or {}).get("objects") if canvas is not None else None
        if strokes and canvas.image_data is not None:
            drawing = encode_png(np.asarray(canvas.image_data, dtype=np.uint8))

items: list[tuple[str, bytes, str | None]] = [(f.name, f.getvalue(), None) for f in uploads or []]
if drawing:
    items.append(("your drawing", drawing, None))
if examples_round:
    rng = np.random.default_rng(examples_round)
    for index in rng.choice(len(dataset.x_test), min(EXAMPLES, len(dataset.x_test)), replace=False):
        truth = names[int(dataset.y_test[index])]
        items.append((f"test image #{index}", encode_png(dataset.x_test[index]), truth))

if not items:
    st.info(
        "Upload pictures, draw one, or press **Try examples** to classify a few test images.",
        icon=":material/upload:",
    )
    st.stop()

# ----------------------------------------------------------------------------- the answers
outcomes = [prepared_upload(result.config.dataset, data) for _, data, _ in items]
good = [o for o in outcomes if isinstance(o, PreparedImage)]
answers = [
    answer_or_stop(
        classified, str(store.home), run_id, result.created_at, o.pixels.tobytes(), shape
    )
    for o in good
]
try:
    reference = data_reference(result.config.dataset)
except DatasetUnavailable:
    reference = None

refused = sum(isinstance(o, str) for o in outcomes)
st.write(
    f"**{len(good)}** picture(s) classified"
    + (f", **{refused}** refused (reason shown with each)." if refused else ".")
)
position = 0
for number, ((name, _, truth), outcome) in enumerate(zip(items, outcomes, strict=True)):
    with st.container(border=True):
        if isinstance(outcome, str):
            st.error(f"**{name}** was not classified: {outcome}.", icon=":material/block:")
            continue
        p, saliency = answers[position]
        position += 1
        order = np.argsort(p)[::-1][:TOP_K]
        best = int(order[0])
        verdict = f"**{name}** → **{names[best]}** ({p[best]:.0%})"
        if truth is not None:
            verdict += " ✓ correct" if truth == names[best] else f" ✗ it is a {truth}"
        st.markdown(verdict)
        c1, c2, c3, c4 = st.columns([1, 1, 1, 2])
        w, h = outcome.source_size
        c1.image(outcome.preview, caption=f"your picture ({w}×{h})", width="stretch")
        factor = max(1, 168 // shape[0])  # about 168 px wide, crisp pixels
        c2.image(
            upscale(outcome.pixels, factor),
            caption=f"what the network sees ({side})",
            width="stretch",
        )
        c3.image(
            upscale(saliency_overlay(outcome.pixels, saliency), factor),
            caption=f"red: drove the answer {names[best]}; blue: argued against it",
            width="stretch",
        )
        c4.plotly_chart(
            charts.top_probabilities([names[i] for i in order], [float(p[i]) for i in order]),
            key=f"classify_chart_{number}",
            width="stretch",
        )
        if outcome.notes:
            st.caption("Done to it: " + "; ".join(outcome.notes) + ".")
        for doubt in doubts(outcome.pixels, p, names, reference) if reference else []:
            st.warning(f"Distrust this answer: {doubt}.", icon=":material/warning:")
