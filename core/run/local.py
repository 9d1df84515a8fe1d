"""The local executor: jobs train in this machine's trainer processes, one per slot and backend.

A trainer is a long-lived child process on one Keras backend (spawned on first use; the framework
is imported once). Training runs there, not in the UI's process, because Streamlit calls
keras.backend.clear_session() after every script run, which in the same process would reset
Keras's global state under a running fit (and stall it on garbage collection). The separate
process also keeps the UI's interpreter lock free and survives a crash of the framework.
"""

from __future__ import annotations

import multiprocessing
import threading
import time

from core.errors import PlaygroundError
from core.home import workers_wanted
from core.run.child import ParentGone, exit_reason, os_reason, serve, spawn_child
from core.spec.config import RunConfig
from core.spec.results import RunResult

DEFAULT_WORKERS = 1  # two cores: one fit at a time (PLAYGROUND_WORKERS asks for more)
EXIT_WAIT_SECONDS = 5.0  # after its pipe closes, how long a dying trainer gets to be reaped


class LocalExecutor:
    """Jobs train in this machine's trainer processes, one per slot and Keras backend."""

    name = "local"
    label = "this machine"
    one_trainer_per_slot = False  # idle trainers of other backends are retired after a while

    def default_workers(self) -> int:
        return workers_wanted() or DEFAULT_WORKERS

    def trainer(self, backend: str) -> TrainerProcess:
        return TrainerProcess(backend)


class TrainerProcess:
    """One long-lived child process on one Keras backend; trains the configs it is sent."""

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self.last_used = time.monotonic()
        self._context = multiprocessing.get_context("spawn")  # never fork a threaded process
        self._process = None
        self._conn = None
        self._cancel = None
        self.worker_pid = 0  # a process elsewhere that trains for this one (Ray's actor)

    @property
    def pid(self) -> int | None:
        process = self._process
        return process.pid if process is not None and process.is_alive() else None

    def start(self) -> None:
        self._ensure()

    def _ensure(self) -> None:
        if self._process is not None and self._process.is_alive():
            return
        self.discard()  # a trainer that died between jobs: forget its pipe too
        self._cancel = self._context.Event()
        target, args = self.child_main()
        self._process, self._conn = spawn_child(
            self._context, target, (self._cancel, *args), f"trainer-{self.backend}"
        )

    def child_main(self) -> tuple:
        """(the child's main function, its arguments after the pipe and the cancel event)."""
        return trainer_main, (self.backend,)

    def died_sentence(self, reason: str) -> str:
        return (
            f"The trainer process stopped unexpectedly ({reason}); nothing was stored. "
            "Try again, perhaps with a smaller network or batch."
        )

    def run(self, config, force, home, on_event, cancel_requested) -> RunResult | str:
        """Train one config: its RunResult, or one sentence (a user error or a fault)."""
        self.last_used = time.monotonic()
        try:
            self._ensure()
        except OSError as exc:  # out of memory or processes: nothing started, nothing to clean
            self.discard()
            return (
                f"The trainer process could not be started ({os_reason(exc)}); nothing was "
                "trained. Try again in a moment."
            )
        self._cancel.clear()
        try:
            self._conn.send((config.to_json(), force, home))
        except (OSError, ValueError) as exc:  # BrokenPipeError, or a pipe closed under us
            self.discard()
            return (
                f"The connection to the trainer process broke ({os_reason(exc)}); nothing was "
                "stored. Train again: a fresh trainer starts."
            )
        try:
            return self._follow(on_event, cancel_requested)
        finally:
            self.last_used = time.monotonic()

    def _follow(self, on_event, cancel_requested) -> RunResult | str:
        while True:
            if cancel_requested.is_set():
                self._cancel.set()
            try:
                message = self._conn.recv() if self._conn.poll(0.05) else None
            except (EOFError, OSError):  # the child's end closed: it is exiting, or was killed
                self._process.join(timeout=EXIT_WAIT_SECONDS)
                message = None
            except Exception as exc:  # an answer that cannot be unpickled here
                self.discard()
                return (
                    f"The trainer process sent an unreadable message ({type(exc).__name__}); "
                    "nothing was stored. Train again: a fresh trainer starts."
                )
            if message is not None:
                kind, payload = message
                if kind == "event":
                    on_event(payload)
                    continue
                if kind == "worker":
                    self.worker_pid = payload
                    continue
                return payload  # "result" carries a RunResult, "error" a sentence
            if not self._process.is_alive():
                code = self._process.exitcode
                self.discard()
                return self.died_sentence(exit_reason(code))

    def discard(self) -> None:
        """Forget the child (killing it if it still runs) and its pipe; the next job starts one."""
        process, conn = self._process, self._conn
        self._process = self._conn = None
        self.worker_pid = 0
        if process is not None and process.is_alive():
            process.kill()
            process.join(timeout=EXIT_WAIT_SECONDS)
        if conn is not None:
            conn.close()

    def stop(self) -> None:
        """Ask the child to finish its current batch and exit; kill it if it does not."""
        if self._process is not None and self._process.is_alive():
            self._cancel.set()
            try:
                self._conn.send(None)
            except (OSError, ValueError):
                pass
            self._process.join(timeout=10)
        self.discard()


def trainer_main(conn, cancel_event, backend: str) -> None:
    """Child process: train each config received on `conn`, streaming events back."""
    from core.runtime import import_keras

    import_keras(backend)  # the framework loads now, before the first job
    from core.learn.training import CancelToken, train
    from core.store import RunStore

    def answer(request, send) -> tuple:
        config_json, force, home = request
        token = CancelToken()
        finished = threading.Event()

        def watch_cancel() -> None:
            while not finished.is_set():
                if cancel_event.wait(0.05):
                    token.cancel()
                    return

        watcher = threading.Thread(target=watch_cancel, daemon=True)
        watcher.start()
        try:
            result = train(
                RunConfig.from_json(config_json),
                listener=lambda event: send(("event", event)),
                cancel=token,
                store=RunStore(home) if home else None,
                force=force,
            )
            return "result", result
        except ParentGone:
            raise
        except PlaygroundError as exc:  # a config or dataset that cannot be trained: its sentence
            return "error", str(exc)
        except Exception as exc:  # never let one bad job end the trainer silently
            return "error", f"Training failed: {type(exc).__name__}: {exc}"
        finally:
            finished.set()
            watcher.join()

    serve(conn, answer)
