"""The Ray executor against a real Ray head started here (`ray start --head`, 2 CPUs, this machine).

Tiny runs (2,000 images, 1 epoch), and a LONG one where a test needs a run to act on, through the
same JobQueue the app uses; the results land in this machine's run store. tests/conftest.py marks
every test here slow (this module starts a Ray head), so ./test.sh --quick leaves them out.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ray_cluster import free_port, ray_head, wait_for

from core.run.local import LocalExecutor
from core.run.queue import JobQueue
from core.run.ray_executor import ClusterUnreachable, RayExecutor
from core.spec.config import LayerSpec, RunConfig
from core.sweeps.runner import SweepRunner
from core.sweeps.space import SweepSpec, parse_param
from core.workspace import executor_from_env

ROOT = Path(__file__).resolve().parent.parent
TINY = RunConfig(
    layers=(LayerSpec(units=32),), train_size=2000, epochs=1, batch_size=64, validation_split=0.1
)
# A run that cannot end on its own while a test acts on it: 500 epochs of all 54,000 training
# images one at a time are 27 million steps, about two hours at the 4,000 steps a second measured
# here. Tests stop, kill or cut it off within seconds of its first batch, so its length costs
# nothing, and no test outcome depends on how fast the machine is.
LONG = TINY.replace(train_size=0, epochs=500, batch_size=1)


@pytest.fixture(scope="module")
def ray_address():
    with ray_head() as (address, _):
        yield address


@pytest.fixture
def ray_queue(ray_address, store):
    made = []

    def make(workers=None):
        queue = JobQueue(store=store, workers=workers, executor=RayExecutor(ray_address))
        made.append(queue)
        return queue

    yield make
    for queue in made:
        queue.shutdown()


def test_a_run_through_ray_is_stored_like_the_same_run_trained_here(
    ray_queue, store, full_data, tmp_path
):
    queue = ray_queue(workers=1)
    assert queue.executor.cpus == 2 and queue.executor.gpus == 0
    assert "Ray cluster" in queue.executor.label and "2 CPUs" in queue.executor.label
    job = queue.submit(TINY)
    done = queue.wait(job, timeout=300)
    assert done.state == "finished", done.message
    assert done.executor == "ray" and done.result.executor == "ray"
    # progress events came back from the cluster while it trained
    assert done.params == done.result.params > 0 and done.device == "CPU"
    assert done.live and done.batches == 29  # batch events: 1,800 images / 64 per batch
    # stored on this machine under the same run id a local run gets
    run_id = TINY.run_id_for(full_data.fingerprint)
    assert done.run_id == run_id
    stored = store.get(run_id)
    assert stored.ok and stored.executor == "ray" and not done.result.cached
    row = next(r for r in store.list_runs() if r["run_id"] == run_id)
    assert row["executor"] == "ray"  # the index (Runs page's "trained on") knows it too
    model = store.load_model(run_id)
    assert model.predict(full_data.x_test[:3] / 255.0, verbose=0).shape == (3, 10)
    assert store.load_probabilities(run_id).shape == (10_000, 10)

    from core.store import RunStore

    local_store = RunStore(tmp_path / "local")
    local = JobQueue(store=local_store, workers=1, executor=LocalExecutor())
    try:
        here = local.wait(local.submit(TINY), timeout=300)
    finally:
        local.shutdown()
    assert here.state == "finished" and here.run_id == run_id
    assert here.result.executor == "local" and here.backend == done.backend
    # same seed, same backend: only thread scheduling differs between the two machines' runs
    assert abs(here.result.test_accuracy - stored.test_accuracy) < 0.03

    # asked again, the run comes from this machine's store: the cluster trains nothing
    again = queue.wait(queue.submit(TINY), timeout=60)
    assert again.result.cached and again.result.executor == "ray"


def test_stop_cancels_a_ray_job_quickly_and_stores_nothing(ray_queue, store):
    queue = ray_queue(workers=1)
    job = queue.submit(LONG)
    wait_for(lambda: queue.status(job).batch > 0, "the first batches")
    pressed = time.monotonic()
    assert queue.cancel(job).stopped
    done = queue.wait(job, timeout=30)
    stopped_after = time.monotonic() - pressed
    assert done.state == "cancelled" and "nothing was stored" in done.message
    assert done.epoch < LONG.epochs
    # the issue asks for 1 s; asserted loosely, as the machine may be busy with other tests
    assert stopped_after < 2.0, stopped_after
    assert store.list_runs() == []


def test_two_jobs_train_at_once_on_a_two_cpu_cluster(ray_queue, store):
    queue = ray_queue()
    assert queue.workers == 2  # one per CPU of the cluster
    # LONG runs: however late the second slot's worker starts, the first job is still training
    # then, and neither can finish before it is cancelled; no step below depends on timing
    first, second = queue.submit(LONG), queue.submit(LONG.replace(seed=2))
    wait_for(
        lambda: all(
            s.state == "running" and s.batch > 0
            for s in (queue.status(first), queue.status(second))
        ),
        "both jobs training at the same time",
        300,
    )
    for job in (first, second):  # seen together; no need to train them to the end
        assert queue.cancel(job).stopped  # both still active when Stop reached them
    ended = [queue.wait(job, timeout=60) for job in (first, second)]
    assert [s.state for s in ended] == ["cancelled"] * 2
    assert all("nothing was stored" in s.message and s.epoch < LONG.epochs for s in ended)
    assert store.list_runs() == []


def test_a_killed_ray_worker_fails_its_job_with_a_sentence_and_the_next_job_trains(
    ray_queue, store
):
    queue = ray_queue(workers=1)
    job = queue.submit(LONG)
    wait_for(lambda: queue.status(job).batch > 0, "the first batches")
    [pid] = [p for pids in queue.trainer_pids().values() for p in pids]
    os.kill(pid, signal.SIGKILL)  # the Ray worker process that trains (the cluster is local)
    done = queue.wait(job, timeout=120)
    assert done.state == "failed"
    assert "Ray worker" in done.message and "was lost" in done.message
    assert "not retried" in done.message and "nothing was stored" in done.message
    assert store.list_runs() == []
    after = queue.wait(queue.submit(TINY), timeout=300)
    assert after.state == "finished", after.message
    assert [r["run_id"] for r in store.list_runs()] == [after.run_id]


def test_an_unreachable_cluster_is_one_sentence_never_a_silent_local_run(
    monkeypatch, store, tmp_path
):
    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    with pytest.raises(ClusterUnreachable) as refused:
        RayExecutor(address)
    sentence = str(refused.value)
    assert sentence.startswith(f"The Ray cluster at {address} cannot be reached")
    assert "nothing was trained" in sentence and "\n" not in sentence
    monkeypatch.setenv("PLAYGROUND_RAY_ADDRESS", address)
    with pytest.raises(ClusterUnreachable):
        executor_from_env()  # what the app's queue trains on: no fall-back to this machine
    cli = subprocess.run(
        [sys.executable, "-m", "core", "--home", str(tmp_path / "h"), "train", "--preset", "seed"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert cli.returncode == 1
    assert cli.stderr.strip() == f"error: {sentence}"


def test_the_cli_trains_on_ray_and_says_so(ray_address, tmp_path):
    args = ["train", "--preset", "seed", "--epochs", "1", "--train-size", "2000"]
    cli = subprocess.run(
        [sys.executable, "-m", "core", "--home", str(tmp_path), *args, "--ray", ray_address],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert cli.returncode == 0, cli.stderr
    assert f"the Ray cluster at {ray_address}" in cli.stderr and "epoch 1/1" in cli.stderr
    answer = subprocess.run(
        [sys.executable, "-m", "core", "--home", str(tmp_path), *args, "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    summary = json.loads(answer.stdout.strip().splitlines()[-1])
    assert summary["executor"] == "ray" and summary["cached"] is True  # stored here, from Ray


def test_a_three_trial_sweep_runs_through_ray(ray_queue, store, full_data):
    queue = ray_queue()
    spec = SweepSpec(
        base=TINY,
        space=(parse_param("learning_rate=0.001,0.002,0.004"),),
        trials=3,
        sampler="grid",
    )
    result = SweepRunner(store.home, "on-ray", queue, store, full_data, spec).run()
    assert [t.state for t in result.trials] == ["finished"] * 3
    runs = {r["run_id"] for r in store.list_runs()}
    assert runs == {t.run_id for t in result.trials}
    assert all(store.get(run_id).executor == "ray" for run_id in runs)
    assert result.best.value == max(t.value for t in result.trials)


def test_a_cluster_that_goes_away_fails_its_jobs_with_sentences_and_the_queue_stays_up(store):
    with ray_head() as (address, head):
        queue = JobQueue(store=store, workers=1, executor=RayExecutor(address))
        try:
            running = queue.submit(LONG)
            queued = [queue.submit(TINY.replace(seed=s)) for s in (1, 2)]
            wait_for(lambda: queue.status(running).batch > 0, "the first batches")
            os.killpg(head.pid, signal.SIGKILL)  # the whole cluster crashes, jobs still queued
            ended = [queue.wait(job, timeout=300) for job in (running, *queued)]
            assert [s.state for s in ended] == ["failed"] * 3
            for status in ended:
                assert "Ray" in status.message and "nothing was" in status.message
                assert "\n" not in status.message
            assert store.list_runs() == []
            # the queue (and so the app) is still there and answers the next job with a sentence
            later = queue.wait(queue.submit(TINY.replace(seed=3)), timeout=300)
            assert later.state == "failed" and "cannot be reached" in later.message
        finally:
            queue.shutdown()
