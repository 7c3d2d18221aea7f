"""The terminal displays of a run's progress, both drawn on stderr on their own clock.

- ``RichProgress``: a rich ``Live`` redrawn 8 times a second -- a bar and the
  summary line, a spinner per running step (a map shows its element counts),
  and the failed steps with the gist of their error. rich is imported only
  when the view opens.
- ``PlainProgress``: one line, for when rich is not installed. On a terminal
  it is rewritten in place with ``\\r`` twice a second and cut to the
  terminal's width; elsewhere (a log file, CI) a new line is written every few
  seconds, and only when something changed.

Both count through ``display._Display`` and draw its ``Snapshot``; an error
while drawing turns the display off rather than failing the run.

- ``StepLines``: a plain line per step as it finishes (``step fit succeeded in
  1.204s``, ``step load cached (from run 20261206-...)``), for the command line
  where stderr is not a terminal: a CI log shows the run as it goes. It writes
  per event, but only for whole steps (not map elements), once each; what a
  step run in another process printed can follow its line (``echo_logs``).
"""

from __future__ import annotations

import sys
import threading
import time

from ductwork.runtime.status import Status
from ductwork.runtime.ui.display import NullProgress, _Display, _Ticker, isatty
from ductwork.runtime.ui.tally import error_line, step_state, summary_line, summary_parts

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, TextIO

__all__ = ["PlainProgress", "RichProgress", "StepLines"]

_DONE = (Status.SUCCEEDED, Status.FAILED, Status.SKIPPED, Status.CANCELLED)


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
        colour = "red" if snap.count(Status.FAILED) else "green"
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
        self._tty = isatty(self._out)
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


class StepLines(NullProgress):
    """A plain line on stderr (or ``stream``) per step as it finishes; once per step.

    ``echo_logs``: follow the line with what the step printed, indented -- for
    backends that capture a step's output in another process, so a CI log shows
    it (in-process steps print through as they go).
    """

    def __init__(self, stream: TextIO | None = None, echo_logs: bool = False) -> None:
        self._stream = stream
        self.echo_logs = echo_logs
        self._written: set[str] = set()
        self._lock = threading.Lock()
        self._on = True

    def started(self, run: Any) -> None:
        self._written = set()  # a display passed to a second run starts over
        self._on = True

    def changed(self, record: Any) -> None:
        if record.map_index is not None or record.status not in _DONE or not self._on:
            return
        with self._lock:
            if record.id in self._written:
                return
            self._written.add(record.id)
            try:
                out = self._stream or sys.stderr
                out.write(self.line(record) + "\n")
                if self.echo_logs and record.logs:
                    out.writelines(f"  {text}\n" for text in record.logs.splitlines())
                out.flush()
            except Exception:  # progress never fails a run (a closed stderr)
                self._on = False

    @staticmethod
    def line(record: Any) -> str:
        """The line of a finished step."""
        state = step_state(record)
        if record.cached or record.duration is None:
            text = f"step {record.id} {state}"
        else:
            text = f"step {record.id} {state} in {record.duration:.3f}s"
        gist = error_line(record.error) if record.status == Status.FAILED else (
            record.note or "")
        return f"{text}: {gist}" if gist else text

