"""Sweeps: real Optuna studies whose trials are real (tiny) runs through the queue and the store."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.run.queue import JobQueue
from core.spec.config import LayerSpec, RunConfig
from core.sweeps.runner import SweepRunner
from core.sweeps.space import EXPERIMENTS, SweepError, SweepSpec, parse_param
from core.sweeps.study import delete, list_sweeps, summary

ROOT = Path(__file__).resolve().parent.parent
# ≤ 2,000 images, 1 epoch: a trial trains in about a second once its trainer is up
TINY = RunConfig(
    layers=(LayerSpec(units=32),), train_size=2000, epochs=1, batch_size=64, validation_split=0.1
)
LR = SweepSpec(base=TINY, space=(parse_param("learning_rate=1e-4:1e-2:log"),), trials=4)
# Cannot end on its own while a test acts on it: 500 epochs of all 54,000 training images in
# batches of 8 are 3.4 million steps, a quarter of an hour here, while the tests stop it within
# seconds and give up waiting after 120 s
LONG = TINY.replace(train_size=0, epochs=500, batch_size=8)


@pytest.fixture
def queue(store):
    made = JobQueue(store=store, workers=1)
    yield made
    made.shutdown()


def sweep(store, queue, data, name, spec=None, **kw) -> SweepRunner:
    return SweepRunner(store.home, name, queue, store, data, spec, **kw)


def wait_for(condition, what: str, seconds: float = 120):
    """Poll until condition() is truthy (a guard against hanging, not a timing assertion)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"never happened: {what}")


@pytest.mark.slow
def test_learning_rate_sweep_stores_an_openable_best_run_and_repeats_from_the_store(
    store, queue, full_data
):
    ended = []
    result = sweep(store, queue, full_data, "lr", LR, on_trial=ended.append).run()

    assert [t.number for t in ended] == [0, 1, 2, 3]
    assert [t.state for t in result.trials] == ["finished"] * 4
    rates = [t.params["learning_rate"] for t in result.trials]
    assert len(set(rates)) == 4 and all(1e-4 <= r <= 1e-2 for r in rates)
    assert not any(t.cached for t in result.trials)
    best = result.best
    assert best.value == max(t.value for t in result.trials)
    # the best trial is an ordinary stored run, scored on validation (never on the test set)
    stored = store.get(best.run_id)
    assert stored.ok and stored.config == result.best_config()
    assert stored.config.learning_rate == best.params["learning_rate"]
    assert stored.history["val_accuracy"][-1] == best.value
    assert stored.history["val_accuracy"][-1] != stored.test_accuracy
    model = store.load_model(best.run_id)  # openable: its model loads and predicts
    assert model.predict(full_data.x_test[:3] / 255.0, verbose=0).shape == (3, 10)
    assert sorted(r["run_id"] for r in store.list_runs()) == sorted(t.run_id for t in ended)

    before = {r["run_id"]: r["created_at"] for r in store.list_runs()}
    jobs_before = queue.submit(TINY.replace(seed=99))  # a job id marks the queue's counter
    queue.wait(jobs_before, timeout=300)
    again = sweep(store, queue, full_data, "lr-again", LR).run()
    assert [t.run_id for t in again.trials] == [t.run_id for t in result.trials]
    assert all(t.cached and t.state == "finished" for t in again.trials)
    assert again.best.run_id == best.run_id and again.best.value == best.value
    # nothing was trained again: no job went through the queue, no run was written
    assert queue.status(jobs_before + 1) is None
    after = {r["run_id"]: r["created_at"] for r in store.list_runs()}
    assert {k: after[k] for k in before} == before

    assert [s.name for s in list_sweeps(store.home)] == ["lr", "lr-again"]
    delete(store.home, "lr-again")
    assert [s.name for s in list_sweeps(store.home)] == ["lr"]
    assert store.get(best.run_id) is not None  # deleting a sweep keeps its runs


@pytest.mark.slow
def test_a_pruned_trial_is_cancelled_and_not_stored(store, queue, full_data):
    # 500 epochs (the most a run may have) that will never reach 99% validation accuracy: pruned
    # after its first epoch, long before it could finish
    spec = SweepSpec(
        base=TINY.replace(epochs=500),
        space=(parse_param("learning_rate=0.001,0.002"),),
        trials=2,
        sampler="grid",
        pruner="threshold:0.99",
    )
    runner = sweep(store, queue, full_data, "pruned", spec)
    result = runner.run()
    assert [t.state for t in result.trials] == ["pruned", "pruned"]
    assert all("Pruned after epoch 1" in t.message for t in result.trials)
    assert result.best is None
    assert store.list_runs() == []
    for trial in result.trials:
        assert store.get(trial.run_id) is None
    assert queue.status(1).state == "cancelled" and queue.status(1).epoch < 40  # of its 500


@pytest.mark.slow
def test_a_diverging_trial_does_not_stop_the_sweep(store, queue, full_data):
    spec = SweepSpec(
        base=TINY.replace(optimizer="sgd"),
        space=(parse_param("learning_rate=10000,0.01,0.05"),),
        trials=3,
        sampler="grid",
    )
    result = sweep(store, queue, full_data, "diverge", spec).run()
    by_rate = {t.params["learning_rate"]: t for t in result.trials}
    assert sorted(by_rate) == [0.01, 0.05, 10000]
    assert by_rate[10000].state == "diverged"
    assert "Lower the learning rate" in by_rate[10000].message
    assert store.get(by_rate[10000].run_id) is None
    assert by_rate[0.01].state == by_rate[0.05].state == "finished"
    assert result.best.params["learning_rate"] in (0.01, 0.05)


@pytest.mark.slow
def test_stop_cancels_queued_and_running_trials_and_resume_trains_them(store, queue, full_data):
    spec = SweepSpec(
        base=LONG,
        space=(parse_param("learning_rate=1e-4:1e-2:log"),),
        trials=2,
        pruner="none",
    )
    # somebody else's run occupies the only worker: the sweep's first trial waits behind it
    other = queue.submit(LONG.replace(seed=3))
    wait_for(lambda: queue.status(other).state == "running", "the other run starts")
    runner = sweep(store, queue, full_data, "stop", spec).start()
    queued = wait_for(
        lambda: [job for state, job in runner.live().values() if state == "queued"],
        "a queued trial",
    )[0]
    assert len(runner.live()) == 1  # one trial in the queue per worker: others are not starved
    runner.stop()
    assert queue.status(queued).state == "cancelled"  # removed from the queue at once
    runner.join()
    assert queue.status(other).state == "running"  # Stop leaves other people's runs alone
    queue.cancel(other)
    queue.wait(other)

    resumed = sweep(store, queue, full_data, "stop").start()
    running = wait_for(
        lambda: [
            job
            for state, job in resumed.live().values()
            if state == "running" and queue.status(job).epoch >= 1
        ],
        "a running trial",
    )[0]
    resumed.stop()
    resumed.join()
    status = queue.wait(running, timeout=60)
    assert status.state == "cancelled" and status.epoch < 60  # of its 500
    after = summary(store.home, "stop")
    # the same trial both times, left unfinished (to be trained on resume), nothing stored
    assert [(t.number, t.state) for t in after.trials] == [(0, "stopped")]
    assert store.list_runs() == []


def cli(home, *args, **kw):
    env = {**os.environ, "PLAYGROUND_HOME": str(home), "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.Popen(
        [sys.executable, "-m", "core", "sweep", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        **kw,
    )


@pytest.mark.slow
def test_resume_after_kill_9_loses_and_duplicates_no_trial(tmp_path, full_data):
    args = [
        "--train-size", "2000", "--epochs", "2", "--validation-split", "0.1",
        "--param", "learning_rate=1e-4:1e-2:log", "--sampler", "random",
        "--trials", "4", "--name", "killed", "--pruner", "none", "--json",
    ]  # fmt: skip
    first = cli(tmp_path, *args)
    lines = [json.loads(first.stdout.readline())]  # trial 0 ended
    wait_for(
        lambda: "running" in [t.state for t in summary(tmp_path, "killed").trials],
        "the next trial in the queue",
    )
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert first.returncode == -signal.SIGKILL
    interrupted = summary(tmp_path, "killed")
    assert [t.state for t in interrupted.trials][:1] == ["finished"]
    assert "stopped" in [t.state for t in interrupted.trials]  # the one it was training

    second = cli(tmp_path, *args)
    out, _ = second.communicate(timeout=600)
    assert second.returncode == 0
    *trial_lines, last = [json.loads(line) for line in out.splitlines()]
    numbers = [t["number"] for t in lines + trial_lines]
    assert sorted(numbers) == [0, 1, 2, 3]  # every trial ended exactly once
    final = summary(tmp_path, "killed")
    assert [t.state for t in final.trials] == ["finished"] * 4
    assert len({t.run_id for t in final.trials}) == 4
    assert last["trials"] == 4 and last["best_run_id"] == final.best.run_id
    assert last["best_settings"] == final.best.params
    from core.store import RunStore

    store = RunStore(tmp_path)
    assert sorted(r["run_id"] for r in store.list_runs()) == sorted(t.run_id for t in final.trials)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("depth=1:3", "'depth' is not a setting a sweep can vary"),
        ("learning_rate=0.1:0.001", "runs backwards"),
        ("learning_rate=0:0.1:log", "must start above 0"),
        ("weight_decay=-0.1:0.1:log", "must start above 0"),
        ("units=", "The list for units is empty"),
        ("optimizer=adam,nesterov", "'nesterov' is not one of"),
        ("batch_size=1.5:8", "is not a whole number"),
        ("learning_rate", "is not a search range"),
    ],
)
def test_bad_spaces_get_one_sentence(tmp_path, text, words):
    with pytest.raises(SweepError, match=words) as caught:
        parse_param(text)
    message = str(caught.value)
    assert "\n" not in message and message.endswith(".")
    done = subprocess.run(
        [sys.executable, "-m", "core", "sweep", "--param", text],
        cwd=ROOT,
        env={**os.environ, "PLAYGROUND_HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.strip().splitlines() == [f"error: {message}"]


def test_whole_spaces_are_checked_too(store):
    with pytest.raises(SweepError, match="at least one setting"):
        SweepSpec(base=TINY, space=()).checked()
    twice = (parse_param("units=8,16"), parse_param("units=32:64"))
    with pytest.raises(SweepError, match="more than once"):
        SweepSpec(base=TINY, space=twice).checked()
    with pytest.raises(SweepError, match="A grid needs a list"):
        SweepSpec(base=TINY, space=LR.space, sampler="grid").checked()
    # a base without a validation split gets one: the objective is measured there
    assert SweepSpec(base=RunConfig(), space=LR.space).checked().base.validation_split == 0.1
    sweep_of_lr = SweepSpec(base=TINY, space=LR.space).checked()
    other = SweepSpec(base=TINY, space=(parse_param("units=8,16"),)).checked()
    from core.sweeps.study import open_study

    open_study(store.home, "named", sweep_of_lr)
    with pytest.raises(SweepError, match="already searches another space"):
        open_study(store.home, "named", other)


def test_experiments_and_architecture_knobs_make_valid_runs():
    from core.spec.validate import validate

    base = RunConfig(layers=(LayerSpec(kind="conv", filters=8), LayerSpec(units=64)))
    for experiment in EXPERIMENTS.values():
        spec = experiment.spec(base)
        assert spec.base.validation_split > 0
        for value in spec.space[0].grid_values() if spec.sampler == "grid" else []:
            validate(spec.config_for({spec.space[0].name: value}))
    deep = SweepSpec(base=base, space=(parse_param("hidden_layers=0,3"),)).config_for(
        {"hidden_layers": 3, "units": 16, "conv_blocks": 2, "filters": 4}
    )
    assert [layer.kind for layer in deep.layers] == ["conv", "conv", "dense", "dense", "dense"]
    assert {layer.units for layer in deep.layers if layer.kind == "dense"} == {16}
    assert {layer.filters for layer in deep.layers if layer.kind == "conv"} == {4}
    flat = SweepSpec(base=base, space=()).config_for({"hidden_layers": 0, "conv_blocks": 0})
    assert flat.layers == ()


def test_the_sweep_engine_imports_no_ui_and_no_framework():
    code = (
        "import sys, core.sweeps.space, core.sweeps.study, core.sweeps.runner; "
        "assert not [m for m in sys.modules if m.split('.')[0] in "
        "('streamlit', 'keras', 'tensorflow', 'jax', 'optuna')], 'heavy import'"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
