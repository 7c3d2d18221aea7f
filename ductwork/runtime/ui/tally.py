"""Counting a run's progress: a ``Tally`` moved by every state change, read as a ``Snapshot``.

The scheduler reports every state change of every step run -- each element of
a map too, so thousands for a big map -- so ``Tally.change`` only moves
counters (O(1), under a lock). A display draws a ``Snapshot`` on its own clock,
never per event. A node's bucket is its ``Status``, except that a succeeded
step served from the cache counts as ``CACHED``. The text helpers here
(summary line, error gist, durations) are shared by the terminal, the notebook
and the HTML run view.
"""

from __future__ import annotations

import threading
import time

from ductwork.dsl.slotted import Frozen, fill
from ductwork.runtime.status import Status

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["CACHED", "FINAL", "Snapshot", "Tally", "element_summary", "error_line",
           "format_seconds", "step_state", "summary_line", "summary_parts"]

CACHED = "cached"  # a succeeded step served from the cache: counted apart from SUCCEEDED
FINAL = (Status.SUCCEEDED, CACHED, Status.FAILED, Status.SKIPPED, Status.CANCELLED)


class Snapshot(Frozen):
    """The counters of a run at one moment, for a display to draw."""

    __slots__ = ("pipeline", "run_id", "total", "counts", "elapsed", "status", "active",
                 "more_active", "failures", "more_failures")
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

    def __init__(self, pipeline: str, run_id: str, total: int, counts: dict[str, int],
                 elapsed: float, status: str | None, active: tuple[tuple[str, str], ...],
                 more_active: int, failures: tuple[tuple[str, str], ...],
                 more_failures: int) -> None:
        fill(self, pipeline, run_id, total, counts, elapsed, status, active, more_active,
             failures, more_failures)

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
        bucket = CACHED if status == Status.SUCCEEDED and record.cached else status
        with self._lock:
            old = self._state.get(record.id)
            self._state[record.id] = bucket
            if record.map_index is None:
                counts = self._nodes
                if status == Status.RUNNING:
                    self._running[record.id] = record
                else:
                    self._running.pop(record.id, None)
                if status == Status.FAILED:
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
            counts[Status.PENDING] = self._total - sum(
                v for k, v in counts.items() if k != Status.PENDING
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
    for state in (CACHED, Status.FAILED, Status.SKIPPED):
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
    if elements and elements.get(Status.FAILED, 0) > 1:
        gist = f"{elements[Status.FAILED]} elements failed; first: {gist}"
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
    failed, running = snap.count(Status.FAILED), snap.count(Status.RUNNING)
    if snap.status is None:
        tail = (f"elapsed {format_seconds(snap.elapsed)}", "")
    else:
        style = "green" if snap.status == Status.SUCCEEDED else "bold red"
        tail = (f"{snap.status} in {format_seconds(snap.elapsed)}", style)
    head = [("pipeline ", "dim"), (snap.pipeline, "bold"), (" run ", "dim"),
            (snap.run_id, ""), (": ", "")] if title else []
    return [
        *head, (f"{snap.done}/{snap.total} done", "bold"), (", ", ""),
        (f"{running} running", "yellow" if running else ""), (", ", ""),
        (f"{snap.count(CACHED)} cached", "blue" if snap.count(CACHED) else ""), (", ", ""),
        (f"{failed} failed", "bold red" if failed else ""), (", ", ""),
        (f"{snap.count(Status.SKIPPED)} skipped", "dim"), (" — ", ""), tail,
    ]


def summary_line(snap: Snapshot, *, title: bool = True) -> str:
    """``pipeline NAME run ID: X/Y done, R running, C cached, F failed, S skipped — elapsed T``."""
    return "".join(text for text, _ in summary_parts(snap, title=title))


def step_state(record: Any) -> str:
    """A step run's state in words: ``cached (from run 20261206-...)`` for a cache hit whose
    producing run is known, plain ``cached`` when it is not, else its status."""
    if record.cached and record.status == Status.SUCCEEDED:
        source = getattr(record, "cached_from", None)
        return f"cached (from run {source})" if source else CACHED
    return str(record.status)
