"""Start queued runs in child processes, at most ``max_runs`` at once, and stop them on cancel.

One thread takes the oldest queued row whenever a slot is free (woken at once by
a trigger, and every half second regardless) and starts its child: forked from the
zygote (``zygote``: a process started with the server that has already imported the
runtime, so a run starts in milliseconds), or, when the zygote is gone or still
starting, ``python -m ductwork.server.child RUN_ID`` in a fresh interpreter (a gone
zygote is reported in the server's log and started again). Either way the child
gets the run's spec as JSON (never in argv), writes its output to the run's log
file, and runs in its own session: a Ctrl-C meant for the server does not reach it,
and a server that stops or dies leaves it running to the end. The launcher reaps
the children it started and watches the others (forked, adopted) by pid.

A claimed row carries a random claim; the child registers its pid on the row only
while the claim is there, and runs only if it could (``queue.register``). The
launcher records the pid too, right after the start; both record the process's
start time, so a pid the system reused later is never taken for the child.

On start, the queue is put right after a server that died: a row marked running
that no child registered on is queued again under no claim (a late child of the
old claim then exits without running, so a run is never started twice); one whose
child is still alive is adopted (watched by pid until it exits); one whose child is
gone is finished -- its run record, if the child wrote one, reads ``died`` by itself
(``records.rows``: a running run whose driver is gone), and a row with no record is
marked ``died``.

Cancel: a queued run is cancelled in the queue; a running one gets SIGINT (the
runner records Ctrl-C as ``cancelled``), then SIGKILL to its process group after
``grace`` seconds if it has not exited.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import attrs

from ductwork.server import queue
from ductwork.server.child import process_start
from ductwork.server.state import ServerState
from ductwork.server.zygote import Zygote, ZygoteUnavailable

__all__ = ["Launcher"]

_log = logging.getLogger("ductwork.server")


@attrs.define
class _Child:
    run_id: str
    pid: int
    popen: subprocess.Popen[bytes] | None  # None: forked by the zygote, or adopted
    start: str | None = None  # when the process started: tells it from a reused pid
    kill_at: float | None = None


def _alive(pid: int, run_id: str, start: str | None = None) -> bool:
    """Whether ``pid`` is still the child running ``run_id`` (not a recycled pid)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False  # another user's process: the pid was reused
    if Path("/proc/self").exists():
        now = process_start(pid)
        if now is None:
            return False  # a zombie: it has exited
        if start is not None:
            return now == start
    cmdline = Path(f"/proc/{pid}/cmdline")  # a row from a server that kept no start time
    try:
        return run_id.encode() in cmdline.read_bytes()
    except FileNotFoundError:
        return not Path("/proc/self").exists()  # no /proc here: trust the pid
    except OSError:
        return True


class Launcher:
    """The thread that runs queued runs in child processes."""

    def __init__(self, state: ServerState, store: str, backend: str, max_runs: int,
                 recorded: Any, grace: float = 10.0,
                 options: dict[str, Any] | None = None) -> None:
        self.state, self.store, self.backend = state, store, backend
        # The backend's run options every run gets (a dask scheduler's address), unset ones
        # left out so the child's defaults stand.
        self.options = {k: v for k, v in (options or {}).items() if v}
        self.max_runs, self.grace = max_runs, grace
        self._recorded = recorded  # run id -> the status its run record has, or None
        self.logs = state.path.with_name(state.path.stem + ".logs")
        self._children: dict[str, _Child] = {}
        self._cancelling: set[str] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.zygote = Zygote()
        self._zygote_started, self._zygote_wait = 0.0, 1.0

    def start(self) -> None:
        """Put the queue right after a previous server, then start the thread."""
        self.logs.mkdir(parents=True, exist_ok=True)
        self.recover()
        self._start_zygote()
        self._thread = threading.Thread(target=self._loop, name="ductwork-launcher",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop taking runs; running children go on to the end."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        with self._lock:
            self.zygote.stop()

    def wake(self) -> None:
        """Look at the queue now (a run was queued)."""
        self._wake.set()

    def recover(self) -> None:
        """Requeue, adopt or finish the rows a previous server left running."""
        for row in queue.rows_in(self.state, (queue.RUNNING,)):
            run_id = row["run_id"]
            if row["pid"] is None:
                if queue.requeue_unstarted(self.state, run_id):
                    continue
                row = queue.get_row(self.state, run_id) or row  # its child registered now
            pid = row["pid"]
            if pid is None:
                continue
            if _alive(pid, run_id, row.get("pid_start")):
                self._children[run_id] = _Child(run_id, pid, None, row.get("pid_start"))
            elif self._recorded(run_id) is not None:
                queue.finish(self.state, run_id)
            else:
                queue.set_state(self.state, run_id, queue.DIED, was=queue.RUNNING,
                                error="the server stopped before this run was recorded")

    def cancel(self, run_id: str) -> str | None:
        """Cancel a queued or running run: ``cancelled``, ``cancelling``, or None if it is
        neither."""
        with self._lock:
            if queue.cancel_queued(self.state, run_id):
                return "cancelled"
            self._reap()
            child = self._children.get(run_id)
            if child is None or self._recorded(run_id) not in (None, "running"):
                return None  # gone, or recorded as ended while its process exits
            self._cancelling.add(run_id)
            if child.kill_at is None:
                child.kill_at = time.monotonic() + self.grace
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child.pid, signal.SIGINT)
            return "cancelling"

    def running(self) -> int:
        """How many children are running."""
        with self._lock:
            return len(self._children)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._turn()
            except Exception as exc:  # the launcher must outlive any one bad turn
                _log.error("launcher: %s: %s", type(exc).__name__, exc)
            self._wake.wait(0.5)
            self._wake.clear()

    def _start_zygote(self) -> None:
        self._zygote_started = time.monotonic()
        try:
            self.zygote.start()
        except OSError as exc:
            _log.warning("the zygote could not start (%s); runs start in fresh interpreters",
                         exc)

    def _keep_zygote(self) -> None:
        """Start a new zygote if the last one is gone; one that keeps dying young is
        retried less and less often (up to every 5 minutes)."""
        status = self.zygote.exited()
        if status is None:
            if self.zygote.ready():
                self._zygote_wait = 1.0
            return
        if time.monotonic() - self._zygote_started < self._zygote_wait:
            return
        _log.warning("the zygote (pid %s) exited with status %s; starting a new one",
                     self.zygote.pid, status)
        self._zygote_wait = min(self._zygote_wait * 2, 300.0)
        self.zygote.stop()
        self._start_zygote()

    def _turn(self) -> None:
        with self._lock:
            self._keep_zygote()
            self._reap()
            now = time.monotonic()
            for child in self._children.values():
                if child.kill_at is not None and now > child.kill_at:
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.killpg(child.pid, signal.SIGKILL)
            while len(self._children) < self.max_runs and not self._stop.is_set():
                row = queue.claim_next(self.state)
                if row is None:
                    break
                self._launch(row)

    def _launch(self, row: dict[str, Any]) -> None:
        run_id = row["run_id"]
        spec = {"store": self.store, "backend": self.backend, "options": self.options,
                "pipeline": row["pipeline"],
                "version": row["version"], "parameters": row["parameters"],
                "state": str(self.state.path), "claim": row["claim"]}
        log = self.logs / f"{run_id}.log"
        with contextlib.suppress(OSError):
            (self.logs / f"{run_id}.log.exit").unlink()
        popen = None
        try:
            pid = self.zygote.fork(run_id, spec, str(log))
        except ZygoteUnavailable as exc:
            if self.zygote.exited() is None and not self.zygote.ready():
                _log.debug("run %s: %s; starting it in a fresh interpreter", run_id, exc)
            else:
                _log.warning("run %s: %s; starting it in a fresh interpreter", run_id, exc)
                self._keep_zygote()
            try:
                popen = self._spawn(run_id, spec, log)
            except OSError as exc:
                queue.set_state(self.state, run_id, queue.FINISHED, was=queue.RUNNING,
                                error=f"the run's process could not start: {exc}")
                return
            pid = popen.pid
        start = process_start(pid)
        queue.set_pid(self.state, run_id, row["claim"], pid, start)
        self._children[run_id] = _Child(run_id, pid, popen, start)

    @staticmethod
    def _spawn(run_id: str, spec: dict[str, Any], log: Path) -> subprocess.Popen[bytes]:
        """The run in a fresh interpreter, its spec on stdin."""
        with open(log, "wb") as out:
            popen = subprocess.Popen(
                [sys.executable, "-m", "ductwork.server.child", run_id],
                stdin=subprocess.PIPE, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True, close_fds=True)
        assert popen.stdin is not None
        try:
            popen.stdin.write(json.dumps(spec).encode())
            popen.stdin.close()
        except OSError:
            pass  # it exited before reading; reaping says why
        return popen

    def _reap(self) -> None:
        for run_id, child in list(self._children.items()):
            if child.popen is not None:
                code = child.popen.poll()
                if code is None:
                    continue
            elif _alive(child.pid, run_id, child.start):
                continue
            else:
                code = self._exit_status(run_id)
            del self._children[run_id]
            cancelled = run_id in self._cancelling
            self._cancelling.discard(run_id)
            error = None if code == 0 else self._last_line(run_id)
            if cancelled and self._recorded(run_id) is None:
                queue.set_state(self.state, run_id, queue.CANCELLED, was=queue.RUNNING,
                                error="cancelled before the run started")
            else:
                queue.finish(self.state, run_id, error)
            for name in (f"{run_id}.log", f"{run_id}.log.exit"):
                with contextlib.suppress(OSError):
                    (self.logs / name).unlink()

    def _exit_status(self, run_id: str) -> int | None:
        """The status a forked child wrote as it exited, or None (killed, or not ours)."""
        try:
            return int((self.logs / f"{run_id}.log.exit").read_text())
        except (OSError, ValueError):
            return None

    def _last_line(self, run_id: str) -> str | None:
        """The last line the child wrote: why it could not start or failed."""
        try:
            text = (self.logs / f"{run_id}.log").read_bytes()[-4000:].decode(errors="replace")
        except OSError:
            return None
        lines = [line for line in text.splitlines() if line.strip()]
        return lines[-1][:1000] if lines else None
