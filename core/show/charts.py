"""Plotly figure builders: pure functions from plain data to go.Figure (no Streamlit here).

Colours come from the Okabe-Ito palette, which stays distinguishable with the common forms of
colour blindness and on both light and dark backgrounds.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

OKABE_ITO = (
    "#0072B2",  # blue
    "#E69F00",  # orange
    "#009E73",  # green
    "#D55E00",  # vermillion
    "#CC79A7",  # purple
    "#56B4E9",  # sky blue
    "#F0E442",  # yellow
    "#000000",
)
TRAIN_COLOUR, VALIDATION_COLOUR = OKABE_ITO[0], OKABE_ITO[1]


def _layout(fig: go.Figure, title: str, x_title: str, y_title: str) -> go.Figure:
    fig.update_layout(
        title=title,
        xaxis_title=x_title,
        yaxis_title=y_title,
        margin=dict(l=10, r=10, t=50, b=10),
        legend=dict(orientation="h", yanchor="bottom", y=1.0, xanchor="right", x=1.0),
        hovermode="x unified",
    )
    return fig


def learning_curves(history: dict[str, list[float]], metric: str = "loss") -> go.Figure:
    """Train and validation curves of one metric per epoch ('loss' or 'accuracy')."""
    fig = go.Figure()
    for key, name, colour, dash in (
        (metric, "training", TRAIN_COLOUR, "solid"),
        (f"val_{metric}", "validation", VALIDATION_COLOUR, "dash"),
    ):
        values = history.get(key) or []
        if values:
            fig.add_trace(
                go.Scatter(
                    x=list(range(1, len(values) + 1)),
                    y=values,
                    mode="lines+markers",
                    name=name,
                    line=dict(color=colour, dash=dash),
                )
            )
    unit = "cross-entropy" if metric == "loss" else "fraction correct"
    fig = _layout(fig, f"{metric.capitalize()} per epoch", "epoch", f"{metric} ({unit})")
    fig.update_xaxes(dtick=1 if len(history.get(metric) or []) <= 20 else None, rangemode="tozero")
    if metric == "accuracy":
        fig.update_yaxes(tickformat=".0%")
    return fig


def confusion_heatmap(confusion, class_names: tuple[str, ...]) -> go.Figure:
    """Counts of (true, predicted) pairs; the diagonal holds the correct answers."""
    counts = np.asarray(confusion)
    names = list(class_names)
    heatmap = go.Heatmap(
        z=counts,
        x=names,
        y=names,
        colorscale="Cividis",
        text=counts,
        texttemplate="%{text}",
        hoverinfo="skip",
        colorbar=dict(title="images"),
    )
    # Heatmaps emit no point selections; a near-invisible square marker on every cell does, so
    # clicking a cell selects its (true, predicted) pair. With few classes the cells are large:
    # the markers grow with them, so a click anywhere near a cell's middle still selects it.
    marker_size = max(34, min(90, 330 // max(len(names), 1)))
    cells = go.Scatter(
        x=[p for _ in names for p in names],
        y=[t for t in names for _ in names],
        customdata=counts.ravel(),
        mode="markers",
        marker=dict(symbol="square", size=marker_size, opacity=0.01, color="white"),
        hovertemplate="true %{y}<br>predicted %{x}<br>%{customdata} test images<extra></extra>",
        showlegend=False,
    )
    fig = go.Figure([heatmap, cells])
    fig = _layout(fig, "Confusion matrix (test set)", "predicted class", "true class")
    fig.update_layout(hovermode="closest")
    fig.update_yaxes(autorange="reversed")
    return fig


def class_balance(counts: dict[str, list[int]], class_names: tuple[str, ...]) -> go.Figure:
    """Images per class, one bar group per split (e.g. training and test)."""
    fig = go.Figure(
        [
            go.Bar(x=list(class_names), y=values, name=split, marker_color=OKABE_ITO[i])
            for i, (split, values) in enumerate(counts.items())
        ]
    )
    fig = _layout(fig, "Images per class", "class", "images")
    fig.update_layout(barmode="group", hovermode="closest")
    return fig


def top_probabilities(labels: list[str], probabilities: list[float]) -> go.Figure:
    fig = go.Figure(
        go.Bar(
            x=probabilities,
            y=labels,
            orientation="h",
            marker_color=[OKABE_ITO[2]] + [OKABE_ITO[5]] * (len(labels) - 1),
            text=[f"{p:.1%}" for p in probabilities],
            textposition="auto",
        )
    )
    fig = _layout(fig, "Top predictions", "probability", "class")
    fig.update_layout(hovermode="closest", height=260, margin=dict(l=10, r=10, t=40, b=10))
    fig.update_xaxes(range=[0, 1], tickformat=".0%")
    fig.update_yaxes(autorange="reversed")
    return fig


def compare_curves(histories: dict[str, dict[str, list[float]]], metric: str) -> go.Figure:
    """One line per run: the validation metric if recorded, else the training one."""
    fig = go.Figure()
    for index, (label, history) in enumerate(histories.items()):
        key = f"val_{metric}" if history.get(f"val_{metric}") else metric
        values = history.get(key) or []
        fig.add_trace(
            go.Scatter(
                x=list(range(1, len(values) + 1)),
                y=values,
                mode="lines+markers",
                name=f"{label} ({'validation' if key.startswith('val_') else 'training'})",
                line=dict(color=OKABE_ITO[index % len(OKABE_ITO)]),
            )
        )
    _layout(fig, f"{metric.capitalize()} per epoch, by run", "epoch", metric)
    # one entry per run: above the plot three or more wrap into the title, so they go below it
    fig.update_layout(legend=dict(orientation="h", yanchor="top", y=-0.25, xanchor="left", x=0.0))
    return fig


# Ten classes need ten colours; Okabe-Ito has eight, so the class scatter uses Tableau 10, which
# was designed for exactly this (distinct hues of similar weight).
CLASS_COLOURS = (
    "#4E79A7",
    "#F28E2B",
    "#E15759",
    "#76B7B2",
    "#59A14F",
    "#EDC948",
    "#B07AA1",
    "#FF9DA7",
    "#9C755F",
    "#BAB0AC",
)


def projection_scatter(
    coords: np.ndarray,
    y_true: np.ndarray,
    y_pred: np.ndarray,
    class_names: tuple[str, ...],
    share: tuple[float, float],
) -> go.Figure:
    """2-D projection of test images, one colour per true class; mistakes drawn as crosses."""
    names = np.asarray(class_names)
    fig = go.Figure()
    for c, name in enumerate(class_names):
        members = np.flatnonzero(y_true == c)
        wrong = y_pred[members] != c
        fig.add_trace(
            go.Scattergl(
                x=coords[members, 0],
                y=coords[members, 1],
                mode="markers",
                name=name,
                marker=dict(
                    color=CLASS_COLOURS[c % len(CLASS_COLOURS)],
                    size=np.where(wrong, 8, 5),
                    symbol=np.where(wrong, "x", "circle"),
                    opacity=0.75,
                ),
                customdata=np.stack([members, names[y_pred[members]]], axis=1),
                hovertemplate=(
                    f"test image #%{{customdata[0]}}<br>true: {name}<br>"
                    "predicted: %{customdata[1]}<extra></extra>"
                ),
            )
        )
    fig = _layout(
        fig,
        "Test images as the last hidden layer sees them",
        f"first principal direction ({share[0]:.0%} of the variance)",
        f"second principal direction ({share[1]:.0%})",
    )
    fig.update_layout(
        hovermode="closest",
        legend=dict(orientation="v", yanchor="top", y=1.0, xanchor="left", x=1.02),
        height=520,
    )
    return fig


def activation_strip(values: np.ndarray, title: str, columns: int = 32) -> go.Figure:
    """A dense layer's outputs for one image, as a grid of cells (unit number on hover)."""
    values = np.asarray(values, dtype=np.float64).ravel()
    rows = -(-len(values) // columns)
    padded = np.full(rows * columns, np.nan)
    padded[: len(values)] = values
    grid = padded.reshape(rows, columns)
    units = np.arange(rows * columns).reshape(rows, columns)
    fig = go.Figure(
        go.Heatmap(
            z=grid,
            customdata=units,
            colorscale="Viridis",
            hovertemplate="unit %{customdata}: %{z:.3f}<extra></extra>",
            xgap=1,
            ygap=1,
        )
    )
    fig.update_layout(
        title=title,
        height=90 + 22 * rows,
        margin=dict(l=10, r=10, t=40, b=10),
    )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False, autorange="reversed")
    return fig
