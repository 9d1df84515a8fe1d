"""Evaluate page: test metrics, confusion matrix, per-class report and the gallery of mistakes."""

import numpy as np
import pandas as pd
import streamlit as st

from core.learn.evaluation import misclassified, per_class_report
from core.show import charts
from core.store import StoreError
from ui.engine import dataset_or_stop, get_store, runs_or_stop
from ui.notes import dataset_label
from ui.runs import run_label, show_damage, stored_run_or_stop
from ui.session import shown_run

GALLERY_SIZE = 24

st.title("Evaluate")
store = get_store()
rows = runs_or_stop(store)
if not rows:
    st.info(
        "No stored runs yet. Train one on the Train page, then come back here.",
        icon=":material/info:",
    )
    st.page_link("pages/train.py", label="Go to Train", icon=":material/play_arrow:")
    st.stop()

ids = [row["run_id"] for row in rows]
labels = {row["run_id"]: run_label(row) for row in rows}
preferred = shown_run()
run_id = st.selectbox(
    "Run",
    ids,
    index=ids.index(preferred) if preferred in ids else 0,
    format_func=labels.get,
    key="evaluate_run",
)
result = stored_run_or_stop(store, run_id, key="evaluate")
data = dataset_or_stop(result.config.dataset)
try:
    probabilities = store.load_probabilities(run_id)
except StoreError as exc:
    show_damage(store, run_id, exc, key="evaluate")
    st.stop()
if result.data_id and result.data_id != data.fingerprint and len(probabilities) == len(data.y_test):
    st.warning(
        f"The pictures now called {dataset_label(result.config.dataset)!r} are not the ones this "
        "run was tested on (the dataset was imported again with other pictures). Train it again "
        "to inspect it image by image.",
        icon=":material/warning:",
    )
    st.stop()
if len(probabilities) != len(data.y_test):
    st.warning(
        f"This run was tested on {len(probabilities):,} images but the data now in use has "
        f"{len(data.y_test):,} (it was trained on a different source: {result.data_source}). "
        "Train it again to inspect it image by image.",
        icon=":material/warning:",
    )
    st.stop()
predicted = probabilities.argmax(axis=1)
names = data.class_names

m1, m2, m3 = st.columns(3)
m1.metric("Test accuracy", f"{result.test_accuracy:.2%}")
m2.metric("Test loss", f"{result.test_loss:.4f}")
m3.metric("Mistakes", f"{int((predicted != data.y_test).sum()):,} of {len(data.y_test):,}")
st.caption(f"{result.config.describe()} · {result.epochs_trained} epochs · {result.device}")

st.subheader("Confusion matrix")
st.caption(
    "Rows are the true class, columns the network's answer; the diagonal is correct. "
    "Click a cell (or pick the pair below) to see those test images."
)
event = st.plotly_chart(
    charts.confusion_heatmap(result.confusion, names),
    on_select="rerun",
    selection_mode="points",
    key="evaluate_confusion",
    width="stretch",
)
points = (event.selection.points if event and event.selection else None) or []
clicked = (points[0]["y"], points[0]["x"]) if points else None
# apply a click once: the chart keeps its selection, which must not undo a later selectbox choice
if clicked and clicked != st.session_state.get("evaluate_clicked"):
    st.session_state.evaluate_true, st.session_state.evaluate_pred = clicked
st.session_state.evaluate_clicked = clicked
confusion = np.asarray(result.confusion)
if (
    st.session_state.get("evaluate_true") not in names
    or st.session_state.get("evaluate_pred") not in names
):  # first visit, or a run on other classes: start on its most common mistake
    off_diagonal = confusion - np.diag(np.diag(confusion))
    true_index, pred_index = np.unravel_index(off_diagonal.argmax(), off_diagonal.shape)
    if off_diagonal.max() == 0:
        true_index, pred_index = 0, min(1, len(names) - 1)
    st.session_state.evaluate_true = names[true_index]
    st.session_state.evaluate_pred = names[pred_index]
for key in ("evaluate_filter_true", "evaluate_filter_pred"):  # keep only this run's classes
    if key in st.session_state:
        st.session_state[key] = [n for n in st.session_state[key] if n in names]
a, b = st.columns(2)
true_name = a.selectbox("True class", names, key="evaluate_true")
pred_name = b.selectbox("Predicted class", names, key="evaluate_pred")
cell = np.flatnonzero(
    (data.y_test == names.index(true_name)) & (predicted == names.index(pred_name))
)
st.write(f"**{len(cell)}** test images are **{true_name}** and were called **{pred_name}**.")
if len(cell):
    shown = cell[:GALLERY_SIZE]
    st.image(
        [data.x_test[i] for i in shown],
        caption=[f"#{i} · {probabilities[i, predicted[i]]:.0%}" for i in shown],
        width=max(84, data.input_shape[0]),
    )
with st.expander("Confusion matrix numbers (table)"):
    st.dataframe(
        pd.DataFrame(result.confusion, index=names, columns=names),
        width="stretch",
    )

st.subheader("Per class")
report = per_class_report(confusion, names)
st.dataframe(
    report,
    hide_index=True,
    width="stretch",
    column_config={
        k: st.column_config.ProgressColumn(k, min_value=0.0, max_value=1.0, format="%.3f")
        for k in ("precision", "recall", "f1")
    },
)

st.subheader("Most confident mistakes")
st.caption("Test images the network got wrong while being surest of itself.")
f1, f2 = st.columns(2)
only_true = f1.multiselect("True class is", names, key="evaluate_filter_true")
only_pred = f2.multiselect("Predicted class is", names, key="evaluate_filter_pred")
mistakes = misclassified(probabilities, data.y_test, names)
if only_true:
    mistakes = mistakes[mistakes["true"].isin(only_true)]
if only_pred:
    mistakes = mistakes[mistakes["predicted"].isin(only_pred)]
top = mistakes.head(GALLERY_SIZE)
if top.empty:
    st.info("No mistakes match these filters.")
else:
    st.image(
        [data.x_test[i] for i in top["index"]],  # colour where the data is
        caption=[
            f"{t} → {p} ({c:.0%})"
            for t, p, c in zip(top["true"], top["predicted"], top["confidence"], strict=True)
        ],
        width=110,
    )
    with st.expander("Mistakes as a table"):
        st.dataframe(mistakes, hide_index=True, width="stretch")
