"""Composition: the pieces that need several rooms at once, put together in one place.

The executor the environment asks for (this machine, or a Ray cluster), the one job queue of a
process, and operations that cross owners: the runs trained on a dataset, and deleting a dataset
together with its runs. Everything below this module knows only its own room.
"""

from __future__ import annotations

import threading
from pathlib import Path

from core.data import catalog
from core.home import ray_address
from core.run.local import LocalExecutor
from core.run.queue import JobQueue
from core.store import RunStore, StoreError


def executor_from_env():
    """RayExecutor when PLAYGROUND_RAY_ADDRESS is set (ClusterUnreachable if it cannot be used:
    never a silent fall-back to this machine), else LocalExecutor."""
    address = ray_address()
    if not address:
        return LocalExecutor()
    from core.run.ray_executor import RayExecutor  # Ray is optional

    return RayExecutor(address)


_shared: JobQueue | None = None
_shared_lock = threading.Lock()


def shared_queue(store=None, workers: int | None = None) -> JobQueue:
    """The one queue of this process, on the executor the environment names (created on first
    use; ClusterUnreachable when PLAYGROUND_RAY_ADDRESS names a cluster that cannot be used, and
    then tried again next time)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = JobQueue(store=store, workers=workers, executor=executor_from_env())
        return _shared


def run_ids_on(dataset_id: str, home: str | Path | None = None) -> list[str]:
    """The stored runs trained on the dataset with this fingerprint."""
    return [row["run_id"] for row in RunStore(home).list_runs() if row["data_id"] == dataset_id]


def runs_using(name: str, home: str | Path | None = None) -> int:
    """How many stored runs were trained on this imported dataset (by its fingerprint)."""
    return len(run_ids_on(catalog.dataset_named(name, home).dataset_id, home))


def delete_dataset(name: str, *, remove_runs: bool = False, home: str | Path | None = None) -> int:
    """Delete an imported dataset; returns how many stored runs were trained on it.

    Its runs are deleted too only when remove_runs is True; otherwise they stay in the store.
    ImportRefused with one sentence when it cannot be done (nothing is deleted then).
    """
    with catalog.removing(name, home) as info:
        run_ids = run_ids_on(info.dataset_id, home)
        if remove_runs:
            store = RunStore(home)
            for run_id in run_ids:
                try:
                    store.delete(run_id)
                except StoreError as exc:
                    raise catalog.ImportRefused(str(exc)) from None
    return len(run_ids)
