"""Real Keras training on real Fashion-MNIST: accuracy, the store's cached answer, divergence,
cancel, listener events, and evaluation checked against Keras's own numbers."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from core.learn.evaluation import evaluate, misclassified, per_class_report
from core.learn.training import CancelToken, train
from core.spec.config import LayerSpec, RunConfig
from core.spec.presets import PRESETS

TINY = RunConfig(layers=(LayerSpec(units=32),), train_size=3000, epochs=2, batch_size=64)


def test_seed_preset_one_epoch_on_full_data_then_cached(full_data, store):
    config = PRESETS["seed"].replace(epochs=1)
    events = []
    first = train(config, full_data, listener=events.append, store=store)
    assert first.status == "finished" and not first.cached
    assert first.train_size == 60_000 and first.data_source != "sample"
    assert first.test_accuracy >= 0.82
    assert first.device.startswith(("CPU", "GPU"))
    kinds = [e.kind for e in events]
    assert kinds[0] == "started" and kinds[-1] == "finished" and "epoch" in kinds
    assert events[0].params == 101_770

    again = []
    second = train(config, full_data, listener=again.append, store=store)
    assert second.cached and second.status == "finished"
    assert second.run_id == first.run_id
    assert second.test_accuracy == first.test_accuracy
    assert second.test_loss == first.test_loss
    assert second.history == first.history and second.confusion == first.confusion
    assert [e.kind for e in again] == ["finished"]
    assert len(store.list_runs()) == 1


def test_same_seed_same_result(full_data):
    a = train(TINY, full_data)
    b = train(TINY, full_data)
    assert a.history == b.history
    assert a.test_accuracy == b.test_accuracy


def test_listener_events_are_throttled_and_complete(full_data):
    config = TINY.replace(batch_size=16, validation_split=0.2)
    events = []
    result = train(config, full_data, listener=events.append)
    assert result.ok
    epochs = [e for e in events if e.kind == "epoch"]
    assert [e.epoch for e in epochs] == [1, 2]
    assert set(epochs[0].logs) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    batches = [e for e in events if e.kind == "batch"]
    assert batches, "batch progress is reported"
    assert batches[0].batches == 150  # 2,400 images / 16
    # throttled: never two batch events less than ~0.1 s apart
    gaps = np.diff([e.elapsed for e in batches])
    assert (gaps >= 0.09).all()
    assert len(batches) < 300  # far fewer than the 300 batches trained


def test_divergence_is_a_status_not_an_exception(full_data, store):
    config = TINY.replace(optimizer="sgd", learning_rate=1e4)
    events = []
    result = train(config, full_data, listener=events.append, store=store)
    assert result.status == "diverged"
    assert "Lower the learning rate" in result.message
    assert events[-1].kind == "diverged"
    assert store.list_runs() == []


def test_cancel_stops_within_one_batch_and_stores_nothing(full_data, store):
    config = TINY.replace(train_size=20_000, epochs=5, batch_size=32)
    token = CancelToken()
    seen = []

    def listener(event):
        seen.append(event)
        if event.kind == "batch" and event.epoch == 1 and event.batch >= 20:
            token.cancel()

    result = train(config, full_data, listener=listener, cancel=token, store=store)
    assert result.status == "cancelled"
    stopped = seen[-1]
    assert stopped.kind == "cancelled"
    assert token.steps_at_cancel is not None
    assert stopped.batch - token.steps_at_cancel <= 1  # at most the batch already running
    assert stopped.epoch == 1
    assert store.list_runs() == []
    assert not any(store.runs_dir.iterdir())


def test_cancel_from_another_thread(full_data):
    token = CancelToken()
    timer = threading.Timer(1.5, token.cancel)
    timer.start()
    result = train(TINY.replace(train_size=30_000, epochs=20), full_data, cancel=token)
    timer.join()
    assert result.status == "cancelled"
    assert result.epochs_trained < 20


def test_evaluation_matches_keras(full_data):
    import keras

    from core.learn.model import build_model

    keras.utils.set_random_seed(1)
    model = build_model(TINY, full_data.input_shape, full_data.num_classes)
    model.fit(full_data.x_train[:3000] / 255.0, full_data.y_train[:3000], epochs=1, verbose=0)
    ours = evaluate(model, full_data)
    loss, accuracy = model.evaluate(full_data.x_test / 255.0, full_data.y_test, verbose=0)
    assert ours.test_accuracy == pytest.approx(accuracy, abs=1e-4)
    assert ours.test_loss == pytest.approx(loss, rel=1e-3)
    assert ours.confusion.sum() == 10_000
    assert np.trace(ours.confusion) == round(accuracy * 10_000)

    report = per_class_report(ours.confusion, full_data.class_names)
    assert list(report["class"]) == list(full_data.class_names)
    assert report["support"].tolist() == [1000] * 10
    # recall of class c = correct c / all true c, straight from the predictions
    predicted = ours.probabilities.argmax(axis=1)
    for c in range(10):
        truth = full_data.y_test == c
        assert report.loc[c, "recall"] == pytest.approx((predicted[truth] == c).mean())
        assert report.loc[c, "precision"] == pytest.approx(
            (full_data.y_test[predicted == c] == c).mean()
        )

    mistakes = misclassified(ours.probabilities, full_data.y_test, full_data.class_names)
    assert len(mistakes) == 10_000 - np.trace(ours.confusion)
    assert mistakes["confidence"].is_monotonic_decreasing
    assert (mistakes["true"] != mistakes["predicted"]).all()
    first = mistakes.iloc[0]
    assert full_data.class_names[full_data.y_test[first["index"]]] == first["true"]
