"""Deep Learning Playground: the router. Each page lives in pages/ and is listed here."""

import streamlit as st

st.set_page_config(
    page_title="Deep Learning Playground", page_icon=":material/neurology:", layout="wide"
)

pages = [
    st.Page("pages/train.py", title="Train", icon=":material/play_circle:", default=True),
    st.Page("pages/data.py", title="Data", icon=":material/photo_library:"),
    st.Page("pages/evaluate.py", title="Evaluate", icon=":material/grid_on:"),
    st.Page("pages/runs.py", title="Runs", icon=":material/history:"),
    st.Page("pages/sweep.py", title="Sweep", icon=":material/tune:"),
    st.Page("pages/classify.py", title="Classify", icon=":material/image_search:"),
    st.Page("pages/inside.py", title="Inside the network", icon=":material/layers:"),
]
st.navigation(pages).run()
