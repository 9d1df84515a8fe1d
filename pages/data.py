"""Data page: which Fashion-MNIST source is in use, and example images of every class."""

import numpy as np
import streamlit as st

from core.datasets import DATASETS, DatasetUnavailable, describe_source
from ui.common import get_dataset

EXAMPLES_PER_CLASS = 12

st.title("The data")
name = st.selectbox(
    "Dataset",
    list(DATASETS),
    format_func=lambda key: DATASETS[key].title,
    key="data_dataset",
)
try:
    data = get_dataset(name)
except DatasetUnavailable as exc:
    st.error(str(exc))
    st.stop()

if data.is_sample:
    st.warning(describe_source(data), icon=":material/warning:")
else:
    st.success(describe_source(data), icon=":material/check_circle:")

st.subheader("Examples of each class")
st.caption(
    f"{EXAMPLES_PER_CLASS} training images per class, {data.input_shape[0]}×{data.input_shape[1]} "
    "grey pixels each: this is all the network ever sees."
)
for index, class_name in enumerate(data.class_names):
    picks = np.flatnonzero(data.y_train == index)[:EXAMPLES_PER_CLASS]
    strip = np.concatenate([np.pad(img, 1, constant_values=255) for img in data.x_train[picks]], 1)
    label, images = st.columns([1, 6], vertical_alignment="center")
    label.markdown(f"**{class_name}**")
    images.image(strip, width="stretch", clamp=True)
