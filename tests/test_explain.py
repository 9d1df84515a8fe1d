"""core/learn/explain.py and the model process, checked against plain Keras on real trained runs."""

from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np
import pytest

from core.learn import explain
from core.run.analyst import AnalysisError, Analyst
from core.store import RunStore


@pytest.fixture(scope="module")
def models(trained):
    home, dense, conv = trained
    store = RunStore(home)
    return {"dense": store.load_model(dense.run_id), "conv": store.load_model(conv.run_id)}


@pytest.mark.parametrize("kind", ["dense", "conv"])
def test_layer_outputs_end_in_the_models_own_logits(models, full_data, kind):
    model = models[kind]
    images = full_data.x_test[:64]
    outputs = explain.layer_outputs(model, images)
    reference = model.predict(images.astype("float32") / 255.0, verbose=0)
    assert [o.name for o in outputs] == [layer.name for layer in model.layers]
    np.testing.assert_allclose(outputs[-1].values, reference, rtol=1e-4, atol=1e-4)
    last_two = explain.layer_outputs(model, images, keep_last=2)
    assert [o.name for o in last_two] == [o.name for o in outputs[-2:]]
    np.testing.assert_array_equal(last_two[0].values, outputs[-2].values)
    probabilities = explain.probabilities(model, images)
    assert (probabilities.argmax(1) == reference.argmax(1)).all()


def test_first_dense_weights_are_the_kernel_as_pictures(models):
    pictures = explain.first_dense_weights(models["dense"])
    kernel = models["dense"].layers[1].get_weights()[0]  # Flatten, then Dense(128)
    assert pictures.shape == (128, 28, 28)
    np.testing.assert_array_equal(pictures[5], kernel[:, 5].reshape(28, 28))
    assert explain.first_dense_weights(models["conv"]) is None
    filters = explain.conv_filters(models["conv"])
    assert filters.shape == (8, 3, 3)
    assert explain.conv_filters(models["dense"]) is None


def test_occlusion_saliency_lives_on_the_object(models, full_data):
    model = models["dense"]
    image = full_data.x_test[0]  # an ankle boot with black margins above and below
    label = int(explain.probabilities(model, image[None])[0].argmax())
    saliency = explain.occlusion_saliency(model, image, label)
    assert saliency.shape == (28, 28)
    # patches that cover only black pixels change nothing: rows far from the boot score zero
    empty_rows = [r for r in range(28) if not image[max(0, r - 4) : r + 5].any()]
    assert empty_rows and np.all(saliency[empty_rows] == 0)
    assert saliency.max() > 0 and saliency[image > 0].sum() > 0


def test_pca_matches_numpy_eigen_decomposition(models, full_data):
    outputs = explain.layer_outputs(models["dense"], full_data.x_test[:500])
    hidden = explain.last_hidden(outputs).values
    coords, share = explain.pca_2d(hidden)
    eigenvalues = np.sort(np.linalg.eigvalsh(np.cov(hidden, rowvar=False)))[::-1]
    np.testing.assert_allclose(share, eigenvalues[:2] / eigenvalues.sum(), rtol=1e-6)
    np.testing.assert_allclose(coords.var(axis=0, ddof=1), eigenvalues[:2], rtol=1e-6)


@pytest.mark.slow
def test_model_process_answers_like_keras_and_survives_bad_requests(trained, models, full_data):
    home, dense, _ = trained
    analyst = Analyst()
    try:
        images = full_data.x_test[:8]
        answer = analyst.classify(str(home), dense.run_id, images)
        np.testing.assert_allclose(
            answer.probabilities, explain.probabilities(models["dense"], images), atol=1e-5
        )
        assert len(answer.saliency) == 8
        assert analyst.classify(str(home), dense.run_id, images, saliency=False).saliency is None
        with pytest.raises(AnalysisError, match="not in the store"):
            analyst.classify(str(home), "0123456789ab", images, saliency=False)
        # a child that died between requests is replaced without the caller noticing
        os.kill(analyst.pid, signal.SIGKILL)
        while analyst.started:  # dead, not merely signalled: else this is a kill mid-request
            time.sleep(0.01)
        assert analyst.ping().startswith(("CPU", "GPU"))
        # one that dies during a request (here: while importing TensorFlow) costs a sentence
        analyst.stop()
        analyst.start()
        killer = threading.Timer(0.3, os.kill, (analyst.pid, signal.SIGKILL))
        killer.start()
        with pytest.raises(AnalysisError, match="stopped unexpectedly"):
            analyst.layers(str(home), dense.run_id, images[0])
        killer.join()
        layers = analyst.layers(str(home), dense.run_id, images[0])
        assert [o.kind for o in layers.outputs] == ["Flatten", "Dense", "Dense"]
        assert layers.weights.shape == (128, 28, 28) and layers.filters is None
        # a request that takes too long ends with a sentence and a fresh process
        with pytest.raises(AnalysisError, match="did not answer within 0.001 s"):
            analyst.projection(str(home), dense.run_id, 2000, timeout=0.001)
        assert not analyst.started
        projection = analyst.projection(str(home), dense.run_id, 300)
        assert projection.coords.shape == (300, 2)
        assert (projection.y_true == full_data.y_test[:300]).all()
    finally:
        analyst.stop()


def test_the_model_process_keeps_only_the_most_recently_used_models(trained, monkeypatch):
    """Its small LRU of loaded models drops the oldest (it once never dropped any)."""
    from core.run import analyst

    home, dense, conv = trained
    monkeypatch.setattr(analyst, "MODELS_KEPT", 1)
    models = analyst._Models()
    models.get(str(home), dense.run_id)
    model, config = models.get(str(home), conv.run_id)
    assert len(models._loaded) == 1 and config.has_conv
    assert [key[1] for key in models._loaded] == [conv.run_id]
