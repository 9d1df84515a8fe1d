"""What the Ray path costs: a 1-epoch run through a local Ray head against the local trainers.

Both go through the JobQueue the app uses, timed from submit to the stored result, after one
warm-up job each (so the framework imports and the dataset's first trip are not counted):
`.venv/bin/python bench/bench_ray.py [--repeats 5] [--train-size 10000]`.
Starts its own head (`ray start --head --block`, 2 CPUs, this machine) and stops it afterwards.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.run.local import LocalExecutor
from core.run.queue import JobQueue  # noqa: E402
from core.run.ray_executor import RayExecutor  # noqa: E402
from core.spec.config import LayerSpec, RunConfig  # noqa: E402
from core.store import RunStore  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_head(temp: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    ray = Path(sys.executable).parent / "ray"
    args = [str(ray), "start", "--head", "--block", "--num-cpus", "2", "--port", str(port)]
    args += ["--node-ip-address", "127.0.0.1", "--include-dashboard=false", "--temp-dir", temp]
    args += ["--ray-client-server-port", str(free_port()), "--disable-usage-stats"]
    head = subprocess.Popen(
        args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return head, f"127.0.0.1:{port}"
        except OSError:
            time.sleep(0.2)
    stop_head(head)
    raise SystemExit("the Ray head did not start")


def stop_head(head: subprocess.Popen) -> None:
    head.send_signal(signal.SIGTERM)
    try:
        head.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(head.pid, signal.SIGKILL)
        head.wait()


def time_runs(queue: JobQueue, config: RunConfig, repeats: int) -> list[float]:
    seconds = []
    for i in range(repeats + 1):  # the first one warms up
        started = time.perf_counter()
        status = queue.wait(queue.submit(config.replace(seed=100 + i), force=True))
        assert status.state == "finished", status.message
        if i:
            seconds.append(time.perf_counter() - started)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--train-size", type=int, default=10_000)
    args = parser.parse_args()
    config = RunConfig(layers=(LayerSpec(units=128),), epochs=1, train_size=args.train_size)
    home = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    temp = tempfile.mkdtemp(prefix="pgray", dir="/tmp")
    head, address = start_head(temp)
    try:
        local = JobQueue(store=RunStore(home / "local"), workers=1, executor=LocalExecutor())
        try:
            here = time_runs(local, config, args.repeats)
        finally:
            local.shutdown()
        started = time.perf_counter()
        executor = RayExecutor(address)
        probe = time.perf_counter() - started
        on_ray = JobQueue(store=RunStore(home / "ray"), workers=1, executor=executor)
        try:
            there = time_runs(on_ray, config, args.repeats)
        finally:
            on_ray.shutdown()
    finally:
        stop_head(head)
        shutil.rmtree(temp, ignore_errors=True)
        shutil.rmtree(home, ignore_errors=True)
    cpu = platform.processor() or platform.machine()
    print(f"{config.describe()}, {args.train_size:,} images, 1 epoch; {os.cpu_count()} CPUs {cpu}")
    print(f"local trainer : median {statistics.median(here):.2f} s  {fmt(here)}")
    print(f"Ray (local)   : median {statistics.median(there):.2f} s  {fmt(there)}")
    overhead = statistics.median(there) - statistics.median(here)
    print(
        f"overhead of the Ray path: {overhead:+.2f} s per job "
        f"(cluster probe at start: {probe:.1f} s)"
    )


def fmt(values: list[float]) -> str:
    return "[" + ", ".join(f"{v:.2f}" for v in values) + "]"


if __name__ == "__main__":
    main()
