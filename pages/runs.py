"""Runs page: every stored run in a table; compare, open, delete, download."""

import datetime as dt
import io

import pandas as pd
import streamlit as st

from core.data.dataset import DatasetUnavailable
from core.files import format_size
from core.runtime import label as device_label
from core.show import charts
from core.show.export import reproduce_script
from core.spec.settings import ConfigError
from core.store import StoreError
from ui.engine import get_store, runs_or_stop
from ui.notes import dataset_label
from ui.runs import delete_refusal, runs_selection, show_damage
from ui.session import session_owner, set_shown_run, shared_mode
from ui.sidebar import load_config

st.title("Runs")
store = get_store()
rows = runs_or_stop(store)
st.caption(
    f"{len(rows)} stored run(s) in `{store.home}`, {format_size(store.size_bytes())} of the "
    f"{format_size(store.limit_bytes)} it may hold (beyond that the least recently used runs "
    "make room)." + (" Read-only here: runs can be viewed, not deleted." if store.read_only else "")
)
if not rows:
    st.info("Nothing stored yet: every finished training lands here.", icon=":material/info:")
    st.page_link("pages/train.py", label="Go to Train", icon=":material/play_arrow:")
    st.stop()


def trained_by(owner: str) -> str:
    if not owner:
        return "—"
    return "you" if owner == session_owner() else "another session"


columns = {
    "run id": [r["run_id"] for r in rows],
    "time": [dt.datetime.fromtimestamp(r["created_at"]).strftime("%Y-%m-%d %H:%M") for r in rows],
    "dataset": [dataset_label(r["dataset"]) for r in rows],
    "architecture": [r["architecture"] for r in rows],
    "parameters": [r["params"] for r in rows],
    "epochs": [r["epochs"] for r in rows],
    "test accuracy": [r["test_accuracy"] for r in rows],
    "training s": [round(r["train_seconds"], 1) for r in rows],
    "trained on": [device_label(r["device"], r["backend"], r["executor"]) for r in rows],
    "state": ["damaged" if r["damage"] else "" for r in rows],
}
if shared_mode():
    columns["trained by"] = [trained_by(r["owner"]) for r in rows]
notice = runs_selection(rows, "runs_table")
if notice:  # another page asked for these runs (the Sweep page: a sweep's trials)
    st.info(notice, icon=":material/checklist:")
picked = st.dataframe(
    pd.DataFrame(columns),
    hide_index=True,
    width="stretch",
    on_select="rerun",
    selection_mode="multi-row",
    key="runs_table",
    column_config={"test accuracy": st.column_config.NumberColumn(format="%.4f")},
)
# runs_selection remapped the selection to this table's rows: a gone run was dropped
selected = [rows[i]["run_id"] for i in picked.selection.rows if i < len(rows)] if picked else []
if not selected:
    st.caption("Select rows (the boxes on the left) to compare, open, delete or download runs.")
    st.stop()

by_id = {row["run_id"]: row for row in rows}
results, damaged = {}, {}
for run_id in selected:
    try:
        result = store.get(run_id)
    except StoreError as exc:  # one damaged run must not hide the others
        damaged[run_id] = exc
        continue
    if result is not None:
        results[run_id] = result

if len(results) > 1:
    st.subheader("Compare")
    histories = {k: v.history for k, v in results.items()}
    a, b = st.columns(2)
    a.plotly_chart(charts.compare_curves(histories, "loss"), width="stretch", key="runs_loss")
    b.plotly_chart(charts.compare_curves(histories, "accuracy"), width="stretch", key="runs_acc")
    with st.expander("Curve numbers (table)"):
        st.dataframe(
            pd.DataFrame(
                {f"{k} {m}": pd.Series(v) for k, h in histories.items() for m, v in h.items()}
            ).rename(index=lambda i: i + 1),
            width="stretch",
        )
    configs = {k: v.config.to_params() for k, v in results.items()}
    diff = pd.DataFrame(configs)
    differing = diff[diff.nunique(axis=1) > 1]
    st.write("**Settings that differ**" if len(differing) else "Same settings.")
    if len(differing):
        st.dataframe(differing, width="stretch")

for run_id, error in damaged.items():
    with st.container(border=True):
        st.markdown(f"**{run_id}** · {by_id[run_id]['architecture']}")
        show_damage(store, run_id, error, key="runs")

for run_id, result in results.items():
    with st.container(border=True):
        st.markdown(
            f"**{run_id}** · {result.config.describe()} · test accuracy {result.test_accuracy:.4f}"
        )
        c1, c2, c3, c4, c5 = st.columns(5)
        if c1.button(
            "Open",
            key=f"runs_open_{run_id}",
            icon=":material/open_in_new:",
            help="Load this run's settings into the sidebar and the URL",
        ):
            load_config(result.config)
            set_shown_run(run_id)
            st.switch_page("pages/train.py")
        refusal = delete_refusal(store, by_id.get(run_id))
        if not refusal:
            with c2.popover("Delete", icon=":material/delete:"):
                st.write(f"Delete run {run_id} and its model for good?")
                if st.button("Yes, delete", key=f"runs_delete_{run_id}", type="primary"):
                    store.delete(run_id)
                    st.rerun()
        try:
            model_file, model_error = store.model_bytes(run_id), None
        except StoreError as exc:
            model_file, model_error = None, exc
        if model_file is not None:
            c3.download_button(
                "Model (.keras)",
                model_file,
                file_name=f"playground_{run_id}.keras",
                key=f"runs_model_{run_id}",
                icon=":material/download:",
            )
        history = io.StringIO()
        pd.DataFrame(result.history).rename_axis("epoch").rename(index=lambda i: i + 1).to_csv(
            history
        )
        c4.download_button(
            "History (CSV)",
            history.getvalue(),
            file_name=f"history_{run_id}.csv",
            mime="text/csv",
            key=f"runs_history_{run_id}",
            icon=":material/table:",
        )
        try:
            script, script_refusal = reproduce_script(result.config, run_id), None
        except (ConfigError, DatasetUnavailable) as exc:  # e.g. its imported pictures are gone
            script, script_refusal = None, str(exc)
        if script is not None:
            c5.download_button(
                "Python script",
                script,
                file_name=f"playground_{run_id}.py",
                mime="text/x-python",
                key=f"runs_script_{run_id}",
                icon=":material/code:",
            )
        else:
            c5.caption(f"No script: {script_refusal}")
        if refusal:
            st.caption(f"Delete is not offered: {refusal[0].lower()}{refusal[1:]}")
        if model_error is not None:
            show_damage(store, run_id, model_error, key="runs")
