"""What the commands print: times, the store a listing reads, JSON, and the streams.

stdout carries a command's result (a table, a run's outputs, JSON); everything
said along the way (progress, what steps print, which store was read) goes to
stderr, so ``ductwork ... | head -1`` and ``ductwork ... --json | jq`` see only
the result. A reader that closes the pipe early ends the command quietly
(``quiet_stdout``): exit status 0, no traceback.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator
from typing import Any


def when(stamp: float | None) -> str:
    """A timestamp as local ``YYYY-MM-DD HH:MM:SS`` (``-`` for none)."""
    import datetime as dt

    if stamp is None:
        return "-"
    return dt.datetime.fromtimestamp(stamp).strftime("%Y-%m-%d %H:%M:%S")


def say_store(store: str | None) -> None:
    """One line on stderr: which store (and history file) a listing reads."""
    from ductwork.runtime.records.runstore import runstore_path
    from ductwork.runtime.store.artifacts import open_store

    opened = open_store(store)
    print(f"store: {opened.url} (history: {runstore_path(opened)})", file=sys.stderr)


def print_json(value: Any) -> None:
    """Print ``value`` as indented JSON; what JSON cannot hold is written as its repr."""
    print(json.dumps(value, indent=2, default=repr))


@contextlib.contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """Send what is printed in the block to stderr, so stdout carries only the result.

    Python's ``sys.stdout`` is swapped, and file descriptor 1 is pointed at 2 for
    the block, so what child processes and C code print goes there too.
    """
    with contextlib.suppress(Exception):
        sys.stdout.flush()
    saved = None
    with contextlib.suppress(OSError, ValueError, AttributeError):
        if sys.stdout.fileno() == 1 and sys.stderr.fileno() == 2:
            saved = os.dup(1)
            os.dup2(2, 1)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        if saved is not None:
            os.dup2(saved, 1)
            os.close(saved)


def quiet_stdout() -> None:
    """After a reader closed stdout: point it at devnull so exiting writes nothing more.

    Python flushes stdout at exit; on a closed pipe that flush would print a
    second ``BrokenPipeError`` ("Exception ignored ...").
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    with contextlib.suppress(OSError, ValueError, AttributeError):
        os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
