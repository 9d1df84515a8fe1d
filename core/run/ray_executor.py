"""The Ray executor: the job queue's jobs train on a Ray cluster instead of this machine.

Chosen with PLAYGROUND_RAY_ADDRESS (or the CLI's --ray ADDRESS): `host:6379` (the head's GCS
port) or `ray://host:10001` (Ray Client). Ray is optional; it is imported only here.

How a job runs. Each worker slot of the queue owns one *driver process* on this machine (a child,
like the local trainer processes, speaking the same pipe protocol). The driver connects to the
cluster, puts the dataset into Ray's object store once, and keeps one long-lived actor per slot on
the cluster, on the slot's Keras backend, so the framework is imported once, not per job. The actor
trains with core.learn.training.train and keeps no files: it returns the RunResult, the .keras
file's bytes and the test-set evaluation, and the driver stores them in the server's own run store
(the cluster needs no shared disk). Progress events are buffered in the actor and fetched by the
driver every tenth of a second; Stop sets the actor's cancel token, so the run ends after its
current batch, as locally.

Why a child process rather than ray.init in the server: a Ray driver whose cluster stops answering
may wait minutes in ray.init, and exits its whole process when the cluster's control store (GCS)
stays away. In a child, that ends one job with a sentence and the app stays up.

Faults. A worker (or its node) lost mid-job ends that job "failed" with a sentence; it is not
retried, because a run that killed its worker (out of memory, typically) would most likely kill
the next one too. Nothing half-done is stored, since only the driver stores, after a finished run.
The next job gets a fresh actor. A cluster that cannot be reached, at start or later, is one
sentence; the local executor is never substituted silently.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import socket
import tempfile
import threading
import time
from pathlib import Path

from core.errors import PlaygroundError
from core.home import RAY_ADDRESS_VARIABLE, workers_wanted
from core.run.child import ParentGone, serve, spawn_child
from core.run.local import TrainerProcess
from core.spec.config import RunConfig
from core.spec.results import Event, RunResult

ADDRESS_VARIABLE = RAY_ADDRESS_VARIABLE
CONNECT_SECONDS = 5.0  # a head that does not accept a TCP connection in this long is unreachable
PROBE_SECONDS = 60.0  # a first ray.init may take several seconds; beyond this it is not coming
POLL_SECONDS = 0.1  # how often the driver fetches events and passes on Stop
KILL_AFTER_CANCEL_SECONDS = 3.0  # an actor that has not stopped by then (stuck, or never placed)
CORE_DIR = Path(__file__).resolve().parent.parent  # all of core/: the actor imports from it


class ClusterUnreachable(PlaygroundError):
    """The Ray cluster at the given address cannot be used; the message is one sentence."""


def _host_port(address: str) -> tuple[str, int]:
    bare = address.removeprefix("ray://")
    host, _, port = bare.rpartition(":")
    if not host or not port.isdigit():
        raise ClusterUnreachable(
            f"The Ray address {address!r} is not host:port or ray://host:port; "
            f"set {ADDRESS_VARIABLE} to the address `ray start --head` printed."
        )
    return host, int(port)


def check_reachable(address: str) -> None:
    """ClusterUnreachable unless something accepts connections at the address.

    ray.init towards a dead address waits minutes before it gives up; a TCP connection answers
    at once (refused) or within CONNECT_SECONDS.
    """
    host, port = _host_port(address)
    try:
        with socket.create_connection((host, port), timeout=CONNECT_SECONDS):
            pass
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        raise ClusterUnreachable(
            f"The Ray cluster at {address} cannot be reached ({reason.lower()}); nothing was "
            "trained. Start it with `ray start --head`, or unset "
            f"{ADDRESS_VARIABLE} to train on this machine."
        ) from None


def _connect(address: str, **kw) -> None:
    import ray

    check_reachable(address)
    ray.init(
        address=address,
        log_to_driver=False,  # the workers' output would land in the app's console
        logging_level=logging.ERROR,
        **kw,
    )


class RayExecutor:
    """Jobs train on the Ray cluster at `address`; the cluster is probed when this is made.

    Raises ClusterUnreachable with one sentence when the cluster cannot be used.
    """

    name = "ray"
    one_trainer_per_slot = True  # each actor holds a CPU (or GPU): a slot keeps only one

    def __init__(self, address: str) -> None:
        self.address = address
        self.resources = probe(address)
        self.cpus = int(self.resources.get("CPU", 0))
        self.gpus = int(self.resources.get("GPU", 0))

    @property
    def label(self) -> str:
        gpus = f", {self.gpus} GPU{'s' if self.gpus != 1 else ''}" if self.gpus else ", no GPU"
        return f"the Ray cluster at {self.address} ({self.cpus} CPUs{gpus})"

    def default_workers(self) -> int:
        """Jobs at once: one per CPU (one per GPU on a cluster with GPUs), unless
        PLAYGROUND_WORKERS says otherwise."""
        return workers_wanted() or max(1, self.gpus or self.cpus)

    def trainer(self, backend: str) -> TrainerProcess:
        return _RayDriverProcess(backend, self.address, use_gpu=self.gpus > 0)


def probe(address: str) -> dict[str, float]:
    """The cluster's resources ({"CPU": 2.0, ...}), asked from a short-lived child process."""
    check_reachable(address)
    context = multiprocessing.get_context("spawn")
    try:
        process, conn = spawn_child(context, _probe_main, (address,), "ray-probe")
    except OSError as exc:
        raise ClusterUnreachable(
            f"The Ray cluster at {address} could not be asked for its size ({exc}); "
            "nothing was trained."
        ) from None
    try:
        answer = conn.recv() if conn.poll(PROBE_SECONDS) else None
    except (EOFError, OSError):
        answer = None
    finally:
        conn.close()
        if process.is_alive():
            process.kill()
        process.join(timeout=5)
    if answer is None:
        raise ClusterUnreachable(
            f"The Ray cluster at {address} accepted a connection but did not answer as a Ray "
            f"cluster within {PROBE_SECONDS:.0f} s; check the address (`ray status` on the head)."
        )
    kind, payload = answer
    if kind == "error":
        raise ClusterUnreachable(payload)
    return payload


def _probe_main(conn, address: str) -> None:
    try:
        _connect(address)
        import ray

        conn.send(("ok", dict(ray.cluster_resources())))
        ray.shutdown()
    except ClusterUnreachable as exc:
        conn.send(("error", str(exc)))
    except Exception as exc:
        conn.send(
            (
                "error",
                f"The Ray cluster at {address} refused this app ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0] if str(exc) else ''}); is it the same Ray version?",
            )
        )


class _RayDriverProcess(TrainerProcess):
    """A slot's Ray driver: a child process like a trainer, whose jobs train on the cluster."""

    def __init__(self, backend: str, address: str, use_gpu: bool) -> None:
        super().__init__(backend)
        self.address = address
        self.use_gpu = use_gpu

    @property
    def pid(self) -> int | None:
        """The Ray worker process training for this slot (on its node), while connected."""
        return self.worker_pid or None if super().pid is not None else None

    def child_main(self) -> tuple:
        return driver_main, (self.backend, self.address, self.use_gpu)

    def died_sentence(self, reason: str) -> str:
        return (
            f"The connection to the Ray cluster at {self.address} was lost ({reason}); "
            "nothing was stored. Train again when the cluster is back."
        )


class _ModelBytes:
    """A trained model as the actor sent it: RunStore.save writes it with .save(path)."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def save(self, path) -> None:
        Path(path).write_bytes(self.data)


class _Driver:
    """One slot's connection to the cluster: its actor, and the datasets already put there."""

    def __init__(self, address: str, backend: str, use_gpu: bool) -> None:
        import ray

        # The cluster imports our engine from this copy of core/ (no shared disk needed).
        _connect(address, runtime_env={"py_modules": [str(CORE_DIR)]})
        self.ray, self.address, self.backend, self.use_gpu = ray, address, backend, use_gpu
        self.actor = None
        self.worker_pid = 0
        self.data_refs: dict[str, object] = {}  # dataset fingerprint -> ObjectRef

    def _actor(self, send):
        if self.actor is None:
            remote = self.ray.remote(
                num_cpus=1,
                num_gpus=1 if self.use_gpu else 0,
                max_concurrency=4,  # events() and cancel() answer while train() runs
                max_restarts=0,  # a lost worker fails its job with a sentence (see the docstring)
            )(RayTrainer)
            self.actor = remote.remote(self.backend)
            self.worker_pid = self.ray.get(self.actor.pid.remote())
            send(("worker", self.worker_pid))
        return self.actor

    def _data_ref(self, data):
        key = data.fingerprint  # computed before the put, so the workers need not hash again
        if key not in self.data_refs:
            self.data_refs.clear()  # one dataset at a time, as the trainers keep it
            self.data_refs[key] = self.ray.put(data)
        return self.data_refs[key]

    def run(self, config_json: str, force: bool, home, send, cancel_event):
        """("result", RunResult) or ("error", sentence) for one job."""
        from core.data.dataset import DatasetUnavailable
        from core.data.registry import load_dataset
        from core.store import RunStore, StoreError

        config = RunConfig.from_json(config_json)
        store = RunStore(home) if home else None
        try:
            data = load_dataset(config.dataset, home=home)
        except DatasetUnavailable as exc:
            return "error", str(exc)
        run_id = config.run_id_for(data.fingerprint)
        if store is not None and not force:
            try:
                stored = store.get(run_id)
            except StoreError:
                stored, force = None, True  # damaged: train a fresh one to replace it
            if stored is not None:
                send(("event", Event("finished", run_id, epochs=config.epochs, message="cached")))
                return "result", stored
        try:
            actor = self._actor(send)
            reply = self._follow(actor, config, data, send, cancel_event)
        except self.ray.exceptions.RayError as exc:
            self.actor = None  # dead or unusable: the next job gets a fresh one
            return "error", _lost_sentence(exc)
        if reply[0] != "trained":
            return reply
        _, result, model_bytes, evaluation = reply
        result.executor = "ray"
        if result.ok and store is not None:
            try:
                result = store.save(result, _ModelBytes(model_bytes), evaluation, replace=force)
            except StoreError as exc:
                return "error", str(exc)
            result.executor = "ray"
        return "result", result

    def _follow(self, actor, config, data, send, cancel_event):
        ref = actor.train.remote(config.to_json(), self._data_ref(data))
        cancelled_at = None
        while True:
            done, _ = self.ray.wait([ref], timeout=POLL_SECONDS)
            for event in self.ray.get(actor.events.remote()):
                send(("event", event))
            if done:
                return self.ray.get(ref)
            if cancel_event.is_set() and cancelled_at is None:
                cancelled_at = time.monotonic()
                actor.cancel.remote()
            if cancelled_at and time.monotonic() - cancelled_at > KILL_AFTER_CANCEL_SECONDS:
                self.ray.kill(actor)  # stuck, or still waiting for room on the cluster
                self.actor = None
                result = RunResult(
                    run_id=config.run_id_for(data.fingerprint),
                    config=config,
                    status="cancelled",
                    message="Training was stopped; nothing was stored.",
                    executor="ray",
                )
                return "result", result


def _lost_sentence(exc: Exception) -> str:
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
    return (
        f"The Ray worker training this run was lost ({type(exc).__name__}: {first}); nothing "
        "was stored and it was not retried. Train again: a fresh worker starts."
    )


def driver_main(conn, cancel_event, backend: str, address: str, use_gpu: bool) -> None:
    """Child process: train each config received on `conn` on the cluster, events streaming back."""
    drivers: list[_Driver] = []  # connected on the first job, then kept

    def answer(request, send) -> tuple:
        config_json, force, home = request
        try:
            if not drivers:
                drivers.append(_Driver(address, backend, use_gpu))
            return drivers[0].run(config_json, force, home, send, cancel_event)
        except ParentGone:
            raise
        except ClusterUnreachable as exc:
            return "error", str(exc)
        except Exception as exc:  # one bad job must not end the driver silently
            return "error", f"Training on the Ray cluster failed: {type(exc).__name__}: {exc}"

    try:
        serve(conn, answer)
    finally:
        for driver in drivers:
            driver.ray.shutdown()


class RayTrainer:
    """The actor (one per slot, on one Keras backend): trains configs, keeps no files."""

    def __init__(self, backend: str) -> None:
        from core.runtime import import_keras

        import_keras(backend)  # the framework loads now, before the first job

        self._lock = threading.Lock()
        self._events: list[Event] = []
        self._token = None

    def pid(self) -> int:
        return os.getpid()

    def events(self) -> list[Event]:
        with self._lock:
            events, self._events = self._events, []
        return events

    def cancel(self) -> None:
        token = self._token
        if token is not None:
            token.cancel()

    def train(self, config_json: str, data):
        """("trained", RunResult, model bytes, Evaluation) or ("error", sentence)."""
        from core.learn.training import CancelToken, train
        from core.spec.settings import ConfigError

        capture = _Capture()
        self._token = CancelToken()
        with self._lock:
            self._events = []
        try:
            result = train(
                RunConfig.from_json(config_json),
                data,
                listener=self._record,
                cancel=self._token,
                store=capture,
            )
        except ConfigError as exc:
            return "error", str(exc)
        finally:
            self._token = None
        return "trained", result, capture.model_bytes, capture.evaluation

    def _record(self, event: Event) -> None:
        with self._lock:
            self._events.append(event)


class _Capture:
    """Stands where train() expects a run store: keeps the finished model as bytes instead."""

    home = None

    def __init__(self) -> None:
        self.model_bytes = b""
        self.evaluation = None

    def get(self, run_id: str):
        return None  # the server looked in its own store before sending the job

    def save(self, result: RunResult, model, evaluation, replace: bool = False) -> RunResult:
        with tempfile.TemporaryDirectory(prefix="playground-ray-") as folder:
            path = Path(folder) / "model.keras"
            model.save(path)
            self.model_bytes = path.read_bytes()
        self.evaluation = evaluation
        return result
