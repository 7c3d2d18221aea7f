"""Writing what a running step prints through to a file, so a watcher can tail it.

A run given a log folder (``run_pipeline(logs=...)``: the server's runs) hands each job
the path of its step's file there (``log_file``). The step's captured output is then
also written to that file while it runs; its logs are still kept and recorded as usual
when it ends. Without a folder nothing here runs, so runs no one watches pay nothing.

Writes are buffered, never a system call per print: one daemon thread per process
(``ductwork-logs``, started on first use, asleep while nothing is open) flushes every
open log at most every ``INTERVAL`` seconds, and only logs written to since. In a
worker process the step's file descriptors point at the log file itself
(``capture.capture_fds``), so there the same clock flushes Python's own stream buffers.

A log that cannot be opened or written is dropped: watching never fails a step.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import TextIO

__all__ = ["INTERVAL", "LiveLog", "flushing", "log_file", "open_live"]

INTERVAL = 0.2

_cond = threading.Condition()
_tasks: dict[int, Callable[[], None]] = {}
_thread: threading.Thread | None = None


# What urllib.parse.quote(..., safe="") leaves as is; the rest is percent-encoded as UTF-8.
# Spelled out here because urllib.parse (with ipaddress) costs a first run ~11M instructions.
_UNQUOTED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~")


def quote(text: str) -> str:
    """Percent-encode ``text`` exactly as ``urllib.parse.quote(text, safe="")`` does."""
    if _UNQUOTED.issuperset(text):
        return text
    return "".join(c if c in _UNQUOTED else "".join(f"%{b:02X}" for b in c.encode())
                   for c in text)


def log_file(folder: str, step_id: str) -> str:
    """The file in ``folder`` that step run ``step_id``'s output goes to while it runs."""
    # Quoted: a map element's id has brackets, and no id may name a path elsewhere.
    return os.path.join(folder, quote(step_id) + ".log")


class LiveLog:
    """A text file written from the step's thread and flushed from the flusher's."""

    def __init__(self, path: str) -> None:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        # "w": a retried step's file shows the attempt that runs now.
        self._file: TextIO | None = open(path, "w", encoding="utf-8",
                                         errors="replace")
        self._lock = threading.Lock()
        self._dirty = False

    def write(self, text: str) -> None:
        """Add ``text``; it reaches the file within ``INTERVAL`` seconds."""
        with self._lock:
            if self._file is not None:
                try:
                    self._file.write(text)
                    self._dirty = True
                except (OSError, ValueError):
                    self._file = None

    def flush(self) -> None:
        """Write out what was added since the last flush, if anything was."""
        with self._lock:
            if self._dirty and self._file is not None:
                self._dirty = False
                with contextlib.suppress(OSError, ValueError):
                    self._file.flush()

    def close(self) -> None:
        """Flush and close; later writes are dropped."""
        self.flush()
        with self._lock:
            if self._file is not None:
                with contextlib.suppress(OSError, ValueError):
                    self._file.close()
                self._file = None


def open_live(path: str | None) -> LiveLog | None:
    """A ``LiveLog`` at ``path``, or None (no path, or it cannot be opened)."""
    if path is None:
        return None
    try:
        return LiveLog(path)
    except OSError:
        return None


def _flusher() -> None:
    while True:
        with _cond:
            while not _tasks:
                _cond.wait()
        time.sleep(INTERVAL)
        with _cond:
            tasks = list(_tasks.values())
        for task in tasks:
            with contextlib.suppress(Exception):
                task()


@contextlib.contextmanager
def flushing(task: Callable[[], None]) -> Iterator[None]:
    """Call ``task`` every ``INTERVAL`` seconds while the block runs, and once after it."""
    global _thread
    key = object()
    with _cond:
        _tasks[id(key)] = task
        if _thread is None or not _thread.is_alive():
            _thread = threading.Thread(target=_flusher, name="ductwork-logs", daemon=True)
            _thread.start()
        _cond.notify()
    try:
        yield
    finally:
        with _cond:
            _tasks.pop(id(key), None)
        with contextlib.suppress(Exception):
            task()
