"""A long-lived child process that loads stored models and answers questions about them.

The Classify and Inside-the-network pages need Keras, but the UI process stays free of it:
Streamlit calls keras.backend.clear_session() (with a garbage collection, ~0.25 s here) after
every script run once Keras is imported, and the Train page reruns a fragment twice a second.
So, as with training (core/run/local.py), the model work happens in a spawned process. Pages ask
through typed methods (classify, layers, projection, ping); requests are small (a few 28x28
images), answers are small dataclasses of numpy arrays, and one lock serialises them. A child that
dies or hangs costs the request one sentence (AnalysisError) and is replaced on the next one.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from core.errors import PlaygroundError
from core.run.child import exit_reason, os_reason, serve, spawn_child

DEFAULT_TIMEOUT = 120.0  # seconds; the first request also pays for importing TensorFlow
MODELS_KEPT = 4  # loaded models kept in the child, most recently used first
EXIT_WAIT_SECONDS = 5.0  # after its pipe closes, how long a dying child gets to be reaped


class AnalysisError(PlaygroundError):
    """A request the model process could not answer; str(exc) is one sentence for the user."""


@dataclass(frozen=True)
class Classification:
    """What a network says about n pictures."""

    probabilities: np.ndarray  # (n, classes)
    saliency: list[np.ndarray] | None  # per picture, (28, 28) for its top class; None if not asked


@dataclass(frozen=True)
class LayerView:
    """One layer's output for one picture."""

    name: str  # the layer's Keras name, e.g. "conv2d"
    kind: str  # its class name, e.g. "Conv2D"
    values: np.ndarray  # the output without the batch axis


@dataclass(frozen=True)
class LayerViews:
    """Every layer's answer to one picture, and what the first layer looks for."""

    outputs: list[LayerView]  # in order; the last holds the logits
    weights: np.ndarray | None  # first Dense layer's units as (units, 28, 28) pictures
    filters: np.ndarray | None  # first convolution's filters as (filters, k, k)


@dataclass(frozen=True)
class Projection:
    """The last hidden layer's outputs for the first test images, projected to 2-D (PCA)."""

    coords: np.ndarray  # (count, 2)
    share: np.ndarray  # variance share of the two directions
    y_true: np.ndarray
    y_pred: np.ndarray
    layer: str  # which layer, in words


class Analyst:
    """Client of the model process: one typed method per question, answered in the child.

    Every method raises AnalysisError with one sentence when it cannot answer; a child that died
    or hangs is replaced, so the next request works on a fresh process.
    """

    def __init__(self) -> None:
        self._context = multiprocessing.get_context("spawn")  # never fork a threaded server
        self._lock = threading.Lock()
        self._process = None
        self._conn = None

    @property
    def started(self) -> bool:
        return self._process is not None and self._process.is_alive()

    @property
    def pid(self) -> int | None:
        """The model process's id while it runs (for operators and tests)."""
        process = self._process
        return process.pid if process is not None and process.is_alive() else None

    def start(self) -> None:
        """Start the child now (it imports TensorFlow at once), so a first request waits less."""
        with self._lock:
            try:
                self._ensure()
            except OSError:
                self._restart()  # the first real request will say what went wrong

    def classify(
        self,
        home: str,
        run_id: str,
        pixels: np.ndarray,
        *,
        saliency: bool = True,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> Classification:
        """Class probabilities of uint8 pictures (n, 28, 28) by a stored run, with saliency maps."""
        return self._request("classify", home, run_id, pixels, saliency, timeout=timeout)

    def layers(
        self, home: str, run_id: str, image: np.ndarray, *, timeout: float = DEFAULT_TIMEOUT
    ) -> LayerViews:
        """Every layer's output for one uint8 picture (28, 28), and the first layer's weights."""
        return self._request("layers", home, run_id, image, timeout=timeout)

    def projection(
        self, home: str, run_id: str, count: int, *, timeout: float = DEFAULT_TIMEOUT
    ) -> Projection:
        """The 2-D map of the first `count` test images in the last hidden layer."""
        return self._request("projection", home, run_id, count, timeout=timeout)

    def ping(self, *, timeout: float = DEFAULT_TIMEOUT) -> str:
        """The child's device ('CPU', 'GPU: <name>'), once it has imported its framework."""
        return self._request("ping", timeout=timeout)

    def stop(self) -> None:
        with self._lock:
            if self.started:
                try:
                    self._conn.send(None)
                except (OSError, ValueError):
                    pass
                self._process.join(timeout=10)
            self._restart()

    # ------------------------------------------------------------------ the wire
    def _ensure(self) -> None:
        if self.started:
            return
        self._restart()  # a child that died between requests: forget its pipe too
        self._process, self._conn = spawn_child(self._context, _serve, (), "model-analyst")

    def _request(self, kind: str, *args, timeout: float):
        """Send (kind, args) to the child and wait for its ("ok" | "error", payload)."""
        with self._lock:
            try:
                self._ensure()
                self._conn.send((kind, args))
            except (OSError, ValueError) as exc:  # no process could be started, or its pipe broke
                self._restart()
                raise AnalysisError(
                    f"The model process could not be reached ({os_reason(exc)}); try again."
                ) from None
            deadline = time.monotonic() + timeout
            while True:
                try:
                    message = self._conn.recv() if self._conn.poll(0.05) else None
                except (EOFError, OSError):  # the pipe closed: the child is ending, or was killed
                    self._process.join(timeout=EXIT_WAIT_SECONDS)
                    code = self._process.exitcode
                    self._restart()
                    raise AnalysisError(
                        f"The model process stopped unexpectedly ({exit_reason(code)}); "
                        "it restarts on the next request."
                    ) from None
                except Exception as exc:  # an answer that cannot be unpickled here
                    self._restart()
                    raise AnalysisError(
                        f"The model process sent an unreadable answer ({type(exc).__name__})."
                    ) from None
                if message is not None:
                    status, payload = message
                    if status == "ok":
                        return payload
                    raise AnalysisError(payload)
                if not self._process.is_alive():
                    code = self._process.exitcode
                    self._restart()
                    raise AnalysisError(
                        f"The model process stopped unexpectedly ({exit_reason(code)}); "
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
        process, conn = self._process, self._conn
        self._process = self._conn = None
        if process is not None and process.is_alive():
            process.kill()
            process.join(timeout=10)
        if conn is not None:
            conn.close()


# ------------------------------------------------------------------------------ child side
class _Models:
    """Stored models loaded in the child, keyed by store folder and run id (a small LRU)."""

    def __init__(self) -> None:
        self._loaded: OrderedDict[tuple[str, str, float], object] = OrderedDict()
        self._stores: dict[str, object] = {}  # opening a store checks its schema and folders

    def get(self, home: str, run_id: str):
        from core.store import RunStore, StoreError

        try:
            store = self._stores.get(home)
            if store is None:
                store = self._stores[home] = RunStore(home)
            stored = store.get(run_id)
            if stored is None:  # deleted since it was loaded, or never stored
                raise AnalysisError(f"Run {run_id} is not in the store any more; choose another.")
            key = (home, run_id, stored.created_at)  # a retrained run keeps its id, not weights
            if key not in self._loaded:
                self._loaded[key] = store.load_model(run_id)
        except StoreError as exc:  # a damaged run: its sentence, and the process lives on
            raise AnalysisError(str(exc)) from None
        self._loaded.move_to_end(key)
        while len(self._loaded) > MODELS_KEPT:  # the least recently used go first
            self._loaded.popitem(last=False)
        return self._loaded[key], stored.config


def _classify(models: _Models, home: str, run_id: str, pixels: np.ndarray, saliency: bool):
    from core.learn import explain

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
    return Classification(probabilities, maps)


def _layers(models: _Models, home: str, run_id: str, image: np.ndarray):
    from core.learn import explain

    model, _ = models.get(home, run_id)
    # this module's dataclasses and numpy arrays: unpickling them must not import Keras in the UI
    return LayerViews(
        outputs=[
            LayerView(o.name, o.kind, o.values[0])
            for o in explain.layer_outputs(model, image[None])
        ],
        weights=explain.first_dense_weights(model),
        filters=explain.conv_filters(model),
    )


def _projection(models: _Models, home: str, run_id: str, count: int):
    from core.data.registry import load_dataset
    from core.learn import explain

    model, config = models.get(home, run_id)
    data = load_dataset(config.dataset, home=home)  # imported datasets live beside the store
    count = min(count, len(data.x_test))
    outputs = explain.layer_outputs(model, data.x_test[:count], keep_last=2)
    hidden = explain.last_hidden(outputs)
    coords, share = explain.pca_2d(hidden.values)
    return Projection(
        coords=coords.astype(np.float32),
        share=share,
        y_true=data.y_test[:count].astype(np.int64),
        y_pred=outputs[-1].values.argmax(axis=1),
        layer=f"{hidden.name} ({hidden.kind}, {int(np.prod(hidden.values.shape[1:]))} values)",
    )


def _ping(models: _Models) -> str:
    from core.runtime import this_device

    return this_device()


HANDLERS = {"classify": _classify, "layers": _layers, "projection": _projection, "ping": _ping}


def _backend() -> str:
    """TensorFlow when installed (its CPU inference is quick); else the best one installed.

    Stored .keras files are backend-neutral, so a run trained on JAX loads here too.
    """
    from core.runtime import choose, installed

    return "tensorflow" if installed("tensorflow") else choose(False)


def _serve(conn) -> None:
    """Child process: answer each (kind, args) request on `conn` with ("ok"|"error", payload)."""
    from core.runtime import BackendUnavailable, import_keras

    try:
        import_keras(_backend())
        import core.learn.explain  # noqa: F401  (the framework loads now, while the user picks a file)

        unavailable = None
    except BackendUnavailable as exc:
        unavailable = str(exc)  # answered to every request: the UI shows it, nothing restarts

    models = _Models()

    def answer(request, send) -> tuple:
        kind, args = request
        try:
            if unavailable:
                raise AnalysisError(unavailable)
            return "ok", HANDLERS[kind](models, *args)
        except AnalysisError as exc:
            return "error", str(exc)
        except Exception as exc:  # one bad request must not end the process
            return "error", f"The model could not answer: {type(exc).__name__}: {exc}"

    serve(conn, answer)


_shared: Analyst | None = None
_shared_lock = threading.Lock()


def shared_analyst() -> Analyst:
    """The one model process of this server (started on first request)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = Analyst()
        return _shared
