"""A long-lived child process that loads stored models and answers questions about them.

The Classify and Inside-the-network pages need Keras, but the UI process stays free of it:
Streamlit calls keras.backend.clear_session() (with a garbage collection, ~0.25 s here) after
every script run once Keras is imported, and the Train page reruns a fragment twice a second.
So, as with training (core/jobs.py), the model work happens in a spawned process. Requests are
small (a few 28x28 images) and answers are numpy arrays; one lock serialises them.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections import OrderedDict

import numpy as np

DEFAULT_TIMEOUT = 120.0  # seconds; the first request also pays for importing TensorFlow
MODELS_KEPT = 4  # loaded models kept in the child, most recently used first


class AnalysisError(Exception):
    """A request the model process could not answer; str(exc) is one sentence for the user."""


class Analyst:
    """Client side: call(kind, *args) sends a request to the child and returns its answer."""

    def __init__(self) -> None:
        self._context = multiprocessing.get_context("spawn")  # never fork a threaded server
        self._lock = threading.Lock()
        self._process = None
        self._conn = None

    @property
    def started(self) -> bool:
        return self._process is not None and self._process.is_alive()

    def _ensure(self) -> None:
        if self.started:
            return
        parent, child = self._context.Pipe()
        self._process = self._context.Process(
            target=_serve, args=(child,), name="model-analyst", daemon=True
        )
        self._process.start()
        child.close()
        self._conn = parent

    def start(self) -> None:
        """Start the child now (it imports TensorFlow at once), so a first request waits less."""
        with self._lock:
            try:
                self._ensure()
            except OSError:
                self._restart()  # the first real request will say what went wrong

    def call(self, kind: str, *args, timeout: float = DEFAULT_TIMEOUT):
        with self._lock:
            try:
                self._ensure()
                self._conn.send((kind, args))
            except OSError as exc:  # no process could be started, or its pipe broke
                self._restart()
                raise AnalysisError(
                    f"The model process could not be reached ({exc}); try again."
                ) from None
            deadline = time.monotonic() + timeout
            while True:
                try:
                    if self._conn.poll(0.05):
                        status, payload = self._conn.recv()
                        if status == "ok":
                            return payload
                        raise AnalysisError(payload)
                except (EOFError, OSError):
                    self._process.join(timeout=5)  # the pipe closed: the child is ending
                except AnalysisError:
                    raise
                except Exception as exc:  # an answer that cannot be unpickled here
                    self._restart()
                    raise AnalysisError(
                        f"The model process sent an unreadable answer ({type(exc).__name__})."
                    ) from None
                if not self._process.is_alive():
                    code = self._process.exitcode
                    self._restart()
                    raise AnalysisError(
                        f"The model process stopped unexpectedly (exit code {code}); "
                        "it restarts on the next request."
                    )
                if time.monotonic() > deadline:
                    self._restart()
                    raise AnalysisError(
                        f"The model process did not answer within {timeout:g} s; "
                        "it was restarted. Try again."
                    )

    def _restart(self) -> None:
        """Forget the child (killing it if it still runs) and its pipe; the next call starts one."""
        if self._process is not None and self._process.is_alive():
            self._process.kill()
            self._process.join(timeout=10)
        if self._conn is not None:
            self._conn.close()
        self._process = None
        self._conn = None

    def stop(self) -> None:
        with self._lock:
            if self.started:
                try:
                    self._conn.send(None)
                except OSError:
                    pass
                self._process.join(timeout=10)
            self._restart()


# ------------------------------------------------------------------------------ child side
class _Models:
    """Stored models loaded in the child, keyed by store folder and run id (a small LRU)."""

    def __init__(self) -> None:
        self._loaded: OrderedDict[tuple[str, str, float], object] = OrderedDict()
        self._stores: dict[str, object] = {}  # opening a store checks its schema and folders

    def get(self, home: str, run_id: str):
        from core.store import RunStore

        store = self._stores.get(home)
        if store is None:
            store = self._stores[home] = RunStore(home)
        stored = store.get(run_id)
        if stored is None:  # deleted since it was loaded, or never stored
            raise AnalysisError(f"Run {run_id} is not in the store any more; choose another.")
        key = (home, run_id, stored.created_at)  # a retrained run keeps its id, not its weights
        if key not in self._loaded:
            self._loaded[key] = store.load_model(run_id)
            while len(self._loaded) > MODELS_KEPT:
                self._loaded.popitem(last=False)
        self._loaded.move_to_end(key)
        return self._loaded[key], stored.config


def _classify(models: _Models, home: str, run_id: str, pixels: np.ndarray, saliency: bool):
    from core import explain

    model, _ = models.get(home, run_id)
    probabilities = explain.probabilities(model, pixels)
    maps = (
        [
            explain.occlusion_saliency(model, image, int(p.argmax()))
            for image, p in zip(pixels, probabilities, strict=True)
        ]
        if saliency
        else None
    )
    return {"probabilities": probabilities, "saliency": maps}


def _layers(models: _Models, home: str, run_id: str, image: np.ndarray):
    from core import explain

    model, _ = models.get(home, run_id)
    return {  # plain dicts and arrays: unpickling them must not import Keras in the UI process
        "outputs": [
            {"name": o.name, "kind": o.kind, "values": o.values[0]}
            for o in explain.layer_outputs(model, image[None])
        ],
        "weights": explain.first_dense_weights(model),
        "filters": explain.conv_filters(model),
    }


def _projection(models: _Models, home: str, run_id: str, count: int):
    from core import explain
    from core.datasets import load_dataset

    model, config = models.get(home, run_id)
    data = load_dataset(config.dataset)
    count = min(count, len(data.x_test))
    outputs = explain.layer_outputs(model, data.x_test[:count], keep_last=2)
    hidden = explain.last_hidden(outputs)
    coords, share = explain.pca_2d(hidden.values)
    return {
        "coords": coords.astype(np.float32),
        "share": share,
        "y_true": data.y_test[:count].astype(np.int64),
        "y_pred": outputs[-1].values.argmax(axis=1),
        "layer": f"{hidden.name} ({hidden.kind}, {int(np.prod(hidden.values.shape[1:]))} values)",
    }


HANDLERS = {"classify": _classify, "layers": _layers, "projection": _projection}


def _serve(conn) -> None:
    """Child process: answer each (kind, args) request on `conn` with ("ok"|"error", payload)."""
    import core.explain  # noqa: F401  (TensorFlow loads now, while the user picks a file)

    models = _Models()
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return
        if request is None:
            return
        kind, args = request
        try:
            if kind == "ping":
                from core.training import describe_device

                answer = describe_device()
            else:
                answer = HANDLERS[kind](models, *args)
            conn.send(("ok", answer))
        except AnalysisError as exc:
            conn.send(("error", str(exc)))
        except Exception as exc:  # one bad request must not end the process
            conn.send(("error", f"The model could not answer: {type(exc).__name__}: {exc}"))


_shared: Analyst | None = None
_shared_lock = threading.Lock()


def shared_analyst() -> Analyst:
    """The one model process of this server (started on first request)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = Analyst()
        return _shared
