"""The notebook display of a run's progress: an HTML view replaced in place.

``JupyterProgress`` shows the run in the current cell with IPython's
``display(..., display_id=True)`` and updates that handle from a ticker thread
at most 4 times a second (only when the HTML changed), and once more when the
run is over. The view is a stacked bar coloured like the graph's states
(``STATE_STYLE``), the counts and the clock, then the running steps (a map
with its element counts) and the failed ones with the gist of their error.
IPython is imported only when the view opens, and ``output=`` replaces it
(tests pass an object with ``show(html)`` and ``update(html)``). Every piece
of text is escaped.
"""

from __future__ import annotations

import threading

from ductwork.dsl.svg import STATE_STYLE, esc
from ductwork.runtime.status import Status
from ductwork.runtime.ui.display import _Display, _Ticker
from ductwork.runtime.ui.tally import CACHED, format_seconds

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["JupyterProgress"]

# The bar's segments, in order, and the counts written beside it.
_BAR = (Status.SUCCEEDED, CACHED, Status.FAILED, Status.SKIPPED, Status.CANCELLED, Status.RUNNING)
_COUNTED = (Status.RUNNING, CACHED, Status.FAILED, Status.SKIPPED)


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
        for state in _BAR:
            n = snap.count(state)
            if n:
                stroke = STATE_STYLE[state][1]
                bar.append(f'<div title="{n} {state}" style="width:{100 * n / total:.2f}%;'
                           f'background:{stroke if state != Status.SKIPPED else "#c4c4c4"}"></div>')
        counts = " · ".join(f"{snap.count(state)} {state}" for state in _COUNTED)
        if snap.status is None:
            clock = f"elapsed {format_seconds(snap.elapsed)}"
        else:
            colour = STATE_STYLE.get(snap.status, STATE_STYLE[Status.CANCELLED])[1]
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
                rows.append(self._row(Status.RUNNING, nid, detail))
            if snap.more_active:
                rows.append(self._row(Status.RUNNING, f"… {snap.more_active} more", ""))
        for nid, gist in snap.failures:
            rows.append(self._row(Status.FAILED, nid, gist))
        if snap.more_failures:
            rows.append(self._row(Status.FAILED, f"… {snap.more_failures} more", ""))
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
