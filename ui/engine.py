"""The engine objects one server shares, cached once per process: datasets (per version of an
imported one), the run store, the job queue, the model process, and what is derived from a
dataset (class means, the familiarity reference, prepared uploads). Each *_or_stop helper shows
its failure as one sentence and ends the page run.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import streamlit as st

from core.data.catalog import find_dataset
from core.data.dataset import Dataset, DatasetUnavailable
from core.data.familiar import Reference, reference_from
from core.data.images import PreparedImage, prepare_for
from core.data.reading import ImageRefused
from core.data.registry import load_dataset
from core.data.sources import DATASETS
from core.home import default_home
from core.run.analyst import AnalysisError, Analyst, shared_analyst
from core.run.queue import JobQueue
from core.run.ray_executor import ClusterUnreachable
from core.store import RunStore, StoreError
from core.workspace import shared_queue
from ui.session import NOTICE_SEEN_KEY


def dataset_version(name: str) -> str:
    """What the name stands for right now. An imported dataset can be re-imported, renamed or
    deleted by another session or the CLI, so the caches below are keyed by its fingerprint."""
    if name in DATASETS:
        return "built-in"
    info = find_dataset(name)
    return info.dataset_id if info is not None else "missing"


@st.cache_resource(show_spinner="Loading the dataset…", max_entries=8)
def _loaded(name: str, version: str) -> Dataset:
    # a new version of an imported name: skip core.data.registry's own per-process cache, which
    # cannot know what another process (the CLI) changed on disk
    return load_dataset(name, refresh=version != "built-in")


def get_dataset(name: str) -> Dataset:
    """Loaded once per server process (and per version of an imported dataset), shared by every
    session."""
    return _loaded(name, dataset_version(name))


@st.cache_data(show_spinner=False, max_entries=16)
def _class_means(name: str, version: str) -> list:
    data = get_dataset(name)
    means = []
    for c in range(data.num_classes):
        members = data.x_train[data.y_train == c]
        mean = members.mean(axis=0) if len(members) else np.zeros(data.input_shape)
        means.append(mean.round().astype("uint8"))
    return means


def forget_dataset(name: str) -> None:
    """Drop this server's cached copies of a dataset about to be renamed or deleted."""
    version = dataset_version(name)
    _loaded.clear(name, version)
    _class_means.clear(name, version)
    _reference.clear(name, version)


def class_means(name: str) -> list:
    """Per-class mean training image (uint8; colour where the data is), once per dataset."""
    return _class_means(name, dataset_version(name))


@st.cache_resource
def _store(home: str) -> RunStore:
    return RunStore(home)


def get_store() -> RunStore:
    """The store in PLAYGROUND_HOME, or its sentence and the end of this page run."""
    try:
        # keyed by the folder, so a test (or a user) switching PLAYGROUND_HOME gets the right store
        store = _store(str(default_home()))
    except StoreError as exc:  # not cached: the next run tries again, e.g. once the folder is fixed
        st.error(str(exc), icon=":material/error:")
        st.stop()
    if store.notice and st.session_state.get(NOTICE_SEEN_KEY) != store.notice:
        st.session_state[NOTICE_SEEN_KEY] = store.notice  # say a repair once per session
        st.warning(store.notice, icon=":material/build:")
    return store


def runs_or_stop(store: RunStore) -> list[dict]:
    """The index rows, or the index's damage sentence and the end of this page run."""
    try:
        return store.list_runs()
    except StoreError as exc:
        st.error(str(exc), icon=":material/error:")
        st.stop()


def get_queue() -> JobQueue:
    """The process-wide training queue (trainer processes write to the same store); stops the
    page with one sentence when the Ray cluster it should use cannot be reached."""
    try:
        queue = shared_queue(store=get_store())
    except ClusterUnreachable as exc:  # PLAYGROUND_RAY_ADDRESS names a cluster that is not there
        st.error(str(exc), icon=":material/cloud_off:")
        st.stop()
    queue.store = get_store()  # follow PLAYGROUND_HOME if it changed since the queue was made
    return queue


@st.cache_data(show_spinner=False, max_entries=16)
def _reference(name: str, version: str) -> Reference:
    data = get_dataset(name)
    reference = reference_from(data.x_train, data.y_train, data.num_classes)
    if data.mode != "fashion":
        # "as they are" pictures fill their square with background: how much of it is not
        # black says nothing about the object, so only the distance to the class mean counts
        reference = dataclasses.replace(reference, ink_range=(0.0, 1.0))
    return reference


def data_reference(name: str) -> Reference:
    """What the training images look like (class means, spreads), to flag unfamiliar pictures."""
    return _reference(name, dataset_version(name))


@st.cache_data(max_entries=64, show_spinner=False)
def _prepared(name: str, version: str, data: bytes) -> PreparedImage | str:
    try:
        return prepare_for(get_dataset(name), data)
    except ImageRefused as exc:
        return str(exc)
    except Exception as exc:  # a reader bug costs this file only, never the page
        return f"it could not be read ({type(exc).__name__}: {exc})"


def prepared_upload(name: str, data: bytes) -> PreparedImage | str:
    """A picture's bytes prepared the way the dataset's pictures were, cached by the bytes and
    the dataset's version; a refusal is its sentence."""
    return _prepared(name, dataset_version(name), data)


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
    rows = runs_or_stop(store)
    if rows:
        get_analyst().start()
    return rows


def dataset_or_stop(name: str) -> Dataset:
    """The cached dataset, or its unavailability sentence and the end of this page run."""
    try:
        return get_dataset(name)
    except DatasetUnavailable as exc:
        st.error(str(exc))
        st.stop()
