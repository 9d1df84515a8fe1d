"""The session keys more than one page reads, behind accessors: which dataset, which run is shown,
which runs the Runs page should select, and who this browser session is.
"""

from __future__ import annotations

import secrets

import streamlit as st

from core.data.catalog import find_dataset
from core.data.sources import DATASETS
from core.home import shared_server

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
    return shared_server()  # the same test as the job queue makes


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
