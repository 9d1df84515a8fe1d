"""Stored runs on a page: pickers, the Runs table's selection, who may delete, and a damaged run
shown with its ways out.
"""

from __future__ import annotations

import streamlit as st

from core.spec.config import RunConfig
from core.store import RunStore, StoreError
from ui.session import RUNS_ORDER_KEY, RUNS_PICK_KEY, session_owner, set_shown_run, shared_mode


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


def delete_refusal(store: RunStore, row: dict | None) -> str:
    """Why this session may not delete the run ("" if it may)."""
    if store.read_only:
        return f"The store {store.home} is read-only here, so runs cannot be deleted."
    if shared_mode() and (row is None or row.get("owner") != session_owner()):
        return "On this shared server only the session that trained a run may delete it."
    return ""


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


def run_label(row: dict) -> str:
    return f"{row['run_id']} · {row['architecture']} · acc {row['test_accuracy']:.3f}"


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


def pick_run(rows: list[dict], key: str, label: str = "Run", preferred: str | None = None) -> str:
    """A run selectbox that starts on `preferred` if stored, else the most accurate run."""
    best_first = sorted(rows, key=lambda row: -row["test_accuracy"])
    ids = [row["run_id"] for row in best_first]
    labels = {row["run_id"]: run_label(row) for row in best_first}
    if st.session_state.get(key) not in ids:
        st.session_state[key] = preferred if preferred in ids else ids[0]
    return st.selectbox(label, ids, format_func=labels.get, key=key)
