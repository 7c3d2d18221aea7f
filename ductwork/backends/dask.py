"""The dask backend: steps as tasks on a Dask cluster, scheduled by Dask.

``run(backend="dask", address="tcp://host:8786")`` connects to a running
scheduler (or ``[tool.ductwork.compute.<name>]`` with ``backend = "dask"`` and
an ``address``); with no address ductwork starts a ``LocalCluster`` on this
machine and keeps it for the next run of this process, like the process
backend keeps its workers. A compute target may instead name a cluster class
to make (``cluster = "module:Class"``, fixed or adaptive between
``min_workers`` and ``max_workers``): see ``dask_clusters``.

The whole graph is handed to Dask (``runtime/delegated.py``): each step is a
task depending on its upstream tasks, so Dask's scheduler orders them, places
them and reruns a task whose worker died. Data never travels through the
scheduler: a task's result is a small record of digests, and workers read
inputs from and write outputs to the artifact store. So the store must be one
every worker reaches: a ``memory://`` store only works with the in-process
cluster ductwork starts for it, and a local path with a remote scheduler is
refused unless ``shared_filesystem=True`` says the path is mounted on every
worker. Workers need ``ductwork`` installed; step code travels by value.

Dask stops a task only by restarting its worker, so a step over its
``timeout`` is failed at once and its worker is restarted (workers run under
a nanny, as ``dask worker`` and ``LocalCluster`` start them).
"""

from __future__ import annotations

import atexit
import logging
import multiprocessing
import threading
import uuid
from collections import deque
from concurrent.futures import Future

from ductwork.runtime.engine.backend import BackendError, TaskLost
from ductwork.runtime.engine.driver import store_config
from ductwork.runtime.engine.job import Job, JobResult

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_LOCK = threading.Lock()
#: Jobs in flight per worker an adaptive cluster may grow to (in a run's loop).
_BACKLOG = 4
#: Clusters this process started, and clients it opened, kept between runs.
_CLIENTS: dict[tuple[Any, ...], tuple[Any, Any]] = {}


def shutdown_clients() -> None:
    """Close the clients (and local clusters) kept for later runs of this process."""
    with _LOCK:
        kept = list(_CLIENTS.values())
        _CLIENTS.clear()
    for client, cluster in kept:
        _close_quietly(client, cluster)


def _close_quietly(client: Any, cluster: Any) -> None:
    try:
        client.close(timeout=5)
        if cluster is not None:
            cluster.close(timeout=5)
    except Exception:  # a cluster that is already gone is fine
        pass


atexit.register(shutdown_clients)


def _on_worker(fn: Any, *args: Any) -> Any:
    """Run ``fn`` in a task and say which worker ran it, for a stuck worker's restart."""
    result = fn(*args)
    if getattr(result, "timed_out", False):
        from distributed import get_worker

        result = result.replace(where=get_worker().address)
    return result


def _same(obj: Any) -> Any:
    return obj


def _run_job(payload: bytes, config: dict[str, Any],
             run_id: str) -> tuple[JobResult, str | None]:
    """Run one job on a worker (a step a mixed run sends here by ``compute=``), and where a
    thread it left behind over its timeout runs, if one did."""
    from ductwork.runtime.engine.shipping import unpickle
    from ductwork.runtime.engine.tasks import open_store, run_with_timeout

    job = unpickle(payload)
    result, timed_out = run_with_timeout(job, open_store(config), {}, job.step.options.timeout)
    where = None
    if timed_out:
        from distributed import get_worker

        where = get_worker().address
    # Values stay on the worker: data is in the store.
    return result.replace(values=None), where


def check_store(store: Any, address: str | None, shared_filesystem: bool,
                in_process: bool = False) -> None:
    """Refuse, before anything runs, a store the cluster's workers cannot reach (``address``
    names the cluster; None: the local one ductwork starts)."""
    if address is None or (in_process and store.in_memory):
        return
    if store.in_memory:
        raise BackendError(
            f"The store {store.url} lives in this process's memory, so the workers of the Dask "
            f"scheduler at {address} cannot read or write it. Use a store every worker "
            "reaches (az://container/prefix, or a path mounted on every worker with "
            "shared_filesystem=True), or run without address= on a local cluster."
        )
    if store.is_local and not shared_filesystem:
        raise BackendError(
            f"The store {store.url} is a local path, and the Dask scheduler at {address} may "
            "have workers on other machines, where that path is not this one. Use a store "
            "every worker reaches (az://container/prefix), or, if the path is mounted at the "
            "same place on every worker, say so with run(..., shared_filesystem=True) (or "
            "shared_filesystem = true in the compute target)."
        )


class DaskBackend:
    """Hand a run's graph to a Dask scheduler; a ``LocalCluster`` when no address is given."""

    name = "dask"
    reads_store = True
    #: The graph goes to Dask's scheduler, not through ductwork's scheduling loop.
    schedules_graph = True

    def __init__(self, store: Any, address: str | None = None, shared_filesystem: bool = False,
                 max_workers: int | None = None, connect_timeout: float = 10.0,
                 cluster: str | None = None, cluster_options: dict[str, Any] | None = None,
                 min_workers: int | None = None) -> None:
        from ductwork.backends import dask_clusters

        self.store = store
        self.address = address
        #: The cluster is this process's own (ductwork made it): its workers may be restarted.
        self.owned = address is None
        # This run's futures still pending, by key: holding a future keeps its result
        # on the cluster, so each is let go once its result is read.
        self._futures: dict[str, Any] = {}
        if cluster is not None:
            if address is not None:
                raise BackendError(f"address = {address!r} and cluster = {cluster!r} both "
                                   "given: connect to a running scheduler or make a cluster, "
                                   "not both.")
            spec = dask_clusters.cluster_spec(cluster, cluster_options, min_workers, max_workers)
            check_store(store, None if spec.local and not store.in_memory else
                        f"the {cluster} cluster", shared_filesystem, spec.in_process)
            self.client = dask_clusters.client_for(spec)
        elif min_workers is not None or cluster_options is not None:
            raise BackendError(
                "min_workers and cluster_options are settings of a cluster ductwork makes: add "
                "cluster = \"dask.distributed:LocalCluster\" (or another cluster class).")
        else:
            check_store(store, address, shared_filesystem)
            self.client = (_connect(address, connect_timeout) if address is not None else
                           _local_cluster(max_workers, in_process=store.in_memory))
        self.capacity = max(1, sum(self.client.nthreads().values()))
        if min_workers is not None:
            # Adaptive: Dask grows the cluster only for work it sees waiting, so a mixed
            # run's loop hands it a backlog beyond the workers it has now.
            self.capacity = max(self.capacity, _BACKLOG * (max_workers or 1))

    def call(self, fn: Any, *args: Any, key: str) -> Any:
        """Submit ``fn(*args)`` as a task; futures inside ``args`` are its dependencies."""
        future = self.client.submit(_on_worker, fn, *args, key=key, pure=False)
        self._futures[future.key] = future
        return future

    def share(self, obj: Any) -> Any:
        """Send ``obj`` to the cluster once, for many tasks to depend on."""
        if not self.client.nthreads():  # an adaptive cluster at zero: scatter would wait
            return self.client.submit(_same, obj, pure=False)  # a task makes it grow
        # On every worker: a task depending on data held by one worker is placed there.
        return self.client.scatter(obj, hash=False, broadcast=True)

    def call_many(self, fn: Any, calls: list[tuple[Any, ...]], keys: list[str]) -> list[Any]:
        """Submit ``fn(*args)`` for each of ``calls`` in one message to the scheduler."""
        if not calls:
            return []
        columns = [list(column) for column in zip(*calls, strict=True)]
        futures = self.client.map(_on_worker, [fn] * len(calls), *columns, key=keys,
                                  pure=False)
        self._futures.update((f.key, f) for f in futures)
        return futures

    def completions(self) -> _Completions:
        """An iterator of ``(future, result)`` as tasks finish; ``add`` takes more."""
        return _Completions(self.client, self._futures)

    def environment(self, step: Any) -> None:
        """Workers bring their own interpreter; the key names the declared environment."""

    def restart(self, where: str) -> None:
        """Stop a step that overran its timeout by restarting its worker, in the background.

        Only on the local cluster, this process's own: a cluster at an address is
        shared, and restarting a worker there would kill other people's tasks; the
        stuck thread then runs on (its result is never indexed, see ``tasks``).
        """
        if not self.owned:
            logging.getLogger(__name__).warning(
                "a step overran its timeout on %s; its thread runs on (workers of a shared "
                "cluster are not restarted)", where)
            return

        def restart() -> None:
            try:
                self.client.restart_workers([where], timeout=60, raise_for_error=False)
            except Exception as exc:  # the worker may be gone already
                logging.getLogger(__name__).warning("could not restart worker %s: %s",
                                                    where, exc)

        threading.Thread(target=restart, daemon=True, name="ductwork-dask-restart").start()

    def submit(self, job: Job) -> Future[JobResult]:
        """Run one job on the cluster (for a step sent here by ``compute=`` in a mixed run)."""
        from ductwork.runtime.engine.shipping import pickle_step

        done: Future[JobResult] = Future()
        task = self.client.submit(_run_job, pickle_step(job), store_config(self.store),
                                  job.run_id, pure=False,
                                  key=f"ductwork-{job.step_id}-{uuid.uuid4().hex}")
        self._futures[task.key] = task

        def finished(task: Any) -> None:
            self._futures.pop(task.key, None)
            try:
                result, where = task.result()
            except BaseException as exc:
                done.set_result(JobResult(job.step_id, 0.0, 0.0, error=_lost(job.step_id, exc)))
                return
            if where is not None:
                self.restart(where)
            done.set_result(result)

        task.add_done_callback(finished)
        return done

    def cancel(self) -> None:
        """Cancel every task of this run; on a cluster ductwork started, stop running ones.

        Dask cannot stop a task's thread. On the local cluster, which is this
        process's alone, the workers running this run's tasks are restarted; on a
        cluster at an address, shared with others, running tasks finish unseen.
        """
        futures = list(self._futures.values())
        self._futures.clear()
        if not futures:
            return
        try:
            ours = {f.key for f in futures}
            busy = [worker for worker, keys in self.client.processing().items()
                    if ours.intersection(keys)]
            self.client.cancel(futures, force=True)
            if self.owned and busy:
                self.client.restart_workers(busy, timeout=60, raise_for_error=False)
        except Exception:  # the cluster may be gone; nothing is left to stop then
            pass

    def close(self) -> None:
        """Forget this run's futures; the client and any local cluster are kept for reuse
        (a client whose scheduler went away is closed now, not left retrying)."""
        self._futures.clear()
        if self.client.status != "running":
            with _LOCK:
                for key, (client, cluster) in list(_CLIENTS.items()):
                    if client is self.client:
                        del _CLIENTS[key]
                        _close_quietly(client, cluster)


def _lost(sid: str, exc: BaseException | None, scheduler: str | None = None) -> str:
    """What a task that did not return says: the scheduler went away, its workers died, or
    it was cancelled."""
    if scheduler is not None:
        return (f"Step '{sid}' did not finish: the connection to the Dask scheduler at "
                f"{scheduler} was lost. Check that the scheduler is running, then rerun: "
                "finished steps are cached.\n")
    if exc is None or type(exc).__name__ in ("CancelledError", "FutureCancelledError"):
        return f"Step '{sid}' was cancelled on the cluster before it finished.\n"
    return (f"Step '{sid}' could not be run on the cluster: {type(exc).__name__}: {exc}. "
            "If its workers keep dying (out of memory?), give them more memory or run the "
            "step elsewhere.\n")


class _Completions:
    """Finished futures with their results, fetched a batch at a time.

    ``as_completed(with_results=True)`` fetches each result in its own request;
    a map of hundreds of small tasks then costs hundreds of round trips. Each
    future is dropped from ``held`` once its result is read.
    """

    def __init__(self, client: Any, held: dict[str, Any]) -> None:
        from distributed import as_completed

        self.client, self._held = client, held
        self._pending = as_completed([], loop=client.loop)
        self._ready: deque[tuple[Any, Any]] = deque()

    def add(self, future: Any) -> None:
        """Watch one more future."""
        self._pending.add(future)

    def __iter__(self) -> _Completions:
        return self

    def __next__(self) -> tuple[Any, Any]:
        while not self._ready:
            if self._pending.is_empty():
                raise StopIteration
            batch = self._pending.next_batch(block=True)
            finished = [f for f in batch if f.status == "finished"]
            results = self.client.gather(finished, errors="skip") if finished else []
            self._ready.extend(zip(finished, results, strict=True))
            # A task that raised (its worker died too often) or was cancelled says so.
            gone = None if self.client.status == "running" else str(self.client.scheduler.address)
            self._ready.extend((f, _task_lost(f.exception() if f.status == "error" else None, gone))
                               for f in batch if f.status != "finished")
            for f in batch:
                self._held.pop(f.key, None)
        return self._ready.popleft()


def _task_lost(cause: BaseException | None, scheduler: str | None = None) -> TaskLost:
    """A task that returned no result, saying why in the step's error."""
    return TaskLost(lambda sid: _lost(sid, cause, scheduler))


def _connect(address: str, timeout: float) -> Any:
    key = ("address", address)
    with _LOCK:
        kept = _CLIENTS.pop(key, None)
    if kept is not None:
        if kept[0].status == "running":
            with _LOCK:
                _CLIENTS[key] = kept
            return kept[0]
        _close_quietly(*kept)  # its scheduler went away; a new client reconnects
    from distributed import Client

    try:
        client = Client(address, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise BackendError(
            f"Cannot reach the Dask scheduler at {address} (waited {timeout:g} s: {exc}). "
            "Check that it is running (`dask scheduler`) and that the address and port are "
            "right, or leave address= out to run on a local cluster."
        ) from None
    try:
        client.wait_for_workers(1, timeout=timeout)
    except (OSError, TimeoutError):
        client.close()
        raise BackendError(
            f"The Dask scheduler at {address} has no workers (waited {timeout:g} s). Start "
            f"some with `dask worker {address}`."
        ) from None
    with _LOCK:
        _CLIENTS[key] = (client, None)
    return client


def _local_cluster(max_workers: int | None, in_process: bool) -> Any:
    import os

    workers = max_workers or min(os.cpu_count() or 1, 4)
    # One local cluster per kind, resized when a run asks for another size.
    key = ("local", in_process)
    with _LOCK:
        kept = _CLIENTS.pop(key, None)
    if kept is not None:
        client, cluster = kept
        if client.status == "running":
            if len(cluster.workers) != workers:
                cluster.scale(workers)
                client.wait_for_workers(workers, timeout=60)
            with _LOCK:
                _CLIENTS[key] = kept
            return client
        _close_quietly(client, cluster)
    if multiprocessing.parent_process() is not None and not in_process:
        raise BackendError(_GUARD_HINT)
    from distributed import Client, LocalCluster

    try:
        # A memory:// store exists only in this process: its cluster's workers are threads.
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1,
                               processes=not in_process, dashboard_address=":0",
                               silence_logs=logging.ERROR)
    except RuntimeError as exc:
        raise BackendError(f"Dask could not start a local cluster ({exc}). {_GUARD_HINT}") \
            from None
    client = Client(cluster, set_as_default=False)
    with _LOCK:
        _CLIENTS[key] = (client, cluster)
    return client


_GUARD_HINT = (
    "A local Dask cluster starts its workers as new Python processes, which import your main "
    "script again: put the code that runs the pipeline under `if __name__ == \"__main__\":`."
)
