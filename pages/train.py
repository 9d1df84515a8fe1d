"""Train page: build the network in the sidebar, train it in the background, watch it learn."""

import math

import pandas as pd
import streamlit as st

from core.data.registry import describe_source
from core.run.queue import QueueFull
from core.runtime import label as device_label
from core.runtime import resolve
from core.show import charts
from core.spec.plan import count_params
from core.spec.settings import ConfigError
from core.store import StoreError
from ui.engine import dataset_or_stop, get_queue, get_store
from ui.notes import backend_note, layer_frame, time_note
from ui.runs import show_damage
from ui.session import dataset_choice, session_owner, set_shown_run, shown_run
from ui.sidebar import sidebar_config

POLL_SECONDS = 0.5


st.title("Train")
data = dataset_or_stop(dataset_choice())
config, error = sidebar_config(len(data.x_train))
store, queue = get_store(), get_queue()
if data.is_sample:
    st.warning(describe_source(data), icon=":material/warning:")

if error:
    st.error(error, icon=":material/block:")
try:  # the network may be fine while another setting is not (a missing backend, a batch size)
    params = count_params(config, data.input_shape, data.num_classes)
except ConfigError:
    params = None
c1, c2, c3 = st.columns(3)
c1.metric("Parameters", f"{params:,}" if params is not None else "—")
c2.metric("Training images", f"{min(config.train_size or len(data.x_train), len(data.x_train)):,}")
c3.metric("Epochs × batch", f"{config.epochs} × {config.batch_size}")
run_id = config.run_id_for(data.fingerprint)
if not error:
    st.caption(
        f"Run id `{run_id}` · {config.describe()} · {backend_note(config)} · "
        f"{time_note(config, data, store)} · trains on {queue.executor.label}"
    )
    with st.expander("Layers, output shapes and parameters"):
        st.dataframe(layer_frame(config, data), hide_index=True, width="stretch")

job_id = st.session_state.get("train_job_id")
status = queue.status(job_id) if job_id else None
active = bool(status and status.active)
try:
    stored = None if error else store.get(run_id)
except StoreError as exc:  # damaged: say so, offer delete/retrain, and show no stale result
    show_damage(store, run_id, exc, key="train")
    stored = None


if not error and stored is None and not active:
    queue.warm(resolve(config))  # the trainer starts while the person reads the page


def start(force: bool = False) -> None:
    shown = shown_run()
    try:
        st.session_state.train_job_id = queue.submit(config, force=force, session=session_owner())
    except QueueFull as exc:
        st.session_state.train_notice = str(exc)
        return
    st.session_state.train_prev_run = shown
    st.session_state.train_notice = None


def stop(job: int) -> None:
    """Stop this session's wait; on a shared server the run goes on for others who wait too."""
    outcome = queue.cancel(job, session=session_owner())
    if outcome is not None and outcome.detached:
        st.session_state.train_notice = outcome.message
        st.session_state.pop("train_job_id", None)


left, mid, right = st.columns([1, 1, 3])
left.button(
    "Train",
    type="primary",
    key="train_start",
    disabled=bool(error) or active or stored is not None,
    on_click=start,
    help=error or ("Already stored: see the results below, or retrain." if stored else None),
    icon=":material/play_arrow:",
)
mid.button(
    "Stop",
    key="train_stop",
    disabled=not active,
    on_click=lambda: stop(job_id),
    icon=":material/stop:",
)
if st.session_state.get("train_notice"):
    st.warning(st.session_state.train_notice)


def draw_curves(history: dict) -> None:
    a, b = st.columns(2)
    a.plotly_chart(charts.learning_curves(history, "loss"), width="stretch", key="curve_loss")
    b.plotly_chart(charts.learning_curves(history, "accuracy"), width="stretch", key="curve_acc")
    with st.expander("Curve numbers (table)"):
        st.dataframe(
            pd.DataFrame(history).rename_axis("epoch").rename(index=lambda i: i + 1),
            width="stretch",
        )


@st.fragment(run_every=POLL_SECONDS if active else None)
def live_progress() -> None:
    current = queue.status(st.session_state.get("train_job_id"))
    if current is None:
        return
    if current.active:
        if current.state == "queued":
            st.info(
                f"Waiting for the trainer: position {current.position} in the queue. "
                "It starts by itself; you may switch pages meanwhile.",
                icon=":material/hourglass_top:",
            )
        else:
            left_s = current.seconds_left
            eta = f"{left_s:.0f} s left" if math.isfinite(left_s) else "estimating time left"
            live = current.live.get("loss")
            st.progress(
                current.fraction_done,
                text=(
                    f"Epoch {max(current.epoch, 1)}/{current.epochs} · batch {current.batch}/"
                    f"{current.batches} · {current.images_per_second:,.0f} images/s · {eta}"
                    + (
                        f" · {device_label(current.device, current.backend, current.executor)}"
                        if current.device
                        else ""
                    )
                    + (f" · loss {live:.4f}" if live is not None else "")
                ),
            )
            if current.history:
                draw_curves(current.history)
            else:
                st.caption("The curves appear when the first epoch ends.")
    else:
        st.rerun()  # the job ended: redraw the whole page with its outcome


if active:
    live_progress()
elif status is not None and status.state in ("cancelled", "diverged", "failed"):
    shown = {"cancelled": st.info, "diverged": st.warning, "failed": st.error}[status.state]
    shown(status.message, icon=":material/info:")

if stored is not None and not active:
    set_shown_run(stored.run_id)
    just_trained = (
        status is not None
        and status.run_id == stored.run_id
        and status.result is not None
        and not status.result.cached
    )
    if not just_trained:
        st.success(
            "Cached: this exact configuration was trained before, so its stored results are "
            "shown at once.",
            icon=":material/bolt:",
        )
        st.button(
            "Retrain",
            key="train_retrain",
            on_click=start,
            kwargs={"force": True},
            icon=":material/refresh:",
        )
    previous = st.session_state.get("train_prev_run")
    try:
        before = store.get(previous) if previous and previous != stored.run_id else None
    except StoreError:  # the previous run was damaged meanwhile: compare with nothing
        before = None
    m1, m2, m3, m4 = st.columns(4)
    m1.metric(
        "Test accuracy",
        f"{stored.test_accuracy:.2%}",
        delta=f"{(stored.test_accuracy - before.test_accuracy) * 100:+.2f} points"
        if before
        else None,
    )
    m2.metric(
        "Test loss",
        f"{stored.test_loss:.4f}",
        delta=f"{stored.test_loss - before.test_loss:+.4f}" if before else None,
        delta_color="inverse",
    )
    m3.metric(
        "Training time",
        f"{stored.train_seconds:.1f} s",
        help=f"Trained on {device_label(stored.device, stored.backend, stored.executor)}",
    )
    m4.metric(
        "Throughput",
        f"{stored.images_per_second:,.0f} img/s",
        help=f"Trained on {device_label(stored.device, stored.backend, stored.executor)}",
    )
    if before:
        st.caption(
            f"Changes are against the previous run `{before.run_id}` ({before.config.describe()})."
        )
    draw_curves(stored.history)
    links = st.columns(3)
    links[0].page_link(
        "pages/evaluate.py", label="See where it goes wrong →", icon=":material/grid_on:"
    )
    links[1].page_link(
        "pages/classify.py", label="Try it on your own photos →", icon=":material/image_search:"
    )
    links[2].page_link("pages/inside.py", label="Look inside it →", icon=":material/layers:")
