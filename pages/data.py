"""Data page: the dataset in use and examples of every class; import your own images."""

import numpy as np
import pandas as pd
import streamlit as st

from core.data.catalog import find_dataset
from core.data.dataset import Dataset, DatasetUnavailable
from core.data.registry import dataset_names, describe_source
from core.data.sources import DATASETS
from core.show import charts
from ui.engine import class_means, get_dataset
from ui.importer import SHOW, import_form, imported_list, imported_report
from ui.notes import dataset_label
from ui.session import DEFAULT_DATASET

EXAMPLES_PER_CLASS = 12

st.title("The data")
names = dataset_names()
if SHOW in st.session_state:  # just imported: show it (set before the select is drawn)
    st.session_state.data_dataset = st.session_state.pop(SHOW)
if st.session_state.get("data_dataset") not in names:  # first visit, or deleted meanwhile
    st.session_state.data_dataset = DEFAULT_DATASET
name = st.selectbox("Dataset", names, format_func=dataset_label, key="data_dataset")


def show_dataset(name: str, data: Dataset) -> None:
    """Where the data comes from, examples of every class, the balance and the class means."""
    if data.is_sample:
        st.warning(describe_source(data), icon=":material/warning:")
    else:
        st.success(describe_source(data), icon=":material/check_circle:")
    info = None if name in DATASETS else find_dataset(name)
    if info is not None:
        with st.expander("How it was imported: pictures per class, skipped files, warnings"):
            imported_report(info)

    colour = len(data.input_shape) == 3
    height, width = data.input_shape[:2]
    st.subheader("Examples of each class")
    st.caption(
        f"{EXAMPLES_PER_CLASS} training images per class, {height}×{width} "
        f"{'colour' if colour else 'grey'} pixels each: this is all the network ever sees."
    )
    # a white line between pictures; colour pictures get none between their channels
    border = ((1, 1), (1, 1), (0, 0)) if colour else 1
    for index, class_name in enumerate(data.class_names):
        picks = np.flatnonzero(data.y_train == index)[:EXAMPLES_PER_CLASS]
        label, images = st.columns([1, 6], vertical_alignment="center")
        label.markdown(f"**{class_name}**")
        if not len(picks):
            images.caption("No training images in this class.")
            continue
        strip = np.concatenate(
            [np.pad(img, border, constant_values=255) for img in data.x_train[picks]], 1
        )
        # a strip of few pictures would be blown up to the column's width: keep it at 3x at most
        images.image(strip, width=min(3 * strip.shape[1], 900) if len(picks) < 8 else "stretch")

    st.subheader("Class balance")
    counts = {
        "training": np.bincount(data.y_train, minlength=data.num_classes).tolist(),
        "test": np.bincount(data.y_test, minlength=data.num_classes).tolist(),
    }
    st.plotly_chart(charts.class_balance(counts, data.class_names), width="stretch")
    with st.expander("Class balance numbers (table)"):
        st.dataframe(pd.DataFrame(counts, index=list(data.class_names)), width="stretch")

    st.subheader("The average image of each class")
    st.caption(
        "Every training image of a class averaged pixel by pixel: the shape a network can pick up "
        "from brightness alone."
        + (" Shirts, pullovers and coats look alike even here." if name == DEFAULT_DATASET else "")
    )
    st.image(class_means(name), caption=list(data.class_names), width=96)


try:
    show_dataset(name, get_dataset(name))
except DatasetUnavailable as exc:  # the import section below still works
    st.error(str(exc), icon=":material/error:")

st.divider()
st.header("Your own images", anchor="import")
st.caption(
    "Train on your own pictures: a zip whose folders are the classes, or one class at a time "
    "from files and the camera. Each picture goes through the same checks as uploads on "
    "Classify; a file that cannot be used is listed with its reason and skipped. At least two "
    "classes with ten usable pictures each."
)
import_form()
st.subheader("Imported datasets")
imported_list()
