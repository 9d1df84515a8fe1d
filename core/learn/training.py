"""Train a RunConfig with Keras, reporting progress to a listener; answer repeats from the store.

train() runs in three phases: look the run up in the store, fit the model, and turn the fit into
an outcome (finished and stored, cancelled, diverged, failed). One emitter sends every Event.
Events are small frozen dataclasses of plain Python values, so a listener may hand them to another
thread (a queue, a job status) without copying.

Several training steps run per call into the backend, sized by core.learn.pace so that one
call still takes well under a tenth of a second: progress keeps arriving several times a second
and Stop, which Keras checks between calls, still ends a run within a fraction of a second.
"""

from __future__ import annotations

import math
import random
import sys
import threading
import time

import numpy as np

from core.data.dataset import Dataset
from core.data.registry import load_dataset
from core.learn.pace import steps_per_execution
from core.runtime import current_backend, import_keras, keep_tensorflow_out, this_device
from core.spec.config import RunConfig
from core.spec.plan import count_params
from core.spec.results import Event, Listener, RunResult
from core.spec.settings import ConfigError
from core.spec.validate import fit_size, validate
from core.store import StoreError

BATCH_EVENT_INTERVAL = 0.1  # seconds: at most ~10 batch updates a second reach the listener
DIVERGED_ADVICE = "Lower the learning rate (try a tenth of it) and train again."


class CancelToken:
    """Set from any thread; the batch running at that moment is the last one."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._progress = None  # the running ProgressCallback, attached by train()
        self.steps_at_cancel: int | None = None  # batches started when cancel() was called

    def cancel(self) -> None:
        self._event.set()
        progress = self._progress
        if progress is not None:
            self.steps_at_cancel = progress.steps_started
            # Keras checks this flag right after the current batch, before starting another.
            progress.stop()

    def attach(self, progress) -> None:
        """The running fit's progress callback, so cancel() can stop it (train() attaches)."""
        self._progress = progress
        if self.cancelled:
            progress.stop()

    def detach(self) -> None:
        self._progress = None  # a later cancel() must not touch a finished model

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()


def seed_everything(seed: int) -> None:
    """keras.utils.set_random_seed, without importing TensorFlow under another backend.

    Keras seeds TensorFlow too whenever it is installed, which under JAX or PyTorch costs a
    TensorFlow import (3-5 s of every trainer's start here) for a generator nobody uses: arrays
    reach JAX and PyTorch through Keras's NumPy iterator, shuffled by NumPy.
    """
    keras = import_keras()

    if keras.backend.backend() == "tensorflow" or "tensorflow" in sys.modules:
        keras.utils.set_random_seed(seed)
        return
    try:  # the same steps as keras.utils.set_random_seed, minus tf.random.set_seed
        from keras.src.backend.common import global_state
        from keras.src.random import seed_generator
        from keras.src.utils.rng_utils import GLOBAL_RANDOM_SEED
    except ImportError:  # a Keras whose internals moved: pay for the import rather than differ
        keras.utils.set_random_seed(seed)
        return
    global_state.set_global_attribute(GLOBAL_RANDOM_SEED, seed)
    global_state.set_global_attribute(seed_generator.GLOBAL_SEED_GENERATOR, None)
    random.seed(seed)
    np.random.seed(seed)
    if keras.backend.backend() == "torch":
        import torch

        torch.manual_seed(seed)


_scaled: dict[str, np.ndarray] = {}  # dataset fingerprint -> training images as float32 in [0, 1]
_scaled_lock = threading.Lock()


def _scaled_images(data: Dataset) -> np.ndarray:
    """The training images scaled once per process: a trainer serves many runs of one dataset."""
    with _scaled_lock:
        if data.fingerprint not in _scaled:
            _scaled.clear()  # one dataset at a time: 188 MB for Fashion-MNIST
            _scaled[data.fingerprint] = data.x_train.astype(np.float32) / np.float32(255.0)
        return _scaled[data.fingerprint]


def prepare_arrays(config: RunConfig, data: Dataset):
    """Seeded subset and validation split, scaled to [0, 1] as in the tutorial."""
    n_total = len(data.x_train)
    n = min(config.train_size or n_total, n_total)
    if n < n_total:
        order = np.random.default_rng(config.seed).permutation(n_total)[:n]
        y = data.y_train[order]
    else:
        y = data.y_train
    n_fit = fit_size(config, n_total)
    x = _scaled_images(data)
    if n < n_total:
        x = x[order]
    x_fit, y_fit = x[:n_fit], y[:n_fit]
    validation = (x[n_fit:], y[n_fit:]) if n_fit < n else None
    return x_fit, y_fit, validation


class _Emitter:
    """The one place Events are made: every phase reports through it."""

    def __init__(self, run_id: str, config: RunConfig, listener: Listener | None) -> None:
        self.run_id, self.epochs, self.listener = run_id, config.epochs, listener

    def __call__(self, kind: str, **kw) -> None:
        if self.listener is not None:
            self.listener(Event(kind=kind, run_id=self.run_id, epochs=self.epochs, **kw))


def _make_callback(
    config, emit, cancel, n_fit, params, device, started_at, per_call, model, num_classes
):
    keras = import_keras()

    class ProgressCallback(keras.callbacks.Callback):
        # Batch-end work runs on Keras's side thread (async dispatch), off the training loop.
        async_safe = True

        def __init__(self):
            super().__init__()
            self.batches = math.ceil(n_fit / config.batch_size)
            self.epoch = 0
            self.last_emit = 0.0
            self.diverged = ""
            self.cancelled = False
            self.steps_started = 0  # batches started in the whole run
            self.epoch_started = started_at

        def stop(self):
            # The model object itself, not Callback.model: under JAX that property syncs the
            # model's state from the running step, which from another thread deletes arrays
            # the step still uses ("Array has been deleted"), and on every batch costs time.
            model.stop_training = True

        def _check_loss(self, loss):
            if loss is None:
                return
            # NaN, infinity, or far above where training began: the steps overshoot.
            # Measured against where any run starts (an untrained classifier's loss is about
            # ln(classes)), not the first loss seen: with many steps per call, the first loss
            # reported may already be the exploded one.
            limit = max(50.0, 20.0 * math.log(num_classes))
            if not math.isfinite(loss) or loss > limit:
                what = f"exploded to {loss:.3g}" if math.isfinite(loss) else f"became {loss}"
                self.diverged = (
                    f"The loss {what} in epoch {self.epoch}: the learning rate "
                    f"{config.learning_rate:g} is too large for {config.optimizer}. "
                    f"{DIVERGED_ADVICE}"
                )
                self.stop()

        def on_train_begin(self, logs=None):
            if cancel is not None and cancel.cancelled:
                self.cancelled = True
                self.stop()

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch + 1
            self.epoch_started = time.perf_counter()

        def on_train_batch_begin(self, batch, logs=None):
            # one call runs `per_call` steps (fewer at the end of an epoch)
            done_before = (self.epoch - 1) * self.batches + batch
            self.steps_started = done_before + min(per_call, self.batches - batch)
            if cancel is not None and cancel.cancelled:
                self.cancelled = True
                self.stop()

        def on_train_batch_end(self, batch, logs=None):
            now = time.perf_counter()
            if now - self.last_emit < BATCH_EVENT_INTERVAL:
                return
            self.last_emit = now
            logs = logs or {}
            self._check_loss(_float(logs.get("loss")))
            done = min(batch + 1, self.batches)  # the last call of an epoch may run fewer steps
            spent = now - self.epoch_started
            emit(
                "batch",
                epoch=self.epoch,
                batch=done,
                batches=self.batches,
                logs={k: _float(v) for k, v in logs.items()},
                elapsed=now - started_at,
                images_per_second=min(done * config.batch_size, n_fit) / spent if spent else 0.0,
            )

        def on_epoch_end(self, epoch, logs=None):
            now = time.perf_counter()
            logs = {k: _float(v) for k, v in (logs or {}).items()}
            self._check_loss(logs.get("loss"))
            spent = now - self.epoch_started
            emit(
                "epoch",
                epoch=epoch + 1,
                batch=self.batches,
                batches=self.batches,
                logs=logs,
                elapsed=now - started_at,
                images_per_second=n_fit / spent if spent else 0.0,
                params=params,
                device=device,
            )

    return ProgressCallback()


def _float(value) -> float | None:
    return None if value is None else float(value)


def train(
    config: RunConfig,
    data: Dataset | None = None,
    listener: Listener | None = None,
    cancel: CancelToken | None = None,
    store=None,
    *,
    force: bool = False,
) -> RunResult:
    """Train `config` (or answer it from `store`), reporting progress to `listener`.

    Raises ConfigError for an impossible config. Every other outcome is a RunResult whose status
    says what happened: finished (stored, if a store is given), cancelled, diverged or failed.
    force: train even if stored, and replace the stored result.
    """
    # imported datasets live beside the run store, so they are looked for there
    data = data or load_dataset(config.dataset, home=getattr(store, "home", None))
    run_id = config.run_id_for(data.fingerprint)
    emit = _Emitter(run_id, config, listener)
    if not force:
        try:
            stored = lookup(store, run_id, emit)
        except StoreError:  # the stored copy is damaged: train a fresh one to replace it
            force = True
        else:
            if stored is not None:
                return stored
    validate(
        config,
        train_available=len(data.x_train),
        input_shape=data.input_shape,
        num_classes=data.num_classes,
    )
    result = RunResult(
        run_id=run_id,
        config=config,
        status="failed",
        data_source=data.source,
        data_id=data.fingerprint,
        params=count_params(config, data.input_shape, data.num_classes),
        created_at=time.time(),
    )
    try:
        fitted = fit(config, data, result, emit, cancel)
        return outcome(fitted, data, result, emit, store, replace=force)
    except ConfigError:
        raise
    except Exception as exc:  # an unexpected fault must end the run, not the caller's thread
        result.status = "failed"
        result.message = _failure_sentence(exc)
        emit("failed", message=result.message)
        return result


def lookup(store, run_id: str, emit: _Emitter) -> RunResult | None:
    """Phase 1: the stored result of this exact run, if any (reported as a cached finish)."""
    if store is None:
        return None
    stored = store.get(run_id)
    if stored is not None:
        emit("finished", message="cached")
    return stored


class _Fitted:
    """What phase 2 hands to phase 3: the model, its history and the progress callback."""

    def __init__(self, model, history: dict, progress, cancel) -> None:
        self.model, self.history, self.progress, self.cancel = model, history, progress, cancel


def fit(config: RunConfig, data: Dataset, result: RunResult, emit, cancel) -> _Fitted:
    """Phase 2: build the model and run model.fit on this process's Keras backend."""
    keras = import_keras()

    from core.learn.model import build_model

    result.backend = current_backend()
    keep_tensorflow_out(result.backend)
    result.device = this_device()
    seed_everything(config.seed)
    x_fit, y_fit, validation = prepare_arrays(config, data)
    result.train_size = len(x_fit)
    per_call = steps_per_execution(
        config, data.input_shape, result.device.startswith("GPU"), result.backend
    )
    model = build_model(
        config,
        data.input_shape,
        data.num_classes,
        steps_per_execution=per_call,
        steps_per_epoch=math.ceil(len(x_fit) / config.batch_size),
    )
    started = time.perf_counter()
    emit("started", params=result.params, device=result.device, backend=result.backend)
    progress = _make_callback(
        config,
        emit,
        cancel,
        len(x_fit),
        result.params,
        result.device,
        started,
        per_call,
        model,
        data.num_classes,
    )
    if cancel is not None:
        cancel.attach(progress)
    callbacks = [progress]
    if config.early_stopping and validation is not None:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=config.early_stopping, restore_best_weights=True
            )
        )
    try:
        history = model.fit(
            x_fit,
            y_fit,
            batch_size=config.batch_size,
            epochs=config.epochs,
            validation_data=validation,
            callbacks=callbacks,
            verbose=0,
        )
    finally:
        if cancel is not None:
            cancel.detach()
    result.train_seconds = time.perf_counter() - started
    result.history = {k: [float(v) for v in vs] for k, vs in history.history.items()}
    result.epochs_trained = len(result.history.get("loss", []))
    result.images_per_second = (
        result.train_size * result.epochs_trained / result.train_seconds
        if result.train_seconds
        else 0.0
    )
    return _Fitted(model, result.history, progress, cancel)


def outcome(fitted: _Fitted, data: Dataset, result: RunResult, emit, store, *, replace=False):
    """Phase 3: cancelled, diverged, or evaluated on the test set and stored."""
    config, progress, cancel = result.config, fitted.progress, fitted.cancel
    if progress.cancelled or (cancel is not None and cancel.cancelled):
        result.status, result.message = "cancelled", "Training was stopped; nothing was stored."
        emit(
            "cancelled",
            epoch=progress.epoch,
            batch=progress.steps_started,  # batches started in the whole run
            message=result.message,
            elapsed=result.train_seconds,
        )
        return result
    if progress.diverged or not _finite(result.history.get("loss", [])):
        result.status = "diverged"
        result.message = progress.diverged or (
            f"The loss stopped being a number: the learning rate {config.learning_rate:g} "
            f"is too large. {DIVERGED_ADVICE}"
        )
        emit("diverged", message=result.message, elapsed=result.train_seconds)
        return result

    from core.learn.evaluation import evaluate

    evaluation = evaluate(fitted.model, data)
    result.test_loss = evaluation.test_loss
    result.test_accuracy = evaluation.test_accuracy
    result.confusion = evaluation.confusion.tolist()
    result.status = "finished"
    if store is not None:
        result = store.save(result, fitted.model, evaluation, replace=replace)
    emit(
        "finished",
        logs={"test_loss": result.test_loss, "test_accuracy": result.test_accuracy},
        elapsed=result.train_seconds,
        images_per_second=result.images_per_second,
    )
    return result


def _failure_sentence(exc: Exception) -> str:
    """A store refusal (size limits, a read-only store) is already a sentence; the rest is not."""
    if isinstance(exc, StoreError):
        return str(exc)
    return f"Training failed: {type(exc).__name__}: {exc}"


def _finite(values: list[float]) -> bool:
    return all(math.isfinite(v) for v in values)
