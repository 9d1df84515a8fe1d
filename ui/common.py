"""Helpers shared by pages: the engine objects one server shares (dataset, store, job queue)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.analyst import AnalysisError, Analyst, shared_analyst
from core.config import RunConfig, fit_size, layer_table
from core.datasets import Dataset, DatasetUnavailable, load_dataset
from core.images import Reference, reference_from
from core.jobs import JobQueue, shared_queue
from core.store import RunStore, default_home


@st.cache_resource(show_spinner="Loading the dataset…")
def get_dataset(name: str) -> Dataset:
    """Loaded once per server process and shared by every session."""
    return load_dataset(name)


@st.cache_data(show_spinner=False)
def class_means(name: str) -> list:
    """Per-class mean training image (uint8), computed once per dataset."""
    data = get_dataset(name)
    return [
        data.x_train[data.y_train == c].mean(axis=0).round().astype("uint8")
        for c in range(data.num_classes)
    ]


@st.cache_resource
def _store(home: str) -> RunStore:
    return RunStore(home)


def get_store() -> RunStore:
    # keyed by the folder, so a test (or a user) switching PLAYGROUND_HOME gets the right store
    return _store(str(default_home()))


def get_queue() -> JobQueue:
    """The process-wide training queue (trainer processes write to the same store)."""
    queue = shared_queue(store=get_store())
    queue.store = get_store()  # follow PLAYGROUND_HOME if it changed since the queue was made
    return queue


def layer_frame(config: RunConfig, data: Dataset) -> pd.DataFrame:
    rows = layer_table(config, data.input_shape, data.num_classes)
    return pd.DataFrame(
        {
            "layer": [r.name for r in rows],
            "output shape": [" × ".join(str(d) for d in r.output_shape) for r in rows],
            "parameters": [r.params for r in rows],
        }
    )


def estimate_epoch_seconds(config: RunConfig, data: Dataset, store: RunStore) -> str:
    """Seconds per epoch from the throughput of stored runs of the same network and batch size."""
    same = [
        row
        for row in store.list_runs()
        if row["architecture"] == config.describe()
        and RunConfig.from_json(row["config_json"]).batch_size == config.batch_size
        and row["images_per_second"] > 0
    ]
    if not same:
        return "unknown until a run of this network finishes"
    rate = sorted(row["images_per_second"] for row in same)[len(same) // 2]
    seconds = fit_size(config, len(data.x_train)) / rate
    return f"≈ {seconds:.0f} s per epoch ({rate:,.0f} images/s measured)"


def run_label(row: dict) -> str:
    return f"{row['run_id']} · {row['architecture']} · acc {row['test_accuracy']:.3f}"


@st.cache_data(show_spinner=False)
def data_reference(name: str) -> Reference:
    """What the training images look like (class means, spreads), to flag unfamiliar pictures."""
    data = get_dataset(name)
    return reference_from(data.x_train, data.y_train, data.num_classes)


def get_analyst() -> Analyst:
    """The model process that answers Classify and Inside-the-network requests."""
    return shared_analyst()


def answer_or_stop(fn, *args):
    """Call fn (which asks the model process) under a spinner; show a failure as one sentence."""
    note = (
        "Asking the model…"
        if get_analyst().started
        else "Starting the model process (the first time takes a few seconds)…"
    )
    with st.spinner(note):
        try:
            return fn(*args)
        except AnalysisError as exc:
            st.error(str(exc), icon=":material/error:")
            st.stop()


def runs_warming_the_model(store: RunStore) -> list[dict]:
    """Stored runs; if there are any, start the model process while the page is being read."""
    rows = store.list_runs()
    if rows:
        get_analyst().start()
    return rows


def stored_run_or_stop(store: RunStore, run_id: str):
    """The stored run, or a sentence and the end of this page run if it was deleted meanwhile."""
    result = store.get(run_id)
    if result is None:
        st.error("That run was deleted meanwhile; choose another.")
        st.stop()
    return result


def dataset_or_stop(name: str) -> Dataset:
    """The cached dataset, or its unavailability sentence and the end of this page run."""
    try:
        return get_dataset(name)
    except DatasetUnavailable as exc:
        st.error(str(exc))
        st.stop()


def pick_run(rows: list[dict], key: str, label: str = "Run", preferred: str | None = None) -> str:
    """A run selectbox that starts on `preferred` if stored, else the most accurate run."""
    best_first = sorted(rows, key=lambda row: -row["test_accuracy"])
    ids = [row["run_id"] for row in best_first]
    labels = {row["run_id"]: run_label(row) for row in best_first}
    if st.session_state.get(key) not in ids:
        st.session_state[key] = preferred if preferred in ids else ids[0]
    return st.selectbox(label, ids, format_func=labels.get, key=key)
