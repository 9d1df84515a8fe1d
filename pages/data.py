"""Data page: which Fashion-MNIST source is in use, and example images of every class."""

import numpy as np
import pandas as pd
import streamlit as st

from core import charts
from core.datasets import DATASETS, describe_source
from ui.common import class_means, dataset_or_stop

EXAMPLES_PER_CLASS = 12

st.title("The data")
name = st.selectbox(
    "Dataset",
    list(DATASETS),
    format_func=lambda key: DATASETS[key].title,
    key="data_dataset",
)
data = dataset_or_stop(name)

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
    "from brightness alone. Shirts, pullovers and coats look alike even here."
)
st.image(class_means(name), caption=list(data.class_names), width=96)
