"""Step states of a run written to a file while it runs, for a watcher (the studio).

The run history records a run's steps only when it ends (one transaction, so a step
costs a row in a batch, not a commit). ``LiveProgress`` is a progress display that keeps
each step's state and writes them, whole, to ``<folder>/<run_id>.json`` (a temporary
name, then a rename, so a reader never sees half a file) -- at most every ``interval``
seconds while steps change, from its own thread, and once at the start. The file, and
the folder of step logs beside it (``<folder>/<run_id>/``, see ``engine.livelog``), are
removed when the run is over and recorded.

Who writes it: the server's child for the runs it starts (into the server's state
folder), and ``ductwork run`` on a local store (``StoreLive``, into ``<store>/live/``,
which is the same folder for a store served from that directory). A run that crashed
leaves its file behind; readers trust it only while the run history says the run's
driver is alive.

Only the standard library: a run's child process imports this before anything else.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import threading
import time
from pathlib import Path

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["LiveProgress", "StoreLive", "live_file"]


def live_file(folder: Path, run_id: str) -> Path:
    """The live file of run ``run_id`` in ``folder``."""
    safe = "".join(c for c in run_id if c.isalnum() or c in "-_.")
    return folder / f"{safe}.json"


class LiveProgress:
    """A progress display that writes step states to a file, throttled, for the studio."""

    def __init__(self, path: Path, interval: float = 0.2) -> None:
        self.path, self.interval = path, interval
        #: The folder the run's steps write their output to while they run.
        self.logs = path.with_suffix("")
        self._steps: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._written = 0.0
        self._dirty = threading.Event()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._flusher, name="ductwork-live",
                                        daemon=True)

    def started(self, run: Any) -> None:
        """The run has begun: note every step, pending, and start writing."""
        with self._lock:
            for record in run.steps.values():
                self._steps[record.id] = _state(record)
        with contextlib.suppress(OSError):
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._write()
        self._thread.start()

    def changed(self, record: Any) -> None:
        """A step changed state: written within ``interval`` seconds."""
        with self._lock:
            self._steps[record.id] = _state(record)
        self._dirty.set()

    def finished(self, run: Any) -> None:
        """The run is recorded: stop, and remove the file and the step logs."""
        self._done.set()
        self._dirty.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        with contextlib.suppress(OSError):
            self.path.unlink()
        shutil.rmtree(self.logs, ignore_errors=True)

    def _flusher(self) -> None:
        while not self._done.is_set():
            self._dirty.wait()
            if self._done.is_set():
                return
            self._dirty.clear()
            wait = self._written + self.interval - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            self._write()

    def _write(self) -> None:
        with self._lock:
            text = json.dumps({"steps": self._steps, "written": time.time()})
        temp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            temp.write_text(text)
            os.replace(temp, self.path)
        except OSError:
            pass  # progress never fails a run
        self._written = time.monotonic()


def _state(record: Any) -> dict[str, Any]:
    return {"step": record.step, "status": str(record.status), "cached": bool(record.cached),
            "started": record.started, "finished": record.finished,
            "map_index": record.map_index, "logs": record.logs or ""}


class StoreLive:
    """A display that passes every event on to ``inner`` and, for a run on a local store,
    also writes its live file into ``<store>/live/`` (where a studio serving it looks)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self._live: LiveProgress | None = None

    def started(self, run: Any) -> None:
        """Pass it on; on a local store (its URL is an absolute path), start the live file."""
        store = str(getattr(run, "store", "") or "")
        self._live = None
        if os.path.isabs(store):
            self._live = LiveProgress(live_file(Path(store) / "live", run.id))
            self._live.started(run)
        self.inner.started(run)

    def changed(self, record: Any) -> None:
        """Pass it on to both."""
        if self._live is not None:
            self._live.changed(record)
        self.inner.changed(record)

    def finished(self, run: Any) -> None:
        """Pass it on; remove the live file."""
        try:
            self.inner.finished(run)
        finally:
            if self._live is not None:
                self._live.finished(run)
