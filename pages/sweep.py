"""Sweep page: ask a question (or build a search space), let Optuna try settings, see the answer.

The sidebar's network is the base run; every trial is an ordinary run through the same queue and
store as Train, so a trial trained before is answered at once and every trial shows on Runs.
"""

import math

import streamlit as st

from core.data.dataset import DatasetUnavailable
from core.run.queue import QueueFull
from core.sweeps import study
from core.sweeps.runner import background, start_background
from core.sweeps.space import EXPERIMENTS, SAMPLERS, SweepError, SweepSpec
from ui.engine import dataset_or_stop, get_dataset, get_queue, get_store
from ui.session import dataset_choice, pick_on_runs, session_owner, set_shown_run
from ui.sidebar import load_config, sidebar_config
from ui.sweep_view import best_card, draw_figures, space_builder, trial_frame

POLL_SECONDS = 0.5
NAME_KEY = "sweep_name"  # the sweep this session shows

st.title("Sweep")
st.caption(
    "Optuna tries settings of the sidebar's network, trains each as an ordinary run and keeps "
    "the one with the best validation accuracy. Trials share the training queue with everyone's "
    "runs: at most one trial per worker waits in it, so a run started on Train meanwhile goes next."
)
data = dataset_or_stop(dataset_choice())
base, error = sidebar_config(len(data.x_train), page="sweep")
store, queue = get_store(), get_queue()
home = store.home
st.caption(
    f"Base run (the sidebar): {base.describe()} · "
    f"{min(base.train_size or len(data.x_train), len(data.x_train)):,} training images · "
    f"{base.epochs} epoch(s) · batch {base.batch_size} · {base.optimizer}"
)

ask = st.segmented_control(
    "Search",
    ["A ready-made question", "My own space"],
    key="sweep_mode",
    default="A ready-made question",
)
title, problem = "", None
if ask == "My own space":
    space, problem = space_builder()
    sampler = st.selectbox("Sampler", SAMPLERS, key="sweep_sampler")
    trials = st.number_input("Trials", 1, 200, 8, key="sweep_trials_own")
else:
    experiment = EXPERIMENTS[
        st.selectbox(
            "Question",
            list(EXPERIMENTS),
            format_func=lambda k: EXPERIMENTS[k].title,
            key="sweep_experiment",
        )
    ]
    st.caption(experiment.note + f" ({experiment.param.text()}, {experiment.sampler} sampler)")
    space, sampler, title = (experiment.param,), experiment.sampler, experiment.title
    trials = st.number_input(
        "Trials", 1, 200, experiment.trials, key=f"sweep_trials_{experiment.key}"
    )

spec = None
if not problem:
    try:
        spec = SweepSpec(base, space, int(trials), sampler=sampler).checked()
    except SweepError as exc:
        problem = str(exc)
problem = problem or error
if problem:
    st.error(problem, icon=":material/block:")
name = spec.default_name() if spec else st.session_state.get(NAME_KEY)
shown = st.session_state.get(NAME_KEY)
runner = background(home, shown) if shown else None
active = bool(runner and runner.alive)


def start() -> None:
    try:
        start_background(home, name, queue, store, data, spec, session=session_owner())
    except (SweepError, QueueFull) as exc:
        st.session_state.sweep_notice = str(exc)
        return
    st.session_state[NAME_KEY] = name
    st.session_state.sweep_notice = None


def stop() -> None:
    if runner is not None:
        runner.stop()  # the sweep's queued and running trials are cancelled now


left, right, _ = st.columns([1, 1, 3])
left.button(
    "Start",
    type="primary",
    key="sweep_start",
    disabled=bool(problem) or active,
    on_click=start,
    icon=":material/play_arrow:",
    help="Resumes the sweep if it ran before: its finished trials are kept.",
)
right.button("Stop", key="sweep_stop", disabled=not active, on_click=stop, icon=":material/stop:")
if st.session_state.get("sweep_notice"):
    st.warning(st.session_state.sweep_notice)
if st.session_state.get("sweep_done_notice"):
    st.success(st.session_state.pop("sweep_done_notice"), icon=":material/check:")

past = study.names(home)
if past and not active:
    with st.expander(f"Earlier sweeps ({len(past)})"):
        picked = st.selectbox("Show", past, index=None, key="sweep_pick")
        if picked and picked != shown:
            st.session_state[NAME_KEY] = shown = picked
if not shown or shown not in past:
    st.info("Choose a question or a space, then Start.", icon=":material/tune:")
    st.stop()


def current() -> study.SweepSummary:
    live = background(home, shown)
    return live.summary() if live is not None else study.summary(home, shown)


@st.fragment(run_every=POLL_SECONDS if active else None)
def live_view() -> None:
    now, seen = current(), st.session_state.get("sweep_seen")
    st.session_state.sweep_seen = (shown, now.ended)
    if active and ((seen is not None and seen != (shown, now.ended)) or not now.running):
        st.rerun()  # a trial ended, or the sweep did: redraw the whole page (best card too)
    st.progress(
        min(1.0, now.ended / max(1, now.spec.trials)),
        text=f"Sweep `{shown}`: {now.ended} of {now.spec.trials} trial(s) ended"
        + (" · running" if now.running else ""),
    )
    runner_now = background(home, shown)
    if runner_now is not None and runner_now.error:
        st.error(runner_now.error)
    st.dataframe(trial_frame(now), hide_index=True, width="stretch", key="sweep_table")
    draw_figures(home, now, title if shown == name else "")


live_view()
summary = current()
config = best_card(summary)
if config is not None:
    best = summary.best
    a, b = st.columns(2)
    if a.button("Open in Train", key="sweep_open_best", icon=":material/open_in_new:"):
        load_config(config)
        set_shown_run(best.run_id)
        st.switch_page("pages/train.py")
    # a cached trial answers with an earlier trial's run: count each stored run once
    trial_runs = list(dict.fromkeys(t.run_id for t in summary.finished if t.run_id))
    if b.button(
        f"Compare on Runs ({len(trial_runs)} trial runs)",
        key="sweep_compare",
        icon=":material/history:",
        help="Opens Runs with this sweep's finished trials selected: their curves overlaid and "
        "their settings side by side.",
    ):
        pick_on_runs(trial_runs, f"trial runs of sweep {summary.name}")
        st.switch_page("pages/runs.py")


def run_more(more: int) -> None:
    """Add trials to the shown sweep and resume it on its own dataset (its trials are kept)."""
    try:
        old = study.summary(home, shown).spec
        sweep_data = get_dataset(old.base.dataset)
        study.extend(home, shown, old.trials + more)
        start_background(home, shown, queue, store, sweep_data, session=session_owner())
    except (SweepError, QueueFull, DatasetUnavailable) as exc:
        st.session_state.sweep_notice = str(exc)
        return
    st.session_state.sweep_notice = None


def delete_shown() -> None:
    try:
        study.delete(home, shown)
    except SweepError as exc:
        st.session_state.sweep_notice = str(exc)
        return
    st.session_state[NAME_KEY] = None
    st.session_state.sweep_notice = None
    st.session_state.sweep_done_notice = (
        f"Deleted the sweep '{shown}'. Its {len(summary.finished)} finished trial run(s) stay on "
        "Runs: they are ordinary runs."
    )


if not active:
    st.subheader("This sweep")
    spec_now = summary.spec
    grid_done = spec_now.sampler == "grid" and spec_now.trials >= math.prod(
        len(p.grid_values()) for p in spec_now.space
    )
    more_col, run_col, delete_col = st.columns([1, 1, 1], vertical_alignment="bottom")
    more = more_col.number_input("More trials", 1, 200, 4, key="sweep_more")
    run_col.button(
        f"Run {int(more)} more",
        key="sweep_extend",
        on_click=run_more,
        args=(int(more),),
        icon=":material/add:",
        disabled=grid_done,
        help="Every point of this grid has its trial already."
        if grid_done
        else "Adds trials to this sweep and resumes it: the trials it has are kept, and Optuna "
        "goes on from what they taught it.",
    )
    delete_col.button(
        "Delete sweep",
        key="sweep_delete",
        on_click=delete_shown,
        icon=":material/delete:",
        help="Removes the sweep's study; its trials stay on Runs as ordinary runs.",
    )
