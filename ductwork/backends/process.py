"""The process backend: a pool of worker processes on this machine.

Workers are fresh interpreters (``python -m ductwork.runtime.engine.worker``), not
forks and not ``multiprocessing`` spawns, so a user's script without a
``__main__`` guard is never re-run in them. Each is driven by one thread of
the parent, which sends it a job, waits for the answer at most the step's
``timeout``, and kills the process when it is exceeded; a worker that dies
(``os._exit``, a segfault, the OOM killer) fails only the step it was running
and is replaced on the next job.

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
there values go through the pipe and the parent stores the outputs.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import OrderedDict
from concurrent.futures import Future
from typing import Any

from ductwork.runtime.engine.job import Job, JobResult, store_outputs
from ductwork.runtime.engine.shipping import pickle_step
from ductwork.runtime.engine.worker import STEPS_KEPT


class _Worker(threading.Thread):
    """One worker process and the parent thread that drives it."""

    def __init__(self, pool: _Pool) -> None:
        super().__init__(daemon=True, name="ductwork-worker")
        self.pool = pool
        self.process: subprocess.Popen[bytes] | None = None
        self.conn: Any = None
        self.sent: dict[str, None] = {}  # mirrors the worker's kept steps, oldest first
        #: The backend (the run) whose job this worker runs now: what its ``cancel`` stops.
        self.backend: ProcessBackend | None = None

    def _spawn(self) -> None:
        from multiprocessing.connection import Connection

        ours, theirs = socket.socketpair()
        env = dict(os.environ)
        env["DUCTWORK_WORKER_FD"] = str(theirs.fileno())
        # Installed packages and the user's folders resolve as they do here.
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ductwork.runtime.engine.worker"], pass_fds=(theirs.fileno(),),
            env=env, stdin=subprocess.DEVNULL,
        )
        theirs.close()
        self.conn = Connection(ours.detach())
        self.sent = {}

    def _stop(self) -> None:
        if self.process is not None:
            with contextlib.suppress(OSError):
                self.process.kill()
            with contextlib.suppress(Exception):
                self.process.wait(timeout=10)
        if self.conn is not None:
            with contextlib.suppress(OSError):
                self.conn.close()
        self.process = self.conn = None

    def _died(self, job: Job, started: float, backend: ProcessBackend) -> JobResult:
        code = None
        if self.process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                code = self.process.wait(timeout=5)
        self._stop()
        if backend.cancelled:
            return _cancelled(job, started)
        return JobResult(job.step_id, started, time.time(), error=(
            f"The worker process running step '{job.step_id}' {death(code)}. A fresh worker "
            "takes the remaining steps.\n"))

    def run(self) -> None:
        while True:
            item = self.pool.jobs.get()
            if item is None:
                break
            job, future, backend = item
            if backend.cancelled:
                future.cancel()
            if not future.set_running_or_notify_cancel():
                continue
            result = self._do(job, backend)
            with self.pool.lock:
                self.backend = None
                cancelled = backend.cancelled
            if cancelled:
                self._stop()  # ``cancel`` may have just killed it: the next job starts afresh
            future.set_result(result)
        self._stop()

    def _do(self, job: Job, backend: ProcessBackend) -> JobResult:
        import cloudpickle

        started = time.time()
        try:
            token, step_bytes = backend.step_payload(job.step)
            job_bytes = cloudpickle.dumps(Job(**{**_asdict(job), "step": None}))
        except Exception as exc:
            return JobResult(job.step_id, started, time.time(), error=(
                f"Step '{job.step_id}' could not be sent to a worker process: "
                f"{type(exc).__name__}: {exc}. Everything a step uses must be picklable by "
                "cloudpickle; run it with backend='inline' instead.\n"))
        with self.pool.lock:  # ``cancel`` finds the workers running its jobs under this lock
            if backend.cancelled:
                return _cancelled(job, started)
            self.backend = backend
        if self.process is None or self.process.poll() is not None:
            self._stop()
            self._spawn()
        try:
            known = token in self.sent
            self.conn.send((token, None if known else step_bytes, backend.store_config,
                            job_bytes))
            if not known:
                if len(self.sent) >= STEPS_KEPT:
                    del self.sent[next(iter(self.sent))]
                self.sent[token] = None
            if backend.cancelled:  # cancelled while this worker was being started
                self._stop()
                return _cancelled(job, started)
            timeout = job.step.options.timeout
            if not self.conn.poll(timeout):
                self._stop()
                return JobResult(job.step_id, started, time.time(), error=(
                    f"Step '{job.step_id}' timed out after {timeout:g} s (timeout={timeout:g}); "
                    "its worker process was stopped.\n"))
            result: JobResult = cloudpickle.loads(self.conn.recv_bytes())
        except (EOFError, OSError):
            return self._died(job, started, backend)
        if result.error is None and result.refs is None and result.values is not None:
            try:
                refs = store_outputs(job, result.values, backend.store)
            except ValueError as exc:
                return JobResult(job.step_id, result.started, result.finished, error=str(exc),
                                 logs=result.logs, metrics=result.metrics)
            result = JobResult(job.step_id, result.started, result.finished, refs=refs,
                               values=result.values, logs=result.logs, metrics=result.metrics)
        return result


def death(code: int | None) -> str:
    """Say how a worker process ended, from its exit code (negative: the signal that killed it)."""
    if code is None:
        return "stopped answering: its connection closed, but the process did not exit"
    if code >= 0:
        return (f"exited with code {code} (sys.exit or os._exit in the step, or in code it "
                "called). A step must return a value or raise an exception instead")
    try:
        sig = signal.Signals(-code).name
    except ValueError:
        sig = f"signal {-code}"
    if -code == signal.SIGKILL:
        return (f"was killed by {sig}: most often the out-of-memory killer (see `dmesg`); give "
                "the step more memory or make it use less")
    if -code in (signal.SIGSEGV, signal.SIGBUS, signal.SIGILL, signal.SIGFPE, signal.SIGABRT):
        return (f"crashed with {sig}: a crash in native code (a C extension or a library it "
                "loads) called by the step")
    return f"was killed by {sig}, sent from outside ductwork"


def _cancelled(job: Job, started: float) -> JobResult:
    return JobResult(job.step_id, started, time.time(),
                     error="cancelled: the run was interrupted\n")


def _asdict(obj: Any) -> dict[str, Any]:
    import attrs

    return attrs.asdict(obj, recurse=False)


class _Pool:
    """Worker processes of one size, kept between runs of this process, whatever their store."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.workers: list[_Worker] = []
        self.lock = threading.Lock()
        #: Backends (runs) holding this pool; one held is never shut down (``_POOLS_LOCK``).
        self.users = 0

    def grow(self, wanted: int) -> None:
        """Start driver threads (their processes start on first job) up to ``wanted``."""
        with self.lock:
            while len(self.workers) < min(self.capacity, wanted):
                worker = _Worker(self)
                self.workers.append(worker)
                worker.start()

    def shutdown(self) -> None:
        """Stop every worker process, also ones still running a step."""
        with self.lock:
            workers, self.workers = self.workers, []
        for _ in workers:
            self.jobs.put(None)
        for worker in workers:
            worker._stop()
        for worker in workers:
            worker.join(timeout=10)


#: Pools by size, least recently used first.
_POOLS: OrderedDict[int, _Pool] = OrderedDict()
_POOLS_LOCK = threading.Lock()
#: Pools no run holds that are kept for the next run; older idle ones are shut down.
IDLE_POOLS_KEPT = 2
_at_exit_registered = False


def _acquire(capacity: int) -> _Pool:
    """Hold the pool of ``capacity`` workers (made if there is none) for one run."""
    global _at_exit_registered
    with _POOLS_LOCK:
        if not _at_exit_registered:
            atexit.register(shutdown_pools)
            _at_exit_registered = True
        pool = _POOLS.get(capacity)
        if pool is None:
            pool = _POOLS[capacity] = _Pool(capacity)
        _POOLS.move_to_end(capacity)
        pool.users += 1
        extra = _idle_beyond_kept()
    for idle in extra:
        idle.shutdown()
    return pool


def _release(pool: _Pool) -> None:
    """Give back one run's hold on ``pool``; shut down idle pools beyond those kept."""
    with _POOLS_LOCK:
        pool.users -= 1
        if _POOLS.get(pool.capacity) is pool:
            _POOLS.move_to_end(pool.capacity)
        extra = _idle_beyond_kept()
    for idle in extra:
        idle.shutdown()


def _idle_beyond_kept() -> list[_Pool]:
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

    Workers outlive the run: the next run in this process (a notebook's next
    cell) of the same size finds them started, whatever its store. ``cancel``
    (Ctrl-C) stops the workers running this run's steps; ``close`` gives the
    pool back.
    """

    name = "process"
    schedules_graph = False

    def __init__(self, store: Any, max_workers: int | None = None) -> None:
        self.store = store
        self.capacity = max_workers or os.cpu_count() or 1
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
        self.pool = _acquire(self.capacity)

    def step_payload(self, step: Any) -> tuple[str, bytes]:
        """Return a token and the pickled step, pickled once per run."""
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
        with self._lock:
            self._submitted += 1
            wanted = self._submitted
        self.pool.grow(wanted)
        self.pool.jobs.put((job, future, self))
        return future

    def environment(self, step: Any) -> None:
        """Workers run this interpreter: nothing beyond the step's declared environment."""

    def cancel(self) -> None:
        """Stop this run's steps now: kill the workers running them, drop those queued."""
        with self.pool.lock:
            self.cancelled = True
            for worker in self.pool.workers:
                process = worker.process
                if worker.backend is self and process is not None:
                    # Its driving thread sees the connection close and starts afresh.
                    with contextlib.suppress(OSError):
                        process.kill()

    def close(self) -> None:
        """Release the workers to the next run of this process (once)."""
        with self._lock:
            held, self._held = self._held, False
        if held:
            _release(self.pool)
