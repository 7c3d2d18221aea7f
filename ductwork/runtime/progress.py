"""Progress of a run as it goes: the interface the scheduler reports to, and its displays.

The runner calls ``started(run)``, the scheduler ``changed(record)`` on every
state change of every step run -- each element of a map too, so thousands of
calls for a big map -- and the runner ``finished(run)`` from a ``finally``, so
also when the run is interrupted. ``changed`` therefore only moves counters in
a ``Tally`` (O(1), under a lock); a display draws a ``Snapshot`` of it on its
own clock, never per event:

- ``RichProgress``: a rich ``Live`` on stderr, redrawn 8 times a second;
- ``PlainProgress``: one stderr line rewritten with ``\\r`` twice a second (or,
  when stderr is not a terminal, a line every few seconds when something
  changed), used when rich is not installed;
- ``JupyterProgress``: an HTML display updated in place, at most 4 times a
  second, and once more at the end.

``make_progress`` picks one; ``choose_display`` is its rule as a pure function.
rich and IPython are imported only by the display that uses them. A display
never fails a run: an error inside one turns it off.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TextIO

import attrs

from ductwork.dsl.svg import STATE_STYLE, esc
from ductwork.runtime.run import CANCELLED, FAILED, PENDING, RUNNING, SKIPPED, SUCCEEDED

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
        return JupyterProgress()
    if kind == "terminal":
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


# -- displays -----------------------------------------------------------------------------


class _Ticker:
    """Call ``tick`` every ``interval`` seconds on a daemon thread until stopped."""

    def __init__(self, interval: float, tick: Callable[[], None]) -> None:
        self._interval = interval
        self._tick = tick
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="ductwork-progress",
                                        daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._tick()
            except Exception:
                return

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=2)


class _Display(NullProgress):
    """Counts into a ``Tally``; subclasses draw it. Errors in drawing turn the display off."""

    def __init__(self, max_listed: int = 8) -> None:
        self.tally = Tally(max_listed)
        self._on = False

    def started(self, run: Any) -> None:
        self.tally = Tally(self.tally.max_listed)  # a display passed to a second run starts over
        self.tally.start(run)
        try:
            self._open()
            self._on = True
        except Exception:
            self._on = False

    def changed(self, record: Any) -> None:
        self.tally.change(record)

    def finished(self, run: Any) -> None:
        self.tally.finish(run)
        if self._on:
            self._on = False
            with contextlib.suppress(Exception):
                self._close()

    def _open(self) -> None:
        raise NotImplementedError

    def _close(self) -> None:
        raise NotImplementedError


class RichProgress(_Display):
    """A rich ``Live`` view on stderr: a bar and summary line, running and failed steps."""

    def __init__(self, console: Any = None, refresh_per_second: float = 8.0,
                 max_listed: int = 8) -> None:
        super().__init__(max_listed)
        self._console = console
        self._refresh = refresh_per_second
        self._live: Any = None
        self._spinners: dict[str, Any] = {}

    def _open(self) -> None:
        from rich.console import Console
        from rich.live import Live

        # Bound to the stream as it is now: a step's captured stderr must not get the view.
        console = self._console or Console(file=sys.stderr)
        self._live = Live(console=console, get_renderable=self.renderable,
                          refresh_per_second=self._refresh, transient=False)
        self._live.start()

    def _close(self) -> None:
        refresher = getattr(self._live, "_refresh_thread", None)
        self._live.stop()  # draws the final state once more
        if refresher is not None:  # stop() only signals it; nothing may draw after this
            refresher.join(timeout=2)

    def renderable(self) -> Any:
        """What the view shows now, as a rich renderable."""
        from rich.console import Group
        from rich.progress_bar import ProgressBar
        from rich.spinner import Spinner
        from rich.table import Table
        from rich.text import Text

        snap = self.tally.snapshot()
        # The summary line, split in two so it fits a terminal: who, then how far.
        title = Text.assemble(("pipeline ", "dim"), (snap.pipeline, "bold"), (" run ", "dim"),
                              snap.run_id)
        colour = "red" if snap.count(FAILED) else "green"
        bar = ProgressBar(total=max(snap.total, 1), completed=snap.done, width=20,
                          complete_style="yellow" if snap.status is None else colour,
                          finished_style=colour)
        head = Table.grid(padding=(0, 1))
        head.add_row(bar, Text.assemble(*summary_parts(snap, title=False)))
        rows: list[Any] = [title, head]
        if snap.status is None and snap.active:
            grid = Table.grid(padding=(0, 1))
            for nid, detail in snap.active:
                spinner = self._spinners.get(nid)
                if spinner is None:
                    spinner = self._spinners[nid] = Spinner("dots", style="yellow")
                grid.add_row(spinner, Text(nid, style="bold"), Text(detail, style="dim"))
            if snap.more_active:
                grid.add_row("", Text(f"… {snap.more_active} more running", style="dim"), "")
            rows.append(grid)
        for nid, gist in snap.failures:
            rows.append(Text.assemble(("✗ ", "bold red"), (nid, "bold red"), ": ", gist))
        if snap.more_failures:
            rows.append(Text(f"… {snap.more_failures} more failed", style="red"))
        return Group(*rows)


class PlainProgress(_Display):
    """One stderr line, for when rich is not installed.

    On a terminal the line is rewritten in place (``\\r``) every ``interval``
    seconds; elsewhere (a log file, CI) a new line is written when something
    changed, at most every ``every`` seconds.
    """

    def __init__(self, stream: TextIO | None = None, interval: float = 0.5,
                 every: float = 5.0, width: int | None = None) -> None:
        super().__init__(max_listed=3)
        self._stream = stream
        self._interval = interval
        self._every = every
        self._width = width
        self._ticker: _Ticker | None = None
        self._last_len = 0
        self._last_version = -1
        self._last_write = 0.0
        self._lock = threading.Lock()

    def _open(self) -> None:
        self._out = self._stream or sys.stderr
        self._tty = _isatty(self._out)
        if self._width is None:
            import shutil

            self._width = shutil.get_terminal_size((100, 20)).columns
        self._ticker = _Ticker(self._interval, self._tick)

    def _close(self) -> None:
        assert self._ticker is not None
        self._ticker.stop()
        self._write(final=True)

    def _tick(self) -> None:
        version = self.tally.version
        if self._tty:
            self._write()
        elif version != self._last_version and time.monotonic() - self._last_write >= self._every:
            self._write()

    def line(self, *, title: bool = True) -> str:
        """The line as it would be written now."""
        snap = self.tally.snapshot()
        text = summary_line(snap, title=title)
        if snap.status is None and snap.active:
            names = [f"{nid} {detail}".strip() for nid, detail in snap.active]
            more = f" +{snap.more_active}" if snap.more_active else ""
            text += " | running: " + ", ".join(names) + more
        return text

    def _write(self, final: bool = False) -> None:
        with self._lock:
            self._last_version = self.tally.version
            self._last_write = time.monotonic()
            text = self.line()
            if self._tty:
                width = max(20, (self._width or 100) - 1)
                if len(text) > width:  # keep the counts and the clock; drop the names
                    text = self.line(title=False)
                if len(text) > width:
                    text = text[: width - 1] + "…"
                pad = " " * max(0, self._last_len - len(text))
                self._last_len = len(text)
                self._out.write("\r" + text + pad + ("\n" if final else ""))
            else:
                self._out.write(text + "\n")
            self._out.flush()


class _IPythonOutput:
    """Shows HTML in the current notebook cell and replaces it in place."""

    def __init__(self) -> None:
        self._handle: Any = None

    def show(self, html: str) -> None:
        from IPython.display import HTML, display

        self._handle = display(HTML(html), display_id=True)

    def update(self, html: str) -> None:
        from IPython.display import HTML

        self._handle.update(HTML(html))


class JupyterProgress(_Display):
    """An HTML view in the notebook cell, updated at most every ``interval`` seconds.

    ``output`` has ``show(html)`` and ``update(html)``; it defaults to IPython's
    ``display(..., display_id=True)`` and the handle's ``update``.
    """

    def __init__(self, output: Any = None, interval: float = 0.25, max_listed: int = 8) -> None:
        super().__init__(max_listed)
        self._output = output
        self._interval = max(0.25, interval)
        self._ticker: _Ticker | None = None
        self._lock = threading.Lock()
        self._shown = ""

    def _open(self) -> None:
        if self._output is None:
            self._output = _IPythonOutput()
        self._shown = self.html()
        self._output.show(self._shown)
        self._ticker = _Ticker(self._interval, self._tick)

    def _close(self) -> None:
        assert self._ticker is not None
        self._ticker.stop()
        self._update()

    def _tick(self) -> None:
        self._update()

    def _update(self) -> None:
        with self._lock:
            html = self.html()
            if html != self._shown:  # the clock alone changes it, so a tick redraws
                self._output.update(html)
                self._shown = html

    def html(self) -> str:
        """The view now, as HTML."""
        snap = self.tally.snapshot()
        total = max(snap.total, 1)
        bar = []
        for state in (SUCCEEDED, CACHED, FAILED, SKIPPED, CANCELLED, RUNNING):
            n = snap.count(state)
            if n:
                stroke = STATE_STYLE[state][1]
                bar.append(f'<div title="{n} {state}" style="width:{100 * n / total:.2f}%;'
                           f'background:{stroke if state != SKIPPED else "#c4c4c4"}"></div>')
        counts = " · ".join(
            f"{snap.count(state)} {state}" for state in (RUNNING, CACHED, FAILED, SKIPPED)
        )
        if snap.status is None:
            clock = f"elapsed {format_seconds(snap.elapsed)}"
        else:
            colour = STATE_STYLE.get(snap.status, STATE_STYLE[CANCELLED])[1]
            clock = (f'<b style="color:{colour}">{esc(snap.status)}</b> in '
                     f"{format_seconds(snap.elapsed)}")
        out = [
            '<div class="ductwork-progress" style="font-family:system-ui,-apple-system,'
            'Segoe UI,Roboto,sans-serif;font-size:13px;line-height:1.5">',
            f'<div><span style="color:#777">pipeline</span> <b>{esc(snap.pipeline)}</b> '
            f'<span style="color:#777">run</span> <code>{esc(snap.run_id)}</code></div>',
            '<div style="display:flex;align-items:center;gap:10px">'
            '<div style="display:flex;width:260px;height:10px;border-radius:5px;'
            f'overflow:hidden;background:#e6e6e6">{"".join(bar)}</div>'
            f"<span><b>{snap.done}/{snap.total} done</b> · {counts} · {clock}</span></div>",
        ]
        rows = []
        if snap.status is None:
            for nid, detail in snap.active:
                rows.append(self._row("running", nid, detail))
            if snap.more_active:
                rows.append(self._row("running", f"… {snap.more_active} more", ""))
        for nid, gist in snap.failures:
            rows.append(self._row("failed", nid, gist))
        if snap.more_failures:
            rows.append(self._row("failed", f"… {snap.more_failures} more", ""))
        if rows:
            out.append('<table style="border-collapse:collapse;margin-top:4px">'
                       + "".join(rows) + "</table>")
        out.append("</div>")
        return "".join(out)

    @staticmethod
    def _row(state: str, name: str, detail: str) -> str:
        fill, stroke, ink = STATE_STYLE[state]
        return (f'<tr><td style="padding:1px 8px 1px 0"><span style="background:{fill};'
                f'color:{ink};border:1px solid {stroke};border-radius:3px;padding:0 5px;'
                f'font-size:11px">{state}</span></td>'
                f'<td style="padding:1px 8px 1px 0"><code>{esc(name)}</code></td>'
                f'<td style="padding:1px 0;color:#555">{esc(detail)}</td></tr>')
