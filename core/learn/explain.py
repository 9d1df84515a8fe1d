"""Why a model answers as it does: layer outputs, occlusion saliency, weights, a 2-D projection.

Pure functions on a loaded Keras model and uint8 images; no Streamlit. Layers are called one by
one in inference mode, so every intermediate output is at hand without building a second model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.learn.evaluation import softmax
from core.runtime import import_keras

keras = import_keras()  # on the backend this process chose (core.runtime.use_backend)


BATCH = 512


@dataclass(frozen=True)
class LayerOutput:
    name: str  # the layer's Keras name, e.g. "conv2d"
    kind: str  # its class name, e.g. "Conv2D"
    values: np.ndarray  # (n, ...) outputs for the n images given


def image_shape(model: keras.Model) -> tuple[int, ...]:
    """The shape of one input image: (height, width) grey or (height, width, channels) colour."""
    return tuple(int(d) for d in model.inputs[0].shape[1:])


def _scaled(model: keras.Model, pixels: np.ndarray) -> np.ndarray:
    """uint8 images as the model's float input in 0..1, batched: (n, *image_shape)."""
    return np.asarray(pixels, dtype=np.float32).reshape(-1, *image_shape(model)) / 255.0


def layer_outputs(
    model: keras.Model, pixels: np.ndarray, keep_last: int | None = None
) -> list[LayerOutput]:
    """Layer outputs for uint8 images (n, *image_shape), in order (last = logits).

    keep_last=k keeps only the last k layers' outputs: a projection of 2,000 images needs the
    last two, and the first convolutions' outputs would cost hundreds of MB for nothing.
    """
    x = _scaled(model, pixels)
    kept = list(model.layers)[-keep_last:] if keep_last else list(model.layers)
    first_kept = len(model.layers) - len(kept)
    chunks: list[list[np.ndarray]] = [[] for _ in kept]
    for start in range(0, len(x), BATCH):
        value = x[start : start + BATCH]
        for i, layer in enumerate(model.layers):
            value = layer(value, training=False)
            if i >= first_kept:
                chunks[i - first_kept].append(keras.ops.convert_to_numpy(value))
    return [
        LayerOutput(layer.name, type(layer).__name__, np.concatenate(parts))
        for layer, parts in zip(kept, chunks, strict=True)
    ]


def probabilities(model: keras.Model, pixels: np.ndarray) -> np.ndarray:
    """Softmax probabilities (n, classes) for uint8 images, without Keras's predict loop."""
    x = _scaled(model, pixels)
    logits = [
        keras.ops.convert_to_numpy(model(x[start : start + BATCH], training=False))
        for start in range(0, len(x), BATCH)
    ]
    return softmax(np.concatenate(logits).astype(np.float64))


def occlusion_patch(height: int, width: int) -> tuple[int, int]:
    """Side and step of the occluding patch: 5 px, step 1 on 28x28; as large a share of a
    bigger picture, with a step that keeps one forward pass at about the same batch size."""
    side = min(height, width)
    patch = max(3, round(5 * side / 28))
    return min(patch, side), max(1, side // 28)


def occlusion_saliency(
    model: keras.Model, pixels: np.ndarray, class_index: int, patch: int | None = None
) -> np.ndarray:
    """How much covering each pixel (with a black patch) lowers the probability of class_index.

    pixels: one uint8 image, (H, W) grey or (H, W, 3) colour (the patch covers every channel).
    Returns (H, W) floats: positive where the pixels argue for the class, negative where they
    argue against it, zero where covering changes nothing (the black background, for one).
    Every patch position is one image in a single batch, so this costs one forward pass.
    """
    h, w = pixels.shape[:2]
    default_patch, step = occlusion_patch(h, w)
    patch = patch or default_patch
    ys = sorted(set(range(0, h - patch + 1, step)) | {h - patch})  # the far edges are covered too
    xs = sorted(set(range(0, w - patch + 1, step)) | {w - patch})
    positions = [(y, x) for y in ys for x in xs]
    batch = np.repeat(pixels[None], len(positions) + 1, axis=0)  # row 0 stays uncovered
    for i, (y, x) in enumerate(positions, start=1):
        batch[i, y : y + patch, x : x + patch] = 0
    scores = probabilities(model, batch)[:, class_index]
    drops = scores[0] - scores[1:]
    total = np.zeros((h, w))
    count = np.zeros((h, w))
    for drop, (y, x) in zip(drops, positions, strict=True):
        total[y : y + patch, x : x + patch] += drop
        count[y : y + patch, x : x + patch] += 1
    return total / np.maximum(count, 1)


def is_dense_only(model: keras.Model) -> bool:
    return not any(type(layer).__name__ == "Conv2D" for layer in model.layers)


def first_dense_weights(model: keras.Model) -> np.ndarray | None:
    """The first Dense layer's weights as pictures, for networks without convolutions:
    (units, H, W) for grey input, (units, H, W, 3) for colour.

    Each unit's weights say how much each input pixel (and colour channel) pushes that unit up
    (positive) or down (negative): the pattern the unit looks for.
    """
    if not is_dense_only(model):
        return None
    shape = image_shape(model)
    for layer in model.layers:
        if type(layer).__name__ == "Dense":
            kernel = keras.ops.convert_to_numpy(layer.kernel)
            if kernel.shape[0] != int(np.prod(shape)):
                return None
            return kernel.T.reshape(-1, *shape)
    return None


def conv_filters(model: keras.Model) -> np.ndarray | None:
    """The first convolution's kernels: (filters, k, k) on grey input, (filters, k, k, 3) on
    colour; None for a dense network."""
    for layer in model.layers:
        if type(layer).__name__ == "Conv2D":
            kernel = keras.ops.convert_to_numpy(layer.kernel)  # (k, k, in, filters)
            filters = np.moveaxis(kernel, -1, 0)  # (filters, k, k, in)
            return filters[..., 0] if filters.shape[-1] == 1 else filters
    return None


def last_hidden(outputs: list[LayerOutput]) -> LayerOutput:
    """The representation the final Dense layer classifies (the output just before it)."""
    return outputs[-2] if len(outputs) >= 2 else outputs[-1]


def pca_2d(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Project (n, d) onto its two main directions; returns (n, 2) and their variance shares."""
    flat = features.reshape(len(features), -1).astype(np.float64)
    centred = flat - flat.mean(axis=0)
    _, singular, vt = np.linalg.svd(centred, full_matrices=False)
    share = singular**2 / max(float((singular**2).sum()), 1e-12)
    coords = centred @ vt[:2].T
    if coords.shape[1] < 2:
        coords = np.pad(coords, ((0, 0), (0, 2 - coords.shape[1])))
    # fix each axis's sign so the picture does not flip between runs of the same model
    signs = np.sign(coords[np.abs(coords).argmax(axis=0), [0, 1]])
    return coords * np.where(signs == 0, 1, signs), share[:2]
