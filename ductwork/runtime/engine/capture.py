"""Capturing what a step prints.

In a worker process the step owns the process, so its file descriptors 1 and 2
are pointed at a file of the step's own for the step's duration (a nameless
in-memory file: a handful of system calls per step): output of child processes
it starts and of C extensions is captured too. In-process (the
inline backend) only Python-level ``sys.stdout``/``sys.stderr`` are swapped,
and what is written still reaches the original streams, so a notebook shows
it while it is kept in the logs.

Given a ``log_to`` path (a run someone watches: ``livelog``), what is captured is also
written there while the step runs: in-process through a buffered ``LiveLog``; in a
worker, fds 1 and 2 point at that file instead of a temporary one.
"""

from __future__ import annotations

import _thread  # threading's locks, without threading (~2.6M instructions and an exit hook)
import contextlib
import io
import os
import sys
from collections.abc import Iterator

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, TextIO


class _Tee(io.TextIOBase):
    """A text stream that keeps what is written and passes it on."""

    def __init__(self, sink: list[str], passthrough: TextIO | None,
                 live: Any = None) -> None:  # a livelog.LiveLog, or None
        self._sink = sink
        self._passthrough = passthrough
        self._live = live
        self._lock = _thread.allocate_lock()

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        with self._lock:
            self._sink.append(text)
        if self._live is not None:
            self._live.write(text)
        if self._passthrough is not None:
            with contextlib.suppress(Exception):
                self._passthrough.write(text)
        return len(text)

    def flush(self) -> None:
        if self._passthrough is not None:
            with contextlib.suppress(Exception):
                self._passthrough.flush()

    def isatty(self) -> bool:
        return False


@contextlib.contextmanager
def capture_python(passthrough: bool = True, log_to: str | None = None
                   ) -> Iterator[list[str]]:
    """Collect Python-level stdout and stderr written in the block, in order."""
    sink: list[str] = []
    live = None
    if log_to is not None:  # livelog only for a run someone watches: most runs have no log
        from ductwork.runtime.engine.livelog import flushing, open_live

        live = open_live(log_to)
    out = _Tee(sink, sys.stdout if passthrough else None, live)
    err = _Tee(sink, sys.stderr if passthrough else None, live)
    watched = flushing(live.flush) if live is not None else contextlib.nullcontext()
    try:
        with watched, contextlib.redirect_stdout(out), \
                contextlib.redirect_stderr(err):  # type: ignore[type-var]
            yield sink
    finally:
        if live is not None:
            live.close()


@contextlib.contextmanager
def capture_fds(log_to: str | None = None) -> Iterator[dict[str, Any]]:
    """Point fds 1 and 2 at a file for the block (``log_to``, else a fresh in-memory one);
    ``result["text"]`` holds what was written after."""
    if log_to is None:
        with _capture_to_memory() as result:
            yield result
        return
    result: dict[str, Any] = {"text": ""}
    _flush_streams()
    saved = (os.dup(1), os.dup(2))
    from ductwork.runtime.engine.livelog import flushing  # here: log_to is set

    with _log_file(log_to) as (log, watched):
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            # Watched: Python's own buffers reach the file on the live log's clock.
            with flushing(_flush_streams) if watched else contextlib.nullcontext():
                yield result
        finally:
            _flush_streams()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
            log.seek(0)
            result["text"] = log.read().decode("utf-8", errors="replace")


#: This process's own fds 1 and 2, copied once: a worker points them back here after each
#: step instead of copying them again per step.
_SAVED: tuple[int, int] | None = None


@contextlib.contextmanager
def _capture_to_memory() -> Iterator[dict[str, Any]]:
    """``capture_fds`` into a file of its own per block, in as few system calls as may be.

    A fresh file per block, never one reused at an offset: a child process a step left
    running keeps writing to that step's file, not into the next step's log.
    """
    global _SAVED
    result: dict[str, Any] = {"text": ""}
    _flush_streams()
    if _SAVED is None:
        _SAVED = (os.dup(1), os.dup(2))
    fd = _anonymous_file()
    try:
        os.dup2(fd, 1)  # inheritable copies: child processes write here too
        os.dup2(fd, 2)
        try:
            yield result
        finally:
            _flush_streams()
            size = os.fstat(fd).st_size
            data = os.pread(fd, size, 0) if size else b""
            while len(data) < size:  # a huge log comes in several reads
                chunk = os.pread(fd, size - len(data), len(data))
                if not chunk:
                    break
                data += chunk
            os.dup2(_SAVED[0], 1)
            os.dup2(_SAVED[1], 2)
            result["text"] = data.decode("utf-8", errors="replace")
    finally:
        os.close(fd)


def _anonymous_file() -> int:
    """A new read-write file with no name (in memory where the system offers it)."""
    memfd_create = getattr(os, "memfd_create", None)
    if memfd_create is not None:
        with contextlib.suppress(OSError):
            return memfd_create("ductwork-step-log", os.MFD_CLOEXEC)
    import tempfile

    fd, path = tempfile.mkstemp(prefix="ductwork-step-log-")
    os.unlink(path)
    return fd


def _flush_streams() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:  # twice per job in a worker: no context manager built each time
            stream.flush()
        except Exception:  # a stream the step closed or replaced: nothing to keep
            pass


@contextlib.contextmanager
def _log_file(log_to: str | None) -> Iterator[tuple[Any, bool]]:
    """The file a worker's fds point at: ``log_to`` when it opens, else a temporary file."""
    if log_to is not None:
        try:
            os.makedirs(os.path.dirname(log_to) or ".", exist_ok=True)
            log = open(log_to, "w+b")  # closed by the with below
        except OSError:
            pass
        else:
            with log:
                yield log, True
            return
    import tempfile

    with tempfile.TemporaryFile() as temp:
        yield temp, False


class _ThreadRouter(io.TextIOBase):
    """A stream that sends each thread's writes to that thread's sink, if it has one.

    A Dask worker runs several steps at once in threads of one process, so
    swapping ``sys.stdout`` per step would mix their logs; the router stands in
    for the stream while any step captures, and the original is put back when
    the last one ends. Everything but writing is the original stream's.
    """

    def __init__(self, passthrough: TextIO) -> None:
        self.passthrough = passthrough
        self.sinks: dict[int, list[str]] = {}

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        sink = self.sinks.get(_thread.get_ident())
        if sink is not None:
            sink.append(text)  # one thread writes to its own list: no lock needed
            return len(text)
        return self.passthrough.write(text)

    def flush(self) -> None:
        with contextlib.suppress(Exception):
            self.passthrough.flush()

    def isatty(self) -> bool:
        return self.passthrough.isatty()

    def fileno(self) -> int:
        return self.passthrough.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self.passthrough.encoding

    @property
    def errors(self) -> str | None:  # type: ignore[override]
        return self.passthrough.errors

    def __getattr__(self, name: str) -> Any:
        return getattr(self.passthrough, name)


_ROUTER_LOCK = _thread.allocate_lock()
_STREAMS = ("stdout", "stderr")


@contextlib.contextmanager
def capture_thread() -> Iterator[list[str]]:
    """Collect what this thread writes to Python's stdout and stderr in the block."""
    sink: list[str] = []
    ident = _thread.get_ident()
    with _ROUTER_LOCK:
        routers = []
        for name in _STREAMS:
            stream = getattr(sys, name)
            if not isinstance(stream, _ThreadRouter):
                stream = _ThreadRouter(stream)
                setattr(sys, name, stream)
            stream.sinks[ident] = sink
            routers.append(stream)
    try:
        yield sink
    finally:
        with _ROUTER_LOCK:
            for name, router in zip(_STREAMS, routers, strict=True):
                router.sinks.pop(ident, None)
                if not router.sinks and getattr(sys, name) is router:
                    setattr(sys, name, router.passthrough)
