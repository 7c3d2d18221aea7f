"""The process backend: a pool of worker processes on this machine.

Workers are fresh interpreters (``python -m ductwork.runtime.engine.worker``), not
forks and not ``multiprocessing`` spawns, so a user's script without a
``__main__`` guard is never re-run in them. Each is driven by one thread of
the parent (``process_pool``), which sends it a job -- and, while it runs, the
next one, so the engine keeps ``DEPTH`` jobs per worker in flight --, waits for
the answer at most the step's ``timeout``, and kills the process when it is
exceeded; a worker that dies (``os._exit``, a segfault, the OOM killer) fails
only the step it was running and is replaced on the next job.

Workers are kept for the next run in the same process (a notebook's next
cell pays no start-up), and stopped at exit or on Ctrl-C. There is one pool per
size (``max_workers``), whatever the store: each job carries its store's config,
and a worker opens stores through a small bounded cache. A pool is held by the
runs using it; of the pools no run holds, the two used last are kept and older
ones are shut down, so a process running many pipelines never piles up workers.

Step functions travel by cloudpickle; the user's own modules (not installed
packages) are pickled by value, so a worker runs exactly the code whose
fingerprint is in the cache key, even if a file changed on disk since. Data
travels through the artifact store: a job carries refs, the worker reads and
writes the store itself. A ``memory://`` store lives only in the parent, so
there values go through the pipe and the parent stores the outputs. A job's
other fields go by plain pickle when they are plain data (``pickle_job``).
"""

from __future__ import annotations

import atexit
import os
import threading
import uuid
from collections import OrderedDict
from concurrent.futures import Future

from ductwork.backends.process_pool import DEPTH, Driver, Item, Pool, death
from ductwork.runtime.engine.job import Job, JobResult
from ductwork.runtime.engine.shipping import pickle_job, pickle_step

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["DEPTH", "ProcessBackend", "death", "shutdown_pools"]
#: The driver of one worker process, by the name ``benchmarks/w2_bench.py`` times its jobs.
_Worker = Driver


#: Pools by size, least recently used first.
_POOLS: OrderedDict[int, Pool] = OrderedDict()
_POOLS_LOCK = threading.Lock()
#: Pools no run holds that are kept for the next run; older idle ones are shut down.
IDLE_POOLS_KEPT = 2
_at_exit_registered = False


def _acquire(capacity: int) -> Pool:
    """Hold the pool of ``capacity`` workers (made if there is none) for one run."""
    global _at_exit_registered
    with _POOLS_LOCK:
        if not _at_exit_registered:
            atexit.register(shutdown_pools)
            _at_exit_registered = True
        pool = _POOLS.get(capacity)
        if pool is None:
            pool = _POOLS[capacity] = Pool(capacity)
        _POOLS.move_to_end(capacity)
        pool.users += 1
        extra = _idle_beyond_kept()
    for idle in extra:
        idle.shutdown()
    return pool


def _release(pool: Pool) -> None:
    """Give back one run's hold on ``pool``; shut down idle pools beyond those kept."""
    with _POOLS_LOCK:
        pool.users -= 1
        if _POOLS.get(pool.capacity) is pool:
            _POOLS.move_to_end(pool.capacity)
        extra = _idle_beyond_kept()
    for idle in extra:
        idle.shutdown()


def _idle_beyond_kept() -> list[Pool]:
    """Take out of ``_POOLS`` the idle pools beyond the kept ones, oldest first (lock held)."""
    idle = [size for size, pool in _POOLS.items() if pool.users == 0]
    return [_POOLS.pop(size) for size in idle[:max(0, len(idle) - IDLE_POOLS_KEPT)]]


def shutdown_pools() -> None:
    """Stop every kept worker process (at interpreter exit, or to free them now)."""
    with _POOLS_LOCK:
        pools = list(_POOLS.values())
        _POOLS.clear()
    for pool in pools:
        pool.shutdown()


class ProcessBackend:
    """Run jobs in a pool of worker processes, at most ``max_workers`` at once.

    The engine may keep ``DEPTH`` jobs per worker in flight (``capacity``): a worker is
    sent its next job while it runs one. Workers outlive the run: the next run in this
    process (a notebook's next cell) of the same size finds them started, whatever its
    store. ``cancel`` (Ctrl-C) stops the workers running this run's steps; ``close`` gives
    the pool back.
    """

    name = "process"
    schedules_graph = False

    def __init__(self, store: Any, max_workers: int | None = None) -> None:
        self.store = store
        #: Worker processes; the engine keeps ``DEPTH`` jobs in flight per worker.
        self.workers = max_workers or os.cpu_count() or 1
        self.capacity = DEPTH * self.workers
        shared = not store.in_memory
        self.reads_store = shared
        #: Sent with each job: the worker opens the store itself (None: values travel instead).
        self.store_config = {"url": store.url if shared else None,
                             "options": getattr(store, "storage_options", {}) if shared else {}}
        self.cancelled = False
        self._steps: dict[int, tuple[Any, str, bytes]] = {}
        self._lock = threading.Lock()
        self._submitted = 0
        self._held = True
        self.pool = _acquire(self.workers)

    def step_payload(self, step: Any) -> tuple[str, bytes]:
        """Return a token and the pickled step, pickled once per run."""
        entry = self._steps.get(id(step))  # the usual case, a step already pickled: no lock
        if entry is not None and entry[0] is step:
            return entry[1], entry[2]
        with self._lock:
            entry = self._steps.get(id(step))
            if entry is None or entry[0] is not step:
                # Tokens are unique across runs: kept workers cache steps by token.
                entry = (step, uuid.uuid4().hex, pickle_step(step))
                self._steps[id(step)] = entry
            return entry[1], entry[2]

    def submit(self, job: Job) -> Future[JobResult]:
        """Queue ``job`` for the next free worker, starting one if fewer than the limit run."""
        future: Future[JobResult] = Future()
        item = Item(job, future, self)
        try:
            item.token, item.step_bytes = self.step_payload(job.step)
            item.job_bytes = pickle_job(job)
        except Exception as exc:
            item.error = (
                f"Step '{job.step_id}' could not be sent to a worker process: "
                f"{type(exc).__name__}: {exc}. Everything a step uses must be picklable by "
                "cloudpickle; run it with backend='inline' instead.\n")
        with self._lock:
            self._submitted += 1
            wanted = self._submitted
        if len(self.pool.workers) < min(self.pool.capacity, wanted):
            self.pool.grow(wanted)
        self.pool.put(item)
        return future

    def environment(self, step: Any) -> None:
        """Workers run this interpreter: nothing beyond the step's declared environment."""

    def cancel(self) -> None:
        """Stop this run's steps now: kill the workers running them, drop those queued."""
        with self.pool.lock:
            self.cancelled = True
            for worker in self.pool.workers:
                if worker.backend is self:
                    worker.kill()  # its driving thread sees the socket close, starts afresh

    def close(self) -> None:
        """Release the workers to the next run of this process (once)."""
        with self._lock:
            held, self._held = self._held, False
        if held:
            _release(self.pool)
