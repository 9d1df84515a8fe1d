"""Train a RunConfig with Keras, reporting progress to a listener; answer repeats from the store.

The listener is any callable taking an Event. Events are small frozen dataclasses of plain Python
values, so a listener may hand them to another thread (a queue, a job status) without copying.
"""

from __future__ import annotations

import math
import threading
import time

import numpy as np

from core.config import ConfigError, RunConfig, count_params, fit_size, validate
from core.datasets import Dataset, load_dataset
from core.results import Event, Listener, RunResult

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
            progress.model.stop_training = True

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()


def describe_device() -> str:
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        names = []
        for gpu in gpus:
            details = tf.config.experimental.get_device_details(gpu)
            names.append(details.get("device_name", gpu.name))
        return "GPU: " + ", ".join(names)
    return "CPU"


def prepare_arrays(config: RunConfig, data: Dataset):
    """Seeded subset and validation split, scaled to [0, 1] as in the tutorial."""
    n_total = len(data.x_train)
    n = min(config.train_size or n_total, n_total)
    if n < n_total:
        order = np.random.default_rng(config.seed).permutation(n_total)[:n]
        x, y = data.x_train[order], data.y_train[order]
    else:
        x, y = data.x_train, data.y_train
    n_fit = fit_size(config, n_total)
    x = x.astype("float32") / 255.0
    x_fit, y_fit = x[:n_fit], y[:n_fit]
    validation = (x[n_fit:], y[n_fit:]) if n_fit < n else None
    return x_fit, y_fit, validation


def _make_callback(run_id, config, listener, cancel, n_fit, params, device, started_at):
    import keras

    class ProgressCallback(keras.callbacks.Callback):
        # Batch-end work runs on Keras's side thread (async dispatch), off the training loop.
        async_safe = True

        def __init__(self):
            super().__init__()
            self.batches = math.ceil(n_fit / config.batch_size)
            self.epoch = 0
            self.last_emit = 0.0
            self.first_loss = None
            self.diverged = ""
            self.cancelled = False
            self.steps_started = 0
            self.epoch_started = started_at

        def _emit(self, kind, **kw):
            if listener is not None:
                listener(Event(kind=kind, run_id=run_id, epochs=config.epochs, **kw))

        def _check_loss(self, loss):
            if loss is None:
                return
            if self.first_loss is None and math.isfinite(loss):
                self.first_loss = loss
            # NaN, infinity, or far above where training began: the steps overshoot.
            limit = max(50.0, 20.0 * (self.first_loss or 0.0))
            if not math.isfinite(loss) or loss > limit:
                what = f"exploded to {loss:.3g}" if math.isfinite(loss) else f"became {loss}"
                self.diverged = (
                    f"The loss {what} in epoch {self.epoch}: the learning rate "
                    f"{config.learning_rate:g} is too large for {config.optimizer}. "
                    f"{DIVERGED_ADVICE}"
                )
                self.model.stop_training = True

        def on_train_begin(self, logs=None):
            if cancel is not None and cancel.cancelled:
                self.cancelled = True
                self.model.stop_training = True

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch + 1
            self.epoch_started = time.perf_counter()

        def on_train_batch_begin(self, batch, logs=None):
            self.steps_started += 1
            if cancel is not None and cancel.cancelled:
                self.cancelled = True
                self.model.stop_training = True

        def on_train_batch_end(self, batch, logs=None):
            now = time.perf_counter()
            if now - self.last_emit < BATCH_EVENT_INTERVAL:
                return
            self.last_emit = now
            logs = logs or {}
            self._check_loss(logs.get("loss"))
            done = batch + 1
            spent = now - self.epoch_started
            self._emit(
                "batch",
                epoch=self.epoch,
                batch=done,
                batches=self.batches,
                logs={k: float(v) for k, v in logs.items()},
                elapsed=now - started_at,
                images_per_second=min(done * config.batch_size, n_fit) / spent if spent else 0.0,
            )

        def on_epoch_end(self, epoch, logs=None):
            now = time.perf_counter()
            logs = {k: float(v) for k, v in (logs or {}).items()}
            self._check_loss(logs.get("loss"))
            spent = now - self.epoch_started
            self._emit(
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
    """
    data = data or load_dataset(config.dataset)
    run_id = config.run_id_for(data.fingerprint)
    if store is not None and not force:
        stored = store.get(run_id)
        if stored is not None:
            if listener is not None:
                listener(Event("finished", run_id, message="cached", epochs=config.epochs))
            return stored
    validate(
        config,
        train_available=len(data.x_train),
        input_shape=data.input_shape,
        num_classes=data.num_classes,
    )
    params = count_params(config, data.input_shape, data.num_classes)
    result = RunResult(
        run_id=run_id,
        config=config,
        status="failed",
        data_source=data.source,
        data_id=data.fingerprint,
        params=params,
        created_at=time.time(),
    )

    def emit(kind, **kw):
        if listener is not None:
            listener(Event(kind=kind, run_id=run_id, epochs=config.epochs, **kw))

    try:
        import keras

        from core.model import build_model

        result.device = describe_device()
        keras.utils.set_random_seed(config.seed)
        x_fit, y_fit, validation = prepare_arrays(config, data)
        result.train_size = len(x_fit)
        model = build_model(config, data.input_shape, data.num_classes)
        started = time.perf_counter()
        emit("started", params=params, device=result.device)
        progress = _make_callback(
            run_id, config, listener, cancel, len(x_fit), params, result.device, started
        )
        if cancel is not None:
            progress.set_model(model)
            cancel._progress = progress
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
                cancel._progress = None  # a later cancel() must not touch this finished model
        result.train_seconds = time.perf_counter() - started
        result.history = {k: [float(v) for v in vs] for k, vs in history.history.items()}
        result.epochs_trained = len(result.history.get("loss", []))
        result.images_per_second = (
            result.train_size * result.epochs_trained / result.train_seconds
            if result.train_seconds
            else 0.0
        )
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

        from core.evaluation import evaluate

        evaluation = evaluate(model, data)
        result.test_loss = evaluation.test_loss
        result.test_accuracy = evaluation.test_accuracy
        result.confusion = evaluation.confusion.tolist()
        result.status = "finished"
        if store is not None:
            result = store.save(result, model, evaluation)
        emit(
            "finished",
            logs={"test_loss": result.test_loss, "test_accuracy": result.test_accuracy},
            elapsed=result.train_seconds,
            images_per_second=result.images_per_second,
        )
        return result
    except ConfigError:
        raise
    except Exception as exc:  # an unexpected fault must end the run, not the caller's thread
        result.status = "failed"
        result.message = f"Training failed: {type(exc).__name__}: {exc}"
        emit("failed", message=result.message)
        return result


def _finite(values: list[float]) -> bool:
    return all(math.isfinite(v) for v in values)
