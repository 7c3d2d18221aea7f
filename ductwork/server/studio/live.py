"""Step states of a run while it runs, for the studio's live run page.

The run history records a run's steps only when it ends (one transaction, so a step
costs a row in a batch, not a commit). A run the server started runs in a child
process (``server.child``), which passes ``LiveProgress`` as the run's progress
display: it keeps each step's state and writes them, whole, to
``<server state dir>/live/<run_id>.json`` (a temporary name, then a rename, so a
reader never sees half a file) -- at most every ``interval`` seconds while steps
change, and once at the end. Beside it, ``<run_id>/`` holds each running step's output
as it is printed (``run_pipeline(logs=...)``, ``runtime.engine.livelog``), which
``read_log`` reads for the step page. Both are removed when the run is over and
recorded: by then the run history holds every step's logs.

``read_live`` reads it (None when there is none: the run ended, or it was started
from the command line, whose steps appear when it ends).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import threading
import time
from pathlib import Path
from typing import Any

__all__ = ["LiveProgress", "live_dir", "live_progress", "log_path", "read_live", "read_log"]

LOG_TAIL = 256 * 1024  # a step page shows at most this much of a running step's log


def live_dir(state_path: Path) -> Path:
    """Where the live files of the server whose state file is ``state_path`` go."""
    return state_path.parent / "live"


def _file(folder: Path, run_id: str) -> Path:
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
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._write()
        self._thread.start()

    def changed(self, record: Any) -> None:
        """A step changed state: written within ``interval`` seconds."""
        with self._lock:
            self._steps[record.id] = _state(record)
        self._dirty.set()

    def finished(self, run: Any) -> None:
        """The run is recorded: stop, and remove the file."""
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


def live_progress(store: Any, run_id: str) -> Any:
    """The live display of a run the server started on ``store`` (a URL or path)."""
    from ductwork.runtime.store.artifacts import open_store
    from ductwork.server.state import state_path

    return LiveProgress(_file(live_dir(state_path(open_store(store))), run_id))


def read_live(state_path: Path, run_id: str) -> dict[str, dict[str, Any]] | None:
    """The step states the run's child last wrote, or None."""
    try:
        found = json.loads(_file(live_dir(state_path), run_id).read_text())
    except (OSError, ValueError):
        return None
    steps = found.get("steps") if isinstance(found, dict) else None
    return steps if isinstance(steps, dict) else None


def log_path(state_path: Path, run_id: str, step_id: str) -> Path:
    """Where step run ``step_id`` of run ``run_id`` writes its output while it runs."""
    from ductwork.runtime.engine.livelog import log_file

    return Path(log_file(str(_file(live_dir(state_path), run_id).with_suffix("")), step_id))


def read_log(path: Path, offset: int = 0, limit: int = LOG_TAIL) -> tuple[str, int] | None:
    """What was written to a running step's log from ``offset`` (at most its last ``limit``
    bytes), and the offset after it; None when there is no such file."""
    try:
        with open(path, "rb") as f:
            end = f.seek(0, os.SEEK_END)
            start = max(offset, end - limit) if end > offset else end
            f.seek(start)
            data = f.read(end - start)
    except OSError:
        return None
    cut = _whole(data)  # the next read starts with a character cut here, whole
    return data[:cut].decode("utf-8", "replace"), start + cut


def _whole(data: bytes) -> int:
    """How many of ``data``'s bytes end on a whole UTF-8 character."""
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte & 0xC0 != 0x80:  # ASCII or the first byte of a character
            need = 1 if byte < 0x80 else 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
            return len(data) if back >= need else len(data) - back
    return len(data)
