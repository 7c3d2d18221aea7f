"""Start queued runs in child processes, at most ``max_runs`` at once, and stop them on cancel.

One thread takes the oldest queued row whenever a slot is free (woken at once by
a trigger, and every half second regardless), starts ``python -m
ductwork.server.child RUN_ID`` with the run's spec on stdin, and reaps children
that exit. A child runs in its own session: a Ctrl-C meant for the server does
not reach it, and a server that stops or dies leaves it running to the end.

On start, the queue is put right after a server that died: a row marked running
that never got a child is queued again; one whose child is still alive is adopted
(watched by pid until it exits); one whose child is gone is finished -- its run
record, if the child wrote one, reads ``died`` by itself (``records.rows``: a
running run whose driver is gone), and a row with no record is marked ``died``.

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
from ductwork.server.state import ServerState

__all__ = ["Launcher"]

_log = logging.getLogger("ductwork.server")


@attrs.define
class _Child:
    run_id: str
    pid: int
    popen: subprocess.Popen[bytes] | None  # None: adopted from a server that stopped
    kill_at: float | None = None


def _alive(pid: int, run_id: str) -> bool:
    """Whether ``pid`` is still the child running ``run_id`` (not a recycled pid)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False  # another user's process: the pid was reused
    cmdline = Path(f"/proc/{pid}/cmdline")
    try:
        return run_id.encode() in cmdline.read_bytes()
    except FileNotFoundError:
        return not Path("/proc/self").exists()  # no /proc here: trust the pid
    except OSError:
        return True


class Launcher:
    """The thread that runs queued runs in child processes."""

    def __init__(self, state: ServerState, store: str, backend: str, max_runs: int,
                 recorded: Any, grace: float = 10.0) -> None:
        self.state, self.store, self.backend = state, store, backend
        self.max_runs, self.grace = max_runs, grace
        self._recorded = recorded  # run id -> the status its run record has, or None
        self.logs = state.path.with_name(state.path.stem + ".logs")
        self._children: dict[str, _Child] = {}
        self._cancelling: set[str] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Put the queue right after a previous server, then start the thread."""
        self.logs.mkdir(parents=True, exist_ok=True)
        self.recover()
        self._thread = threading.Thread(target=self._loop, name="ductwork-launcher",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop taking runs; running children go on to the end."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def wake(self) -> None:
        """Look at the queue now (a run was queued)."""
        self._wake.set()

    def recover(self) -> None:
        """Requeue, adopt or finish the rows a previous server left running."""
        for row in queue.rows_in(self.state, (queue.RUNNING,)):
            run_id, pid = row["run_id"], row["pid"]
            if pid is None:
                queue.set_state(self.state, run_id, queue.QUEUED, was=queue.RUNNING)
            elif _alive(pid, run_id):
                self._children[run_id] = _Child(run_id, pid, None)
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

    def _turn(self) -> None:
        with self._lock:
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
        spec = {"store": self.store, "backend": self.backend, "pipeline": row["pipeline"],
                "version": row["version"], "parameters": row["parameters"]}
        try:
            with open(self.logs / f"{run_id}.log", "wb") as log:
                popen = subprocess.Popen(
                    [sys.executable, "-m", "ductwork.server.child", run_id],
                    stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT,
                    start_new_session=True, close_fds=True)
        except OSError as exc:
            queue.set_state(self.state, run_id, queue.FINISHED, was=queue.RUNNING,
                            error=f"the run's process could not start: {exc}")
            return
        queue.set_pid(self.state, run_id, popen.pid)
        self._children[run_id] = _Child(run_id, popen.pid, popen)
        assert popen.stdin is not None
        try:
            popen.stdin.write(json.dumps(spec).encode())
            popen.stdin.close()
        except OSError:
            pass  # it exited before reading; reaping says why

    def _reap(self) -> None:
        for run_id, child in list(self._children.items()):
            if child.popen is not None:
                code = child.popen.poll()
                if code is None:
                    continue
            elif _alive(child.pid, run_id):
                continue
            else:
                code = None
            del self._children[run_id]
            cancelled = run_id in self._cancelling
            self._cancelling.discard(run_id)
            error = None if code == 0 else self._last_line(run_id)
            if cancelled and self._recorded(run_id) is None:
                queue.set_state(self.state, run_id, queue.CANCELLED, was=queue.RUNNING,
                                error="cancelled before the run started")
            else:
                queue.finish(self.state, run_id, error)
            with contextlib.suppress(OSError):
                (self.logs / f"{run_id}.log").unlink()

    def _last_line(self, run_id: str) -> str | None:
        """The last line the child wrote: why it could not start or failed."""
        try:
            text = (self.logs / f"{run_id}.log").read_bytes()[-4000:].decode(errors="replace")
        except OSError:
            return None
        lines = [line for line in text.splitlines() if line.strip()]
        return lines[-1][:1000] if lines else None
