"""The process backend's pool: worker processes of one size, and the threads driving them.

Each worker process is driven by one thread of the parent (``Driver``). It sends
the worker a job and, while that runs, the pool's next job of the same run if
it is small (``DEPTH`` jobs in a worker at most), so the worker starts it as it
answers instead of idling a round trip through the parent; then it waits for
the answer at most the running job's ``timeout``, counted from when the worker
started it, and kills the process when it is exceeded. A worker that dies
fails only the job it was running; one sent ahead that never started goes to a
fresh worker. A driver waits on its worker's socket and a wake-up pipe at once:
``Pool.put`` wakes an idle driver, else one with room for the job ahead.
"""

from __future__ import annotations

import contextlib
import math
import os
import pickle
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from concurrent.futures import Future

from ductwork.runtime.engine.job import Job, JobResult, store_outputs
from ductwork.runtime.engine.worker import STEPS_KEPT, Channel, result_from

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    #: A run's ``ProcessBackend`` (its ``cancelled``, ``store``, ``store_config``), by
    #: another name: ``process`` imports this module, not the other way round.
    Backend = Any

#: Jobs a worker holds at once: the one it runs and the next, already in its socket, so it
#: starts that one as it answers instead of idling a round trip through the parent.
DEPTH = 2
#: A job is sent ahead of its turn only when this small: a bigger one could fill the socket's
#: buffer, and the driver thread, blocked sending, could not time out the job running.
AHEAD_MAX = 32 * 1024
#: What an idle driver thread waits for (``Driver.wants``): any job.
_ANY = "any job"


class Item:
    """A job on its way: its future, its run's backend, its pickled form."""

    __slots__ = ("backend", "error", "future", "job", "job_bytes", "sent", "step_bytes", "token")

    def __init__(self, job: Job, future: Future[JobResult], backend: Backend) -> None:
        self.job, self.future, self.backend = job, future, backend
        self.token = self.error = None
        self.step_bytes = self.job_bytes = b""
        #: In the worker's socket (``_stop`` clears it: a fresh worker is sent it again).
        self.sent = False


class Driver(threading.Thread):
    """One worker process and the parent thread that drives it.

    The thread sends the worker a job, and while it runs sends the next one of the same run
    (``ahead``; at most ``DEPTH`` in all), then waits for the answer at most the running
    job's ``timeout``, counted from when the worker started it (as it answered the one
    before). A job sent ahead that never started (its worker died or was stopped) is sent
    again to a fresh worker.
    """

    def __init__(self, pool: Pool) -> None:
        super().__init__(daemon=True, name="ductwork-worker")
        self.pool = pool
        self.process: subprocess.Popen[bytes] | None = None
        self.channel: Channel | None = None
        self.sent: dict[str, None] = {}  # mirrors the worker's kept steps, oldest first
        #: The backend (the run) whose jobs this worker holds now: what its ``cancel`` stops.
        self.backend: Backend | None = None
        #: Jobs sent after the running one, in the order the worker takes them.
        self.ahead: deque[Item] = deque()
        #: What ``Pool.put`` may wake this thread for: ``_ANY``, a job of a backend, None.
        self.wants: Any = None
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._poller = select.poll()
        self._poller.register(self._wake_r, select.POLLIN)

    def wake(self) -> None:
        """Make the thread look at the pool's jobs again (``pool.lock`` held)."""
        with contextlib.suppress(OSError):  # full: a wake-up is pending anyway
            os.write(self._wake_w, b"\0")

    def _spawn(self) -> None:
        ours, theirs = socket.socketpair()
        env = dict(os.environ)
        env["DUCTWORK_WORKER_FD"] = str(theirs.fileno())
        # Installed packages and the user's folders resolve as they do here.
        # '' on the parent's path (a REPL, ``python -c``, a notebook) is its working directory.
        env["PYTHONPATH"] = os.pathsep.join(p or os.getcwd() for p in sys.path)
        # -P: not the working directory first on its path, where another ductwork (a
        # checkout) would answer this one's jobs; the parent's path comes by PYTHONPATH.
        self.process = subprocess.Popen(
            [sys.executable, "-P", "-m", "ductwork.runtime.engine.worker"],
            pass_fds=(theirs.fileno(),),
            env=env, stdin=subprocess.DEVNULL,
        )
        theirs.close()
        self.channel = Channel(ours.detach())
        self._poller.register(self.channel.fd, select.POLLIN)
        self.sent = {}

    def _stop(self) -> None:
        if self.process is not None:
            with contextlib.suppress(OSError):
                self.process.kill()
            with contextlib.suppress(Exception):
                self.process.wait(timeout=10)
        if self.channel is not None:
            with contextlib.suppress(KeyError, ValueError):
                self._poller.unregister(self.channel.fd)
            with contextlib.suppress(OSError):
                self.channel.close()
        self.process = self.channel = None
        for item in self.ahead:  # never started: the next worker gets them afresh
            item.sent = False

    def kill(self) -> None:
        """Kill the process from another thread; the driving thread sees it die."""
        process = self.process
        if process is not None:
            with contextlib.suppress(OSError):
                process.kill()

    def _died(self, job: Job, started: float, backend: Backend) -> JobResult:
        code = None
        if self.process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                code = self.process.wait(timeout=5)
        self._stop()
        if backend.cancelled:
            return cancelled_result(job, started)
        return JobResult(job.step_id, started, time.time(), error=(
            f"The worker process running step '{job.step_id}' {death(code)}. A fresh worker "
            "takes the remaining steps.\n"))

    def run(self) -> None:
        try:
            while True:
                item = self.ahead.popleft() if self.ahead else self._take()
                if item is None:
                    break
                backend = item.backend
                if backend.cancelled:
                    item.future.cancel()
                if not item.future.set_running_or_notify_cancel():
                    if item.sent:  # in the worker's socket: it must not run
                        self._stop()
                    continue
                try:
                    result = self._do(item)
                except Exception:  # a fault of ours: fail the job, never leave it waiting
                    import traceback

                    self._stop()
                    result = JobResult(item.job.step_id, time.time(), time.time(), error=(
                        "The process backend failed while running this step:\n"
                        + traceback.format_exc()))
                with self.pool.lock:
                    if not self.ahead:
                        self.backend = None
                    cancelled = backend.cancelled
                if cancelled:
                    self._stop()  # ``cancel`` may have just killed it: the next job starts afresh
                item.future.set_result(result)
        finally:
            self._stop()
            for fd in (self._wake_r, self._wake_w):
                with contextlib.suppress(OSError):
                    os.close(fd)

    def _take(self) -> Item | None:
        """The next job of the pool (None: stop), waiting while there is none."""
        while True:
            with self.pool.lock:
                if self.pool.jobs:
                    self.wants = None
                    return self.pool.jobs.popleft()
                self.wants = _ANY
            for fd, _ in self._poller.poll():
                if fd == self._wake_r:
                    self._drain()
                elif self.channel is not None and fd == self.channel.fd:
                    self._stop()  # an idle worker's socket closed: it died; the next job starts one

    def _drain(self) -> None:
        with contextlib.suppress(BlockingIOError):
            os.read(self._wake_r, 4096)

    def _send(self, item: Item) -> None:
        assert self.channel is not None
        known = item.token in self.sent
        self.channel.send(pickle.dumps(
            (item.token, None if known else item.step_bytes, item.backend.store_config,
             item.job_bytes), protocol=pickle.HIGHEST_PROTOCOL))
        if not known:
            if len(self.sent) >= STEPS_KEPT:
                del self.sent[next(iter(self.sent))]
            self.sent[item.token] = None  # type: ignore[index]
        item.sent = True

    def _send_ahead(self, backend: Backend) -> None:
        """Send the worker the pool's next job if it is this run's, small, and there is room."""
        if len(self.ahead) >= DEPTH - 1 or self.channel is None:
            self.wants = None
            return
        with self.pool.lock:
            jobs = self.pool.jobs
            item = jobs[0] if jobs else None
            if item is None or item.backend is not backend or backend.cancelled \
                    or item.error is not None or len(item.job_bytes) + (
                        0 if item.token in self.sent else len(item.step_bytes)) > AHEAD_MAX:
                self.wants = backend if not jobs else None  # woken when one is put
                return
            jobs.popleft()
            self.wants = None
        self.ahead.append(item)
        with contextlib.suppress(OSError):  # it died: waiting for the answer finds out
            self._send(item)

    def _answer(self, backend: Backend, deadline: float | None) -> bool:
        """Wait for the running job's answer (True) or its deadline (False)."""
        channel = self.channel
        assert channel is not None
        while not channel.has_message():
            self._send_ahead(backend)
            wait = None if deadline is None else max(0, math.ceil(
                (deadline - time.monotonic()) * 1000))
            events = self._poller.poll(wait)
            if not events and deadline is not None and time.monotonic() >= deadline:
                return False
            ready = [fd for fd, _ in events]
            if self._wake_r in ready:
                self._drain()
            if channel.fd in ready:
                return True
        return True

    def _do(self, item: Item) -> JobResult:
        job, backend = item.job, item.backend
        started = time.time()
        if item.error is not None:
            return JobResult(job.step_id, started, time.time(), error=item.error)
        with self.pool.lock:  # ``cancel`` finds the workers running its jobs under this lock
            if backend.cancelled:
                return cancelled_result(job, started)
            self.backend = backend
        try:
            if not item.sent:
                if self.process is None or self.process.poll() is not None:
                    self._stop()
                    self._spawn()
                self._send(item)
                if backend.cancelled:  # cancelled while this worker was being started
                    self._stop()
                    return cancelled_result(job, started)
            timeout = job.step.options.timeout
            deadline = None if timeout is None else time.monotonic() + timeout
            if not self._answer(backend, deadline):
                self._stop()
                return JobResult(job.step_id, started, time.time(), error=(
                    f"Step '{job.step_id}' timed out after {timeout:g} s (timeout={timeout:g}); "
                    "its worker process was stopped.\n"))
            assert self.channel is not None
            message = self.channel.recv()
        except (EOFError, OSError):
            return self._died(job, started, backend)
        try:
            result = result_from(message)
        except Exception as exc:  # a value of a class this process cannot load
            return JobResult(job.step_id, started, time.time(), error=(
                f"Step '{job.step_id}' ran, but its result could not be read back from the "
                f"worker process: {type(exc).__name__}: {exc}. Return values that this "
                "process can unpickle, or use a store on disk (store=) so that outputs stay "
                "in the store.\n"))
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


def cancelled_result(job: Job, started: float) -> JobResult:
    """The result of a job its run's cancel stopped."""
    return JobResult(job.step_id, started, time.time(),
                     error="cancelled: the run was interrupted\n")


class Pool:
    """Worker processes of one size, kept between runs of this process, whatever their store."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        #: Jobs no driver thread has taken yet, first come first served (None: a thread stops).
        self.jobs: deque[Item | None] = deque()
        self.workers: list[Driver] = []
        self.lock = threading.Lock()
        #: Backends (runs) holding this pool; one held is never shut down (``_POOLS_LOCK``).
        self.users = 0

    def grow(self, wanted: int) -> None:
        """Start driver threads (their processes start on first job) up to ``wanted``."""
        with self.lock:
            while len(self.workers) < min(self.capacity, wanted):
                worker = Driver(self)
                self.workers.append(worker)
                worker.start()

    def put(self, item: Item | None) -> None:
        """Queue a job, waking an idle driver thread, else one with room for it ahead."""
        with self.lock:
            self.jobs.append(item)
            idle = [w for w in self.workers if w.wants is _ANY]
            room = [w for w in self.workers if item is not None and w.wants is item.backend]
            for worker in (idle or room)[:1]:
                worker.wants = None
                worker.wake()

    def shutdown(self) -> None:
        """Stop every worker process, also ones still running a step."""
        with self.lock:
            workers, self.workers = self.workers, []
            self.jobs.extend([None] * len(workers))
            for worker in workers:
                worker.wake()
        for worker in workers:
            worker.kill()
        for worker in workers:
            worker.join(timeout=10)


