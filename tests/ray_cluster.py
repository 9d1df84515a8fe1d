"""A real Ray head for the tests: started on a free port of this machine, stopped afterwards.

Shared by tests/test_ray.py and the browser test of the app on Ray (tests/e2e/).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RAY = Path(sys.executable).parent / "ray"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(condition, what: str, seconds: float = 180):
    """Poll until condition() is truthy (a guard against hanging, not a timing assertion)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"gave up waiting for {what}")


@contextlib.contextmanager
def ray_head(env: dict[str, str] | None = None):
    """A real Ray head on a free port; `--block` keeps it our child, so stopping it stops its
    processes (gcs, raylet, workers) and no other cluster on this machine is touched.

    env: variables to set for the cluster's processes (its workers inherit them), e.g. another
    PLAYGROUND_HOME, as a second machine would have."""
    port = free_port()
    temp = tempfile.mkdtemp(prefix="pgray", dir="/tmp")  # Ray's socket paths must stay short
    head = subprocess.Popen(
        [
            str(RAY),
            "start",
            "--head",
            "--block",
            "--num-cpus",
            "2",
            "--num-gpus",
            "0",
            "--node-ip-address",
            "127.0.0.1",
            "--port",
            str(port),
            "--ray-client-server-port",
            str(free_port()),
            "--include-dashboard=false",
            "--disable-usage-stats",
            "--temp-dir",
            temp,
        ],  # fmt: skip
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0", **(env or {})},
    )
    try:
        wait_for(lambda: _accepts(port) or head.poll() is not None, "the Ray head", 120)
        assert head.poll() is None, "ray start --head exited"
        yield f"127.0.0.1:{port}", head
    finally:
        stop_head(head)
        kill_leftovers(temp)
        shutil.rmtree(temp, ignore_errors=True)


def kill_leftovers(temp: str) -> None:
    """After a crash (SIGKILL), the processes of this cluster alone: they name its temp folder."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            args = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if temp in args and int(entry.name) != os.getpid():
            with contextlib.suppress(OSError):
                os.kill(int(entry.name), signal.SIGKILL)


def stop_head(head: subprocess.Popen) -> None:
    if head.poll() is not None:
        head.wait()
        return
    head.send_signal(signal.SIGTERM)  # ray start --block stops its processes on SIGTERM
    try:
        head.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(head.pid, signal.SIGKILL)
        head.wait()


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False
