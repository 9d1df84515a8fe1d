"""Helpers shared by pages: the engine objects one server shares (dataset, store, job queue),
the session keys pages share (behind accessors), and how a page shows a damaged run."""

from __future__ import annotations

import dataclasses
import os
import secrets

import numpy as np
import pandas as pd
import streamlit as st

from core.analyst import AnalysisError, Analyst, shared_analyst
from core.backends import BACKEND_LABELS, resolve
from core.config import RunConfig, fit_size, layer_table
from core.datasets import (
    DATASETS,
    Dataset,
    DatasetUnavailable,
    dataset_title,
    load_dataset,
)
from core.images import ImageRefused, PreparedImage, Reference, reference_from
from core.imports import find_dataset, prepare_for
from core.jobs import JobQueue, shared_queue
from core.ray_executor import ClusterUnreachable
from core.store import RunStore, StoreError, default_home
from core.training import estimate_seconds


def dataset_version(name: str) -> str:
    """What the name stands for right now. An imported dataset can be re-imported, renamed or
    deleted by another session or the CLI, so the caches below are keyed by its fingerprint."""
    if name in DATASETS:
        return "built-in"
    info = find_dataset(name)
    return info.dataset_id if info is not None else "missing"


@st.cache_resource(show_spinner="Loading the dataset…", max_entries=8)
def _loaded(name: str, version: str) -> Dataset:
    # a new version of an imported name: skip core.datasets' own per-process cache, which
    # cannot know what another process (the CLI) changed on disk
    return load_dataset(name, refresh=version != "built-in")


def dataset_label(name: str) -> str:
    """The dataset's title for people; a name no longer registered (deleted) as it is."""
    try:
        return dataset_title(name)
    except (KeyError, DatasetUnavailable):
        return name


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


DEFAULT_DATASET = "fashion_mnist"
# Session keys more than one page reads; pages go through the accessors below.
OWNER_KEY = "session_owner"
DATASET_KEY = "sb_dataset"
SHOWN_RUN_KEY = "train_shown_run"
NOTICE_SEEN_KEY = "store_notice_seen"
RUNS_PICK_KEY = "runs_pick"  # (run ids, why) the Runs page selects when it next opens
RUNS_ORDER_KEY = "runs_order"  # the run ids in the order the Runs table last showed them


def shared_mode() -> bool:
    """One server for many people (PLAYGROUND_SHARED=1): each run belongs to one session."""
    return os.environ.get("PLAYGROUND_SHARED") == "1"  # the same test as core.jobs makes


def session_owner() -> str:
    """A stable id of this browser session, made once; the store records it with each run."""
    if OWNER_KEY not in st.session_state:
        st.session_state[OWNER_KEY] = secrets.token_hex(8)
    return st.session_state[OWNER_KEY]


def listed_name(name: str) -> str | None:
    """The name a dataset is listed under now: the name itself, the new one after a rename (a
    run keeps the name it was trained under), or None when there is no such dataset."""
    if name in DATASETS:
        return name
    info = find_dataset(name)
    return info.name if info is not None else None


def dataset_choice() -> str:
    """The dataset chosen in the sidebar (before the sidebar is first drawn: the URL's), if it
    still exists; an imported dataset deleted meanwhile falls back to Fashion-MNIST."""
    name = st.session_state.get(DATASET_KEY) or st.query_params.get("dataset", DEFAULT_DATASET)
    return listed_name(name) or DEFAULT_DATASET


def shown_run() -> str | None:
    """The run the Train page shows last (other pages start on it)."""
    return st.session_state.get(SHOWN_RUN_KEY)


def set_shown_run(run_id: str | None) -> None:
    if run_id is None:
        st.session_state.pop(SHOWN_RUN_KEY, None)
    else:
        st.session_state[SHOWN_RUN_KEY] = run_id


def pick_on_runs(run_ids: list[str], why: str) -> None:
    """Have the Runs page open with these runs selected (compared), saying why."""
    st.session_state[RUNS_PICK_KEY] = (list(run_ids), why)


def runs_selection(rows: list[dict], table_key: str) -> str | None:
    """Make the Runs table's selection follow run ids, not row positions; apply a pending pick.

    Streamlit keeps a dataframe's selection as row positions. The table lists the newest run
    first, so a run stored by a sweep, another session or a delete between two reruns would
    shift every position and silently swap the comparison. This remaps the previous selection
    by run id before the table is drawn (dropping runs that are gone) and returns the notice of
    a pick_on_runs, if one was waiting.
    """
    s = st.session_state
    ids = [row["run_id"] for row in rows]
    before = s.get(RUNS_ORDER_KEY)
    state = s.get(table_key)
    chosen = []
    if before and state:
        chosen = [before[i] for i in state["selection"]["rows"] if i < len(before)]
    pick = s.pop(RUNS_PICK_KEY, None)
    if pick:
        chosen = list(dict.fromkeys(pick[0]))
    s[RUNS_ORDER_KEY] = ids
    where = {run_id: i for i, run_id in enumerate(ids)}
    positions = [where[run_id] for run_id in chosen if run_id in where]
    if pick or (before is not None and before != ids):
        s[table_key] = {"selection": {"rows": positions, "columns": []}}
    if pick:
        return (
            f"Selected {len(positions)} {pick[1]}; select or clear rows to change the comparison."
        )
    return None


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


def delete_refusal(store: RunStore, row: dict | None) -> str:
    """Why this session may not delete the run ("" if it may)."""
    if store.read_only:
        return f"The store {store.home} is read-only here, so runs cannot be deleted."
    if shared_mode() and (row is None or row.get("owner") != session_owner()):
        return "On this shared server only the session that trained a run may delete it."
    return ""


def runs_or_stop(store: RunStore) -> list[dict]:
    """The index rows, or the index's damage sentence and the end of this page run."""
    try:
        return store.list_runs()
    except StoreError as exc:
        st.error(str(exc), icon=":material/error:")
        st.stop()


def show_damage(store: RunStore, run_id: str, error: StoreError, key: str) -> None:
    """A damaged run: its sentence, and the ways out this session may take."""
    from ui.sidebar import load_config  # the sidebar imports this module

    st.error(str(error), icon=":material/broken_image:")
    try:
        row = store.index_row(run_id)
        # the index keeps its own copy of the config, so a lost config.json can still be retrained
        config = RunConfig.from_json(row["config_json"]) if row else None
    except Exception:  # a config that no longer reads back: nothing to retrain from
        row, config = None, None
    refusal = delete_refusal(store, row)
    if refusal:
        st.caption(refusal)
        return
    a, b = st.columns(2)
    if a.button("Delete this run", key=f"{key}_damaged_delete_{run_id}", icon=":material/delete:"):
        store.delete(run_id)
        st.rerun()
    if config is not None and b.button(
        "Retrain",
        key=f"{key}_damaged_retrain_{run_id}",
        icon=":material/replay:",
        help="Removes the damaged files and opens its settings on Train, ready to train again.",
    ):
        store.delete(run_id)  # Train must not meet the damaged copy as if it were the result
        load_config(config)
        set_shown_run(None)
        st.switch_page("pages/train.py")


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


def layer_frame(config: RunConfig, data: Dataset) -> pd.DataFrame:
    rows = layer_table(config, data.input_shape, data.num_classes)
    return pd.DataFrame(
        {
            "layer": [r.name for r in rows],
            "output shape": [" × ".join(str(d) for d in r.output_shape) for r in rows],
            "parameters": [r.params for r in rows],
        }
    )


def time_note(config: RunConfig, data: Dataset, store: RunStore) -> str:
    """How long training should take here, said before it starts."""
    seconds, basis = estimate_seconds(
        config, data.input_shape, fit_size(config, len(data.x_train)), store.list_runs()
    )
    text = f"about {_duration(seconds)} here ({basis})"
    if seconds > 120:
        text += "; a GPU trains it in seconds to a minute"
    return text


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def backend_note(config: RunConfig) -> str:
    """Which backend will train it, and why (auto's pick is named)."""
    try:
        chosen = resolve(config)
    except Exception as exc:  # BackendUnavailable: the sidebar already says so
        return str(exc)
    name = BACKEND_LABELS[chosen]
    return f"backend {name} (auto's pick)" if config.backend == "auto" else f"backend {name}"


def run_label(row: dict) -> str:
    return f"{row['run_id']} · {row['architecture']} · acc {row['test_accuracy']:.3f}"


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


def picture_size(data: Dataset) -> str:
    """What one network input is, in words: "28×28 grey", "32×32 colour"."""
    height, width = data.input_shape[:2]
    return f"{height}×{width} " + ("colour" if len(data.input_shape) == 3 else "grey")


def preparation(data: Dataset) -> str:
    """How a picture becomes this dataset's input, in words."""
    if data.mode == "fashion":
        how = "trimmed to the object, shrunk, centred, negated to light-on-black"
    else:
        how = "kept whole, in colour, shrunk and padded to a square"
    return f"each picture becomes a {picture_size(data)} square ({how})"


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


def stored_run_or_stop(store: RunStore, run_id: str, key: str = "stored"):
    """The stored run, or a sentence (with a way out, if damaged) and the end of this page run."""
    try:
        result = store.get(run_id)
    except StoreError as exc:
        show_damage(store, run_id, exc, key)
        st.stop()
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
