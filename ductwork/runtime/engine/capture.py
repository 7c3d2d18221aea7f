"""Capturing what a step prints.

In a worker process the step owns the process, so its file descriptors 1 and 2
are pointed at a temporary file for the step's duration: output of child
processes it starts and of C extensions is captured too. In-process (the
inline backend) only Python-level ``sys.stdout``/``sys.stderr`` are swapped,
and what is written still reaches the original streams, so a notebook shows
it while it is kept in the logs.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
import threading
from collections.abc import Iterator
from typing import Any, TextIO


class _Tee(io.TextIOBase):
    """A text stream that keeps what is written and passes it on."""

    def __init__(self, sink: list[str], passthrough: TextIO | None) -> None:
        self._sink = sink
        self._passthrough = passthrough
        self._lock = threading.Lock()

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        with self._lock:
            self._sink.append(text)
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
def capture_python(passthrough: bool = True) -> Iterator[list[str]]:
    """Collect Python-level stdout and stderr written in the block, in order."""
    sink: list[str] = []
    out = _Tee(sink, sys.stdout if passthrough else None)
    err = _Tee(sink, sys.stderr if passthrough else None)
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):  # type: ignore[type-var]
        yield sink


@contextlib.contextmanager
def capture_fds() -> Iterator[dict[str, Any]]:
    """Point fds 1 and 2 at a temp file for the block; ``result["text"]`` holds it after."""
    result: dict[str, Any] = {"text": ""}
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    saved = (os.dup(1), os.dup(2))
    with tempfile.TemporaryFile() as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield result
        finally:
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(Exception):
                    stream.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
            log.seek(0)
            result["text"] = log.read().decode("utf-8", errors="replace")


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
        sink = self.sinks.get(threading.get_ident())
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


_ROUTER_LOCK = threading.Lock()
_STREAMS = ("stdout", "stderr")


@contextlib.contextmanager
def capture_thread() -> Iterator[list[str]]:
    """Collect what this thread writes to Python's stdout and stderr in the block."""
    sink: list[str] = []
    ident = threading.get_ident()
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
