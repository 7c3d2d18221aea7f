"""Progress of a run as it goes: the interface the scheduler reports to, and its counting.

The runner calls ``started(run)``, the scheduler ``changed(record)`` on every
state change of every step run -- each element of a map too, so thousands of
calls for a big map -- and the runner ``finished(run)`` from a ``finally``, so
also when the run is interrupted. ``changed`` therefore only moves counters in
a ``Tally`` (O(1), under a lock); a display draws a ``Snapshot`` of it on its
own clock, never per event.

The displays live in their own modules, imported only when one is picked
(``progress_display`` holds what they share):

- ``progress_terminal``: ``RichProgress`` (a rich ``Live`` on stderr) and
  ``PlainProgress`` (one stderr line, when rich is not installed);
- ``progress_jupyter``: ``JupyterProgress``, an HTML view updated in place.

``make_progress`` picks one; ``choose_display`` is its rule as a pure function.
Their classes are re-exported here on first access, so importing this module
imports neither them nor rich, IPython or the SVG code.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any

import attrs

from ductwork.runtime.records.run import CANCELLED, FAILED, PENDING, RUNNING, SKIPPED, SUCCEEDED

CACHED = "cached"  # a succeeded step served from the cache: counted apart from SUCCEEDED
FINAL = (SUCCEEDED, CACHED, FAILED, SKIPPED, CANCELLED)
ENV = "DUCTWORK_PROGRESS"


class NullProgress:
    """Shows nothing (output is not a terminal, or ``progress=False``)."""

    def started(self, run: Any) -> None:
        """The run has begun; ``run.steps`` holds every node, pending."""

    def changed(self, record: Any) -> None:
        """A step run changed state (running, succeeded, failed, skipped, cached)."""

    def finished(self, run: Any) -> None:
        """The run is over; ``run.status`` is final."""


# -- choosing a display -------------------------------------------------------------------


def choose_display(progress: bool | None, *, env: str | None, in_kernel: bool,
                   isatty: bool) -> str:
    """Return ``"none"``, ``"jupyter"`` or ``"terminal"`` for these circumstances.

    ``False`` shows nothing; ``True`` always shows something; ``None`` follows
    ``DUCTWORK_PROGRESS`` (``env``: 0/1) if set, else shows progress in a
    notebook kernel or when stderr is a terminal.
    """
    if progress is None and env is not None:
        flag = env.strip().lower()
        if flag in ("0", "false", "no", "off"):
            progress = False
        elif flag in ("1", "true", "yes", "on"):
            progress = True
    if progress is False:
        return "none"
    if in_kernel:
        return "jupyter"
    if progress is True or isatty:
        return "terminal"
    return "none"


def in_kernel() -> bool:
    """True inside a Jupyter (IPython) kernel; never imports IPython to find out."""
    ipython = sys.modules.get("IPython")
    get_ipython = getattr(ipython, "get_ipython", None)
    if get_ipython is None:
        return False
    try:
        shell = get_ipython()
    except Exception:
        return False
    # A kernel's shell has a ``kernel``; the terminal IPython shell has not.
    return getattr(shell, "kernel", None) is not None


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream is not None and stream.isatty())
    except Exception:
        return False


def _have_rich() -> bool:
    if "rich" in sys.modules:
        return True
    import importlib.util

    return importlib.util.find_spec("rich") is not None


def make_progress(progress: bool | None) -> Any:
    """Return the display for this run: None means 'in a notebook or when stderr is a terminal'.

    A display object (with ``started``, ``changed`` and ``finished``) is returned as it is.
    """
    if not isinstance(progress, bool | None):
        if all(callable(getattr(progress, m, None)) for m in ("started", "changed", "finished")):
            return progress
        from ductwork.runtime.runner import RunOptionError

        raise RunOptionError(f"progress= takes True, False or None, got {progress!r}.")
    kind = choose_display(progress, env=os.environ.get(ENV), in_kernel=in_kernel(),
                          isatty=_isatty(sys.stderr))
    if kind == "jupyter":
        from ductwork.runtime.ui.jupyter import JupyterProgress

        return JupyterProgress()
    if kind == "terminal":
        from ductwork.runtime.ui.terminal import PlainProgress, RichProgress

        if _have_rich() and _isatty(sys.stderr):
            return RichProgress()
        return PlainProgress()
    return NullProgress()


# -- counting -----------------------------------------------------------------------------


@attrs.frozen
class Snapshot:
    """The counters of a run at one moment, for a display to draw."""

    pipeline: str
    run_id: str
    total: int
    counts: dict[str, int]  # node states: pending, running, succeeded, cached, failed, ...
    elapsed: float
    status: str | None  # the run's final status once it is over, else None
    active: tuple[tuple[str, str], ...]  # running nodes: (id, "37/100 · 3 cached" or "")
    more_active: int
    failures: tuple[tuple[str, str], ...]  # failed nodes: (id, the error's gist)
    more_failures: int

    @property
    def done(self) -> int:
        """Nodes in a final state (succeeded, cached, failed, skipped)."""
        return sum(self.counts.get(s, 0) for s in FINAL)

    def count(self, state: str) -> int:
        """Nodes in ``state``."""
        return self.counts.get(state, 0)


class Tally:
    """Counts node and map-element states from ``changed`` calls, in O(1) each."""

    def __init__(self, max_listed: int = 8) -> None:
        self.max_listed = max_listed
        self.version = 0  # moves on every change, so a display can tell nothing happened
        self._lock = threading.Lock()
        self._state: dict[str, str] = {}
        self._nodes: dict[str, int] = {}
        self._elements: dict[str, dict[str, int]] = {}
        self._running: dict[str, Any] = {}
        self._failed: dict[str, Any] = {}
        self._total = 0
        self._pipeline = self._run_id = ""
        self._t0: float | None = None
        self._wall0: float | None = None
        self._end: float | None = None
        self._status: str | None = None

    def start(self, run: Any) -> None:
        """Take the run's name, id, start time and number of nodes."""
        with self._lock:
            self._pipeline, self._run_id = str(run.pipeline), str(run.id)
            self._total = sum(1 for s in run.steps.values() if s.map_index is None)
            self._t0 = time.monotonic()
            self._wall0 = run.started if run.started is not None else time.time()
            self.version += 1

    def change(self, record: Any) -> None:
        """Move ``record`` from the bucket it was in to the one of its new state."""
        status = record.status
        bucket = CACHED if status == SUCCEEDED and record.cached else status
        with self._lock:
            old = self._state.get(record.id)
            self._state[record.id] = bucket
            if record.map_index is None:
                counts = self._nodes
                if status == RUNNING:
                    self._running[record.id] = record
                else:
                    self._running.pop(record.id, None)
                if status == FAILED:
                    self._failed[record.id] = record
                else:
                    self._failed.pop(record.id, None)
            else:
                node = record.id[: len(record.id) - len(str(record.map_index)) - 2]
                counts = self._elements.get(node)
                if counts is None:
                    counts = self._elements[node] = {}
            if old is not None:
                counts[old] -= 1
            counts[bucket] = counts.get(bucket, 0) + 1
            self.version += 1

    def finish(self, run: Any) -> None:
        """Stop the clock and take the run's final status."""
        with self._lock:
            self._end = time.monotonic()
            self._status = run.status
            self.version += 1

    def snapshot(self) -> Snapshot:
        """The counters now (cheap: the lists it copies are capped)."""
        with self._lock:
            counts = {k: v for k, v in self._nodes.items() if v}
            counts[PENDING] = self._total - sum(
                v for k, v in counts.items() if k != PENDING
            )
            now = self._end if self._end is not None else time.monotonic()
            elapsed = now - self._t0 if self._t0 is not None else 0.0
            active = tuple(
                (nid, self._map_detail(nid)) for nid in _first(self._running, self.max_listed)
            )
            failures = tuple(
                (nid, _failure(self._failed[nid], self._elements.get(nid)))
                for nid in _first(self._failed, self.max_listed)
            )
            return Snapshot(
                self._pipeline, self._run_id, self._total, counts, elapsed, self._status,
                active, max(0, len(self._running) - len(active)), failures,
                max(0, len(self._failed) - len(failures)),
            )

    def _map_detail(self, nid: str) -> str:
        counts = self._elements.get(nid)
        if not counts:
            return ""
        return element_summary(counts)


def element_summary(counts: dict[str, int]) -> str:
    """``"37/100 · 3 cached · 1 failed"`` for the element counts of one map."""
    total = sum(counts.values())
    done = sum(counts.get(s, 0) for s in FINAL)
    parts = [f"{done}/{total}"]
    for state in (CACHED, FAILED, SKIPPED):
        if counts.get(state):
            parts.append(f"{counts[state]} {state}")
    return " · ".join(parts)


def _first(items: dict[str, Any], n: int) -> list[str]:
    out = []
    for key in items:
        if len(out) == n:
            break
        out.append(key)
    return out


def _failure(record: Any, elements: dict[str, int] | None) -> str:
    gist = error_line(record.error)
    if elements and elements.get(FAILED, 0) > 1:
        gist = f"{elements[FAILED]} elements failed; first: {gist}"
    return gist


def error_line(error: str | None, limit: int = 160) -> str:
    """The gist of an error in one line: a traceback's last line (the exception), else the first.

    A leading line before the traceback (``element 3 failed:``) is kept in front.
    """
    lines = [line.strip() for line in (error or "").splitlines() if line.strip()]
    if not lines:
        return ""
    if any(line.startswith("Traceback (most recent call last)") for line in lines):
        gist = lines[-1]
        if not lines[0].startswith("Traceback"):
            gist = f"{lines[0]} {gist}"
    else:
        gist = lines[0]
    return gist if len(gist) <= limit else gist[: limit - 1] + "…"


def format_seconds(seconds: float | None) -> str:
    """``0.42s``, ``12.3s``, ``2m 03s``, ``1h 02m``."""
    if seconds is None:
        return "-"
    if seconds < 10:
        return f"{seconds:.2f}s"
    if seconds < 60:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        return f"{int(seconds // 60)}m {int(seconds % 60):02d}s"
    return f"{int(seconds // 3600)}h {int(seconds % 3600 // 60):02d}m"


def summary_parts(snap: Snapshot, *, title: bool = True) -> list[tuple[str, str]]:
    """The summary line as (text, rich style) pieces; joined, they are the plain line.

    ``title=False`` leaves out ``pipeline NAME run ID:`` in front.
    """
    failed, running = snap.count(FAILED), snap.count(RUNNING)
    if snap.status is None:
        tail = (f"elapsed {format_seconds(snap.elapsed)}", "")
    else:
        style = "green" if snap.status == SUCCEEDED else "bold red"
        tail = (f"{snap.status} in {format_seconds(snap.elapsed)}", style)
    head = [("pipeline ", "dim"), (snap.pipeline, "bold"), (" run ", "dim"),
            (snap.run_id, ""), (": ", "")] if title else []
    return [
        *head, (f"{snap.done}/{snap.total} done", "bold"), (", ", ""),
        (f"{running} running", "yellow" if running else ""), (", ", ""),
        (f"{snap.count(CACHED)} cached", "blue" if snap.count(CACHED) else ""), (", ", ""),
        (f"{failed} failed", "bold red" if failed else ""), (", ", ""),
        (f"{snap.count(SKIPPED)} skipped", "dim"), (" — ", ""), tail,
    ]


def summary_line(snap: Snapshot, *, title: bool = True) -> str:
    """``pipeline NAME run ID: X/Y done, R running, C cached, F failed, S skipped — elapsed T``."""
    return "".join(text for text, _ in summary_parts(snap, title=title))


# -- the displays, re-exported lazily ------------------------------------------------------

_DISPLAYS = {
    "RichProgress": "ductwork.runtime.ui.terminal",
    "PlainProgress": "ductwork.runtime.ui.terminal",
    "JupyterProgress": "ductwork.runtime.ui.jupyter",
}


def __getattr__(name: str) -> Any:
    """Import a display class from its module the first time it is asked for here."""
    module = _DISPLAYS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
