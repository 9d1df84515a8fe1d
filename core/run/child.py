"""Child processes that the engine talks to over a pipe: started one way, answered one way, and
their ends said in the same words (the trainers, the Ray drivers and the model process).

Children are spawned, never forked (the parent runs threads). The child side of every pipe is
one loop, serve(): take a request, answer it, until the parent says None or goes away.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable


def spawn_child(context, target, args: tuple, name: str):
    """(process, our end of its pipe): a daemon child running target(its end, *args).

    Shared by the trainers and the model process; if the start fails, no pipe end is left open.
    """
    parent, child = context.Pipe()
    process = context.Process(target=target, args=(child, *args), name=name, daemon=True)
    try:
        process.start()
    except BaseException:
        parent.close()
        raise
    finally:
        child.close()
    return process, parent


def os_reason(exc: Exception) -> str:
    """'Broken pipe', 'Cannot allocate memory': the OS's words, without errno and paths."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def exit_reason(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hint = ", often the system running out of memory" if -code == signal.SIGKILL else ""
        return f"killed by {name}{hint}"
    return f"exit code {code}"


class ParentGone(Exception):
    """The pipe to the parent broke: nobody is left to answer."""


class Sender:
    """Sends on a child's end of the pipe from any thread (Keras reports batches from its own);
    ParentGone when the parent's end is closed."""

    def __init__(self, conn) -> None:
        self._conn = conn
        self._lock = threading.Lock()

    def __call__(self, message) -> None:
        with self._lock:
            try:
                self._conn.send(message)
            except OSError as exc:
                raise ParentGone from exc


def serve(conn, answer: Callable[[object, Sender], object]) -> None:
    """The child's side of every pipe: answer each request until the parent sends None or goes.

    answer(request, send) returns the reply, which is sent; it may send progress on the way
    with send(). A ParentGone from it ends the loop quietly.
    """
    send = Sender(conn)
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return
        if request is None:
            return
        try:
            send(answer(request, send))
        except ParentGone:
            return
