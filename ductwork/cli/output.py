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


#: Outputs up to this size are read back to show their value; larger ones are described.
SMALL_OUTPUT = 64 * 1024
_REPR_WIDTH = 60


def size_text(size: int) -> str:
    """Bytes in decimal units: ``812 B``, ``200.0 kB``, ``12.3 MB``."""
    if size < 1000:
        return f"{size} B"
    for unit in ("kB", "MB", "GB", "TB"):
        size /= 1000
        if size < 1000 or unit == "TB":
            return f"{size:.1f} {unit}"
    raise AssertionError("unreachable")


def _short_repr(value: Any) -> str:
    import reprlib

    shorten = reprlib.Repr()
    shorten.maxstring = shorten.maxother = shorten.maxlong = _REPR_WIDTH
    shorten.maxlist = shorten.maxtuple = shorten.maxset = shorten.maxdict = 6
    text = shorten.repr(value)
    return text if len(text) <= _REPR_WIDTH else text[: _REPR_WIDTH - 3] + "..."


def output_text(record: Any, name: str) -> str:
    """One output of a step for a listing: a short repr when it is small, else its type,
    size and digest. A large artifact is never read back just to be printed."""
    ref = record.output_refs[name]
    classes = getattr(ref, "classes", None)
    if classes is None:  # a map's gathered list
        kind = f"list of {len(ref.parts)}"
    else:
        # The classes a value is made of are recorded for user types; else the serializer
        # ("bytes", "json", "numpy") says what it is.
        kind = ", ".join(c.rpartition(".")[2] for c in classes) or ref.serializer
    described = f"{kind}, {size_text(ref.size)}, {ref.digest[:10]}"
    if ref.size > SMALL_OUTPUT:
        return described
    try:
        return _short_repr(record.output_value(name))
    except Exception as exc:  # a missing or damaged artifact: say so, show what is known
        return f"{described} (unreadable: {type(exc).__name__})"


def metrics_text(metrics: dict[str, Any]) -> str:
    """Metrics as ``name=value`` pairs, each value shortened."""
    return ", ".join(f"{name}={_short_repr(value)}" for name, value in metrics.items())
