"""Inside the network: what the first layer looks for, each layer's answer, the last one's map."""

import numpy as np
import streamlit as st

from core.data.sources import FASHION_CLASSES
from core.learn.evaluation import softmax
from core.run.analyst import LayerViews, Projection
from core.show import charts
from core.show.pictures import PLUMBING, grey_picture, lit_picture, tile, upscale, weight_picture
from ui.engine import (
    answer_or_stop,
    dataset_or_stop,
    get_analyst,
    get_store,
    runs_warming_the_model,
)
from ui.runs import pick_run, stored_run_or_stop

PROJECTED = 2000  # test images in the 2-D map
UNITS_SHOWN = 64  # first-layer units drawn as pictures
MAPS_SHOWN = 32  # feature maps drawn per convolution layer

st.title("Inside the network")
st.caption(
    "A trained network is a stack of layers, each turning its input into numbers the next one "
    "uses. These views open the stack for one stored run and one test image."
)
store = get_store()
rows = runs_warming_the_model(store)
if not rows:
    st.info(
        "No stored runs yet. Train one on the Train page (the `fast` preset takes well under a "
        "minute), then come back here.",
        icon=":material/info:",
    )
    st.page_link("pages/train.py", label="Go to Train", icon=":material/play_arrow:")
    st.stop()

# the run just trained or opened on the Train page, else the best one
run_id = pick_run(rows, "inside_run", preferred=st.session_state.get("train_shown_run"))
result = stored_run_or_stop(store, run_id)
data = dataset_or_stop(result.config.dataset)
names = data.class_names
home = str(store.home)
shape = data.input_shape
colour = len(shape) == 3


@st.cache_data(max_entries=64, show_spinner=False)
def layer_views(home: str, run: str, created_at: float, image: bytes, shape: tuple) -> LayerViews:
    pixels = np.frombuffer(image, np.uint8).reshape(shape)
    return get_analyst().layers(home, run, pixels)


@st.cache_data(max_entries=8, show_spinner=False)
def projection(home: str, run: str, created_at: float, count: int) -> Projection:
    return get_analyst().projection(home, run, count)


a, b, c = st.columns([2, 2, 1])
if st.session_state.get("inside_class") not in names:  # a run on other classes was picked
    st.session_state.pop("inside_class", None)
chosen_class = a.selectbox("Test image of class", names, key="inside_class")
members = np.flatnonzero(data.y_test == names.index(chosen_class))
if not len(members):
    st.info(f"The test set holds no image of {chosen_class}; pick another class.")
    st.stop()
most = min(100, len(members))
if st.session_state.get("inside_nth", 1) > most:
    st.session_state.inside_nth = 1
nth = b.slider("Which one", 1, max(most, 2), 1, key="inside_nth", disabled=most == 1)
index = int(members[min(nth, most) - 1])
image = data.x_test[index]
c.image(upscale(image, max(1, 84 // shape[0])), caption=f"test image #{index}", width=84)

views = answer_or_stop(layer_views, home, run_id, result.created_at, image.tobytes(), shape)
outputs = views.outputs
p = softmax(outputs[-1].values[None].astype(np.float64))[0]
best = int(p.argmax())
st.markdown(
    f"The network calls it **{names[best]}** ({p[best]:.0%}); it is a **{chosen_class}**."
    + (" ✓" if names[best] == chosen_class else " ✗")
)

# ---------------------------------------------------------------------- the first layer
st.subheader("What the first layer looks for")
if views.weights is not None:
    weights = views.weights
    shown = weights[:UNITS_SHOWN]
    limit = float(np.percentile(np.abs(shown), 99.5))
    st.image(
        tile(
            np.stack([weight_picture(w, limit) for w in shown]),
            columns=16,
            factor=max(1, 56 // shape[0]),
            fill=90,
        ),
        caption=f"The first {len(shown)} of {len(weights)} units of the first Dense layer.",
    )
    st.caption(
        f"Each square is one unit's {int(np.prod(shape)):,} weights laid out like the input "
        "image. "
        + (
            "Grey is zero; where a colour is stronger than grey, that colour in that spot "
            "pushes the unit up, where it is weaker (the opposite colour), it pushes it down."
            if colour
            else "Red pixels push the unit up when they are bright, blue ones push it down: "
            "the unit responds to images that look like its red pattern."
        )
        + " Early dense units learn blurry templates of whole objects and their outlines."
    )
elif views.filters is not None:
    filters = views.filters
    limit = float(np.abs(filters).max())
    k = filters.shape[1]
    st.image(
        tile(np.stack([weight_picture(f, limit) for f in filters]), 16, factor=48 // k, fill=90),
        caption=f"The {len(filters)} filters ({k}×{k}) of the first convolution"
        + (", in the colours they reward." if colour else "."),
    )
    st.caption(
        "A convolution slides each small filter over the image and reports how well every spot "
        "matches it. "
        + (
            "Grey weights are zero; a filter rewards the colours it shows and punishes their "
            "opposites: many detect an edge between two colours, or one colour's patches."
            if colour
            else "Red weights reward bright pixels, blue ones dark pixels: most filters are "
            "edge and stroke detectors (bright on one side, dark on the other) at some angle."
        )
    )
else:
    st.info("This network has no hidden layer: the output layer looks at the pixels directly.")

# ------------------------------------------------------------------------ every layer
st.subheader("Every layer's answer to this image")
st.caption(
    "Early layers respond to edges and strokes; later ones combine them into parts and whole "
    "shapes, until the last layer holds one score per class."
)
for position, output in enumerate(outputs):
    if output.kind in PLUMBING:
        continue
    values, name, kind = output.values, output.name, output.kind
    is_last = position == len(outputs) - 1
    if is_last:
        order = np.argsort(p)[::-1][:5]
        st.markdown(f"**{name}** — output: one score per class, as probabilities")
        st.plotly_chart(
            charts.top_probabilities([names[i] for i in order], [float(p[i]) for i in order]),
            key="inside_output",
            width="stretch",
        )
    elif values.ndim == 3:  # (height, width, channels): feature maps
        count = values.shape[-1]
        maps = np.moveaxis(values, -1, 0)[:MAPS_SHOWN]
        factor = max(1, 56 // values.shape[0])
        st.markdown(
            f"**{name}** ({kind}) — {count} feature maps of "
            f"{values.shape[0]}×{values.shape[1]}"
            + (f", first {len(maps)} shown" if count > len(maps) else "")
        )
        if colour:  # each map lights up the coloured picture where its filter fired
            lit = np.stack([lit_picture(image, m) for m in maps])
            st.image(
                tile(lit, columns=16, factor=max(1, 56 // shape[0])),
                caption="The picture, lit where the filter found its pattern (dark elsewhere).",
            )
        else:
            st.image(
                tile(np.stack([grey_picture(m) for m in maps]), columns=16, factor=factor),
                caption="Bright where the filter found its pattern in this image.",
            )
    else:
        active = int((values > 0).sum())
        st.markdown(f"**{name}** ({kind}) — {values.size} units, {active} active (> 0)")
        st.plotly_chart(
            charts.activation_strip(values, "unit outputs (hover for the unit number)"),
            key=f"inside_layer_{position}",
            width="stretch",
        )

# ----------------------------------------------------------------------- the 2-D map
st.subheader("How the last hidden layer arranges the test images")
count = min(PROJECTED, len(data.x_test))
mapped = answer_or_stop(projection, home, run_id, result.created_at, count)
st.plotly_chart(
    charts.projection_scatter(
        mapped.coords, mapped.y_true, mapped.y_pred, names, tuple(mapped.share)
    ),
    key="inside_projection",
    width="stretch",
)
wrong = int((mapped.y_true != mapped.y_pred).sum())
st.caption(
    f"The first {count:,} test images, each placed by the two directions along which the "
    f"layer {mapped.layer} varies most (PCA). This is the representation the final layer "
    "separates into classes: classes whose clouds stand apart even in this flat view are easy, "
    f"and most of the {wrong} mistakes (crosses) sit where clouds overlap"
    + (", often shirts, pullovers and coats." if names == FASHION_CLASSES else ".")
)
