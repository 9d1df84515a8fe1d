"""`train`: one run, in this process or through a queue on a Ray cluster; `runs`: what is stored."""

from __future__ import annotations

import json
import sys

from core.cli.console import ConsoleProgress, config_from_args, quietly
from core.data.registry import describe_source, load_dataset
from core.home import ray_address
from core.runtime import label, resolve, this_device, use_backend
from core.spec.config import RunConfig
from core.spec.results import RunResult
from core.spec.validate import validate
from core.store import RunStore


def cmd_train(args, store: RunStore) -> int:
    config = config_from_args(args)
    data = load_dataset(config.dataset, home=store.home)  # imported datasets live beside runs
    validate(
        config,
        train_available=len(data.x_train),
        input_shape=data.input_shape,
        num_classes=data.num_classes,
    )
    cached = store.get(config.run_id_for(data.fingerprint)) if not args.force else None
    executor = executor_from_args(args)
    if cached is not None:
        result = cached
    elif executor is not None:
        if not args.json:
            print(describe_source(data), file=sys.stderr)
            print(f"training on {executor.label}", file=sys.stderr)
        result = _train_through_queue(config, args, store, executor)
    else:
        backend = _start_backend(config)
        from core.learn.training import train

        device = quietly(this_device)
        if not args.json:
            print(describe_source(data), file=sys.stderr)
            print(f"training on {label(device, backend)}", file=sys.stderr)
        listener = None if args.json else ConsoleProgress()
        result = quietly(train, config, data, listener=listener, store=store, force=args.force)
    if args.json:
        print(json.dumps(result.summary()))
    else:
        if result.ok:
            origin = "answered from the store (cached)" if result.cached else "trained"
            print(
                f"run {result.run_id} {origin}: test accuracy {result.test_accuracy:.4f}, "
                f"test loss {result.test_loss:.4f}, {result.epochs_trained} epoch(s) in "
                f"{result.train_seconds:.1f} s ({result.images_per_second:,.0f} images/s) on "
                f"{label(result.device, result.backend)}; data: {result.data_source}; "
                f"store: {store.home}"
            )
        else:
            print(f"run {result.run_id} {result.status}: {result.message}")
    return 0 if result.ok else 1


def executor_from_args(args):
    """RayExecutor for --ray ADDRESS or PLAYGROUND_RAY_ADDRESS, else None (train in-process)."""
    address = getattr(args, "ray", None) or ray_address()
    if not address:
        return None
    from core.run.ray_executor import RayExecutor  # Ray is optional

    return RayExecutor(address)


def _train_through_queue(config: RunConfig, args, store: RunStore, executor) -> RunResult:
    """Train one config through a job queue on `executor`, showing its epochs as they end."""
    from core.run.queue import JobQueue

    queue = JobQueue(store=store, workers=1, executor=executor)
    try:
        job = queue.submit(config, force=args.force)
        shown = 0
        while True:
            status = queue.wait(job, timeout=0.5)
            losses = status.history.get("loss", [])
            if not args.json and len(losses) > shown:
                shown = len(losses)
                metrics = "  ".join(f"{k} {v[-1]:.4f}" for k, v in status.history.items())
                print(f"epoch {shown}/{status.epochs}  {metrics}", file=sys.stderr)
            if not status.active:
                break
    except KeyboardInterrupt:
        queue.cancel(job)
        queue.wait(job, timeout=10)
        raise
    finally:
        queue.shutdown()
    if status.result is not None:
        return status.result
    return RunResult(
        run_id=status.run_id,
        config=config,
        status=status.state,
        message=status.message,
        executor=executor.name,
    )


def _start_backend(config: RunConfig) -> str:
    """Fix this process's Keras backend to the one the config trains on (before Keras loads)."""
    backend = resolve(config)
    use_backend(backend, log_level="3")  # the CLI keeps every C++ warning off the screen
    return backend


def cmd_runs(args, store: RunStore) -> int:
    rows = store.list_runs()
    if args.json:
        keys = (
            "run_id",
            "created_at",
            "dataset",
            "architecture",
            "params",
            "epochs",
            "test_accuracy",
            "test_loss",
            "train_seconds",
            "device",
            "backend",
            "data_source",
        )
        print(json.dumps([{k: row[k] for k in keys} for row in rows]))
        return 0
    print(f"{len(rows)} stored run(s) in {store.home}")
    for row in rows:
        print(
            f"{row['run_id']}  acc {row['test_accuracy']:.4f}  {row['epochs']:>2} ep  "
            f"{row['train_seconds']:7.1f} s  {row['params']:>10,} params  {row['architecture']}"
            f"  [{label(row['device'], row.get('backend', ''))}]"
        )
    return 0
