"""What the Sweep page draws: the space builder, the trial table, Optuna's figures, the best run."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.spec.config import RunConfig
from core.sweeps.space import SWEEPABLE, Param, SweepError, parse_param
from core.sweeps.study import SweepSummary, study_of

MIN_TRIALS_FOR_FIGURES = 2  # one point is no history, and importance needs a comparison
# What a fresh range box suggests, where the setting's own range would be a poor first search.
SUGGESTED = {
    "learning_rate": "1e-5:1e-1:log",
    "train_size": "1000,5000,20000,60000",
    "batch_size": "32,64,128,256",
    "epochs": "1:10",
    "weight_decay": "1e-5:1e-2:log",
    "units": "16:512:log",
    "filters": "8:64:log",
    "hidden_layers": "0:4",
    "conv_blocks": "0:3",
    "dropout": "0:0.5",
}


def suggestion(name: str) -> str:
    """A sensible first range or list for a setting, in the CLI's own syntax."""
    if name in SUGGESTED:
        return SUGGESTED[name]
    setting = SWEEPABLE[name]
    if setting.choices:
        return ",".join(map(str, setting.choices))
    if setting.type is bool:
        return "1,0"
    return f"{setting.format(setting.low)}:{setting.format(setting.high)}"


def space_builder() -> tuple[tuple[Param, ...], str | None]:
    """(params, the first problem as a sentence or None): a range or a list per chosen field."""
    fields = st.multiselect(
        "Settings to search",
        list(SWEEPABLE),
        default=["learning_rate"],
        format_func=lambda name: SWEEPABLE[name].label,
        key="sweep_fields",
    )
    params, problem = [], None
    for name in fields:
        key = f"sweep_range_{name}"
        st.session_state.setdefault(key, suggestion(name))
        text = st.text_input(
            SWEEPABLE[name].label,
            key=key,
            help="LOW:HIGH, LOW:HIGH:log (log-uniform) or a list a,b,c.",
        )
        try:
            params.append(parse_param(f"{name}={text}"))
        except SweepError as exc:
            problem = problem or str(exc)
    if not fields:
        problem = "Choose at least one setting to search."
    return tuple(params), problem


def trial_frame(summary: SweepSummary) -> pd.DataFrame:
    """One row per trial: state, settings, objective, run id, time."""
    names = [p.name for p in summary.spec.space]
    rows = []
    for t in summary.trials:
        row = {"trial": t.number, "state": t.state + (" (cached)" if t.cached else "")}
        row.update({name: t.params.get(name) for name in names})
        row[summary.spec.objective_label] = t.value
        row["run id"] = t.run_id
        row["training s"] = round(t.seconds, 1) if t.seconds else None
        row["note"] = t.message
        rows.append(row)
    # before the runner has asked Optuna for its first trial: the headers, not a blank frame
    columns = [
        "trial",
        "state",
        *names,
        summary.spec.objective_label,
        "run id",
        "training s",
        "note",
    ]
    return pd.DataFrame(rows, columns=columns)


def figures(home, summary: SweepSummary, title: str = "") -> list[tuple[str, object]]:
    """(key, figure or a sentence) for Optuna's views; a sentence when a view cannot be drawn."""
    import optuna.visualization as vis

    if len(summary.finished) < MIN_TRIALS_FOR_FIGURES:
        return [("wait", "The charts appear once two trials have finished.")]
    study = study_of(home, summary.name)
    target = summary.spec.objective_label
    views = [
        ("slice", title or f"{target} against each setting", vis.plot_slice),
        ("history", "Optimization history", vis.plot_optimization_history),
        ("parallel", "Parallel coordinates", vis.plot_parallel_coordinate),
        ("importance", "Which setting mattered most", vis.plot_param_importances),
    ]
    drawn = []
    for key, heading, plot in views:
        try:
            figure = plot(study, target_name=target)
        except Exception as exc:  # e.g. importances of a setting that never varied
            drawn.append((key, f"{heading}: not drawn ({exc})."))
            continue
        figure.update_layout(title=heading, height=360, margin=dict(t=50, b=40))
        drawn.append((key, figure))
    return drawn


def draw_figures(home, summary: SweepSummary, title: str = "") -> None:
    items = figures(home, summary, title)
    columns = st.columns(2)
    for index, (key, item) in enumerate(items):
        place = columns[index % 2]
        if isinstance(item, str):
            place.caption(item)
        else:
            place.plotly_chart(item, width="stretch", key=f"sweep_fig_{key}")


def best_card(summary: SweepSummary) -> RunConfig | None:
    """The best finished trial, with its score and settings; returns its config."""
    best = summary.best
    if best is None:
        return None
    with st.container(border=True):
        a, b = st.columns([1, 2])
        a.metric(f"Best {summary.spec.objective_label}", f"{best.value:.4f}")
        settings = ", ".join(f"{k} = {v:g}" if isinstance(v, float) else f"{k} = {v}"
                             for k, v in best.params.items())  # fmt: skip
        b.markdown(f"**Trial {best.number}** · run `{best.run_id}`  \n{settings}")
        b.caption(
            "Chosen on the validation split; the test set never picked it, so its test score "
            "on Train is a fair estimate."
        )
    return summary.best_config()
