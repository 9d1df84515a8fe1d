"""The background job queue: real training in worker threads, shared by several callers."""

from __future__ import annotations

import time

import pytest

from core.run.queue import JobQueue, QueueFull
from core.spec.config import LayerSpec, RunConfig

SMALL = RunConfig(layers=(LayerSpec(units=32),), train_size=3000, epochs=2, batch_size=64)
# Cannot end on its own while a test acts on it: 500 epochs of all 60,000 images one at a time are
# 30 million steps, hours here; each test cancels it soon after it starts
LONG = SMALL.replace(train_size=0, epochs=500, batch_size=1)


@pytest.fixture
def queues():
    made = []
    yield made
    for queue in made:
        queue.shutdown()


@pytest.fixture
def make_queue(queues, store):
    def make(**kw):
        queue = JobQueue(store=store, **kw)
        queues.append(queue)
        return queue

    return make


@pytest.mark.slow
def test_two_jobs_run_in_turn_and_the_second_sees_its_place(make_queue, store, full_data):
    queue = make_queue(workers=1)
    first = queue.submit(SMALL.replace(epochs=3, train_size=6000))
    second = queue.submit(SMALL.replace(seed=7))
    waiting = queue.status(second)
    assert waiting.state == "queued" and waiting.position >= 1

    positions = set()
    while queue.status(first).active:
        status = queue.status(second)
        if status.state == "queued":
            positions.add(status.position)
        assert status.state in ("queued", "running", "finished")
        time.sleep(0.05)
    assert 1 in positions
    done = queue.wait(second, timeout=120)
    assert done.state == "finished" and queue.status(first).state == "finished"
    assert done.result.test_accuracy > 0.6
    # the run id and backend come from the trainer (the id includes the data's identity)
    assert (
        done.run_id == done.result.run_id == SMALL.replace(seed=7).run_id_for(full_data.fingerprint)
    )
    assert done.backend and done.device
    assert len(store.list_runs()) == 2
    # a live status carried per-epoch history and throughput while it ran
    assert len(queue.status(first).history["loss"]) == 3
    assert queue.status(first).images_per_second > 0


@pytest.mark.slow
def test_identical_config_shares_one_job_and_repeats_are_cached(make_queue, store, full_data):
    queue = make_queue()
    a = queue.submit(SMALL, session="A")
    assert queue.submit(SMALL, session="B") == a
    assert queue.status(a).sessions == 2 and queue.status(a).run_id == ""  # not known yet
    assert queue.wait(a, timeout=120).state == "finished"
    again = queue.submit(SMALL)
    status = queue.wait(again, timeout=30)
    assert again != a and status.result.cached


@pytest.mark.slow
def test_cancel_running_and_queued_jobs(make_queue, store, full_data):
    queue = make_queue()
    running = queue.submit(LONG)
    waiting = queue.submit(SMALL.replace(seed=3))
    deadline = time.monotonic() + 60
    while queue.status(running).batch == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    queue.cancel(waiting)
    assert queue.status(waiting).state == "cancelled"
    queue.cancel(running)
    status = queue.wait(running, timeout=10)
    assert status.state == "cancelled"
    assert store.list_runs() == []


def test_queue_is_bounded_and_bad_configs_fail_cleanly(make_queue, store, full_data):
    queue = make_queue(capacity=1)
    running = queue.submit(LONG)  # still running when the queue is full, whatever the machine
    while queue.status(running).state == "queued":
        time.sleep(0.05)
    waiting = queue.submit(SMALL.replace(seed=11))
    try:
        queue.submit(SMALL.replace(seed=12))
        raise AssertionError("a full queue must refuse")
    except QueueFull as exc:
        assert "already waiting" in str(exc)
    queue.cancel(running)
    queue.cancel(waiting)
    bad = queue.submit(SMALL.replace(train_size=1000, batch_size=4096))
    status = queue.wait(bad, timeout=60)
    assert status.state == "failed" and "larger than the training set" in status.message
