"""Rich HTML views of runs (``Run._repr_html_``) and pipelines (``Pipeline._repr_html_``).

A run is shown as a header (pipeline, run id, status, duration, parameters),
its graph coloured by step state -- drawn from the graph the run recorded, so
an old run shows the pipeline as it was then -- and a table of steps. A map's
elements are summarised under their node (how many, cached, failed) and at
most ``max_elements`` of them are listed (failed ones are picked first), so
a map of 10,000 elements stays a page. Everything shown is escaped.

``pipeline_html`` lives in ``ductwork.dsl.svg`` (the DSL may not import the
runtime) and is re-exported here.
"""

from __future__ import annotations

import datetime as _dt

from ductwork.dsl.svg import STATE_STYLE, esc, pipeline_html, pipeline_svg, short_repr
from ductwork.runtime.status import Status
from ductwork.runtime.ui.tally import (
    CACHED,
    FINAL,
    element_summary,
    error_line,
    format_seconds,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["pipeline_html", "run_html", "step_state"]

_ORDER = (Status.SUCCEEDED, CACHED, Status.FAILED, Status.SKIPPED, Status.CANCELLED,
          Status.RUNNING, Status.PENDING)
_FONT = "font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;font-size:13px"
_CELL = "padding:2px 10px 2px 0;text-align:left;vertical-align:top;border-bottom:1px solid #eee"


def step_state(record: Any) -> str:
    """The state to show for a step run: its status, or ``cached`` for a cache hit."""
    return CACHED if record.status == Status.SUCCEEDED and record.cached else str(record.status)


def run_html(run: Any, *, max_elements: int = 50) -> str:
    """HTML for ``Run._repr_html_``: header, graph coloured by state, table of steps."""
    nodes: list[Any] = []
    elements: dict[str, list[Any]] = {}
    for record in run.steps.values():
        if record.map_index is None:
            nodes.append(record)
        else:
            node = record.id[: len(record.id) - len(str(record.map_index)) - 2]
            elements.setdefault(node, []).append(record)
    counts = {nid: _counts(recs) for nid, recs in elements.items()}
    out = [f'<div class="ductwork-run" style="{_FONT};line-height:1.45">', _header(run)]
    if run.graph:
        states = {r.id: step_state(r) for r in nodes}
        captions = {}
        for r in nodes:
            if r.id in counts:
                captions[r.id] = element_summary(counts[r.id])
            elif step_state(r) == CACHED:
                captions[r.id] = "cached"
            elif r.status in FINAL and r.duration is not None:
                captions[r.id] = format_seconds(r.duration)
        try:
            svg = pipeline_svg(run.graph, states, captions)
        except Exception as exc:  # a repr must not raise: say what went wrong instead
            svg = f"<i>the graph could not be drawn: {esc(type(exc).__name__)}: {esc(exc)}</i>"
        out.append(f'<div style="margin:6px 0">{svg}</div>')
    else:
        out.append('<div style="color:#777;margin:6px 0">(this run recorded no graph)</div>')
    out.append(_steps_table(nodes, elements, counts, max_elements))
    out.append("</div>")
    return "\n".join(out)


def _counts(records: list[Any]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in records:
        state = step_state(r)
        counts[state] = counts.get(state, 0) + 1
    return counts


def _badge(state: str) -> str:
    fill, stroke, ink = STATE_STYLE.get(state, STATE_STYLE[Status.CANCELLED])
    return (f'<span style="background:{fill};color:{ink};border:1px solid {stroke};'
            f'border-radius:3px;padding:0 5px;font-size:11px;white-space:nowrap">'
            f"{esc(state)}</span>")


def _header(run: Any) -> str:
    facts = []
    if run.started is not None:
        started = _dt.datetime.fromtimestamp(run.started).astimezone()
        facts.append(f"started {started:%Y-%m-%d %H:%M:%S}")
    facts.append(f"duration {format_seconds(run.duration)}")
    if getattr(run, "backend", None):
        facts.append(f"backend {run.backend}")
    if getattr(run, "git_commit", None):
        facts.append(f"git {run.git_commit[:10]}{' (dirty)' if run.git_dirty else ''}")
    lines = [
        f'<div><span style="color:#777">run</span> <code>{esc(run.id)}</code> '
        f'<span style="color:#777">of pipeline</span> <b>{esc(run.pipeline)}</b> '
        f"{_badge(str(run.status))}</div>",
        f'<div style="color:#555">{esc(" · ".join(facts))}</div>',
    ]
    if run.params:
        rows = "".join(
            f'<tr><td style="padding:0 10px 0 0"><code>{esc(name)}</code></td>'
            f"<td><code>{esc(short_repr(value, 100))}</code></td></tr>"
            for name, value in run.params.items()
        )
        lines.append(f'<table style="border-collapse:collapse;margin:2px 0">{rows}</table>')
    return "\n".join(lines)


def _steps_table(nodes: list[Any], elements: dict[str, list[Any]],
                 counts: dict[str, dict[str, int]], max_elements: int) -> str:
    head = "".join(f'<th style="{_CELL}">{h}</th>'
                   for h in ("step", "state", "cached", "duration", "attempts", "error"))
    rows = [f"<tr>{head}</tr>"]
    for record in nodes:
        rows.append(_row(record, label=record.id + (" (map)" if record.id in elements else "")))
        if record.id in elements:
            rows.append(_elements(elements[record.id], counts[record.id], max_elements))
    return f'<table style="border-collapse:collapse;margin-top:4px">{"".join(rows)}</table>'


def _row(record: Any, label: str) -> str:
    state = step_state(record)
    error = record.error or ""
    title = f' title="{esc(error[-2000:])}"' if error else ""
    return (
        f'<tr><td style="{_CELL}"><code>{esc(label)}</code></td>'
        f'<td style="{_CELL}">{_badge(state)}</td>'
        f'<td style="{_CELL}">{"yes" if record.cached else ""}</td>'
        f'<td style="{_CELL}">{esc(format_seconds(record.duration))}</td>'
        f'<td style="{_CELL}">{record.attempts or ""}</td>'
        f'<td style="{_CELL};color:#a00"{title}>{esc(error_line(error))}</td></tr>'
    )


def _elements(records: list[Any], counts: dict[str, int], limit: int) -> str:
    total = len(records)
    parts = [f"{total} element{'s' if total != 1 else ''}"]
    order = {state: i for i, state in enumerate(_ORDER)}
    parts += [f"{n} {state}" for state, n in
              sorted(counts.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0]))]
    summary = esc(", ".join(parts))
    # Failed elements first (the ones worth looking at), then the rest in order.
    shown = [r for r in records if r.status == Status.FAILED][:limit]
    shown += [r for r in records if r.status != Status.FAILED][: limit - len(shown)]
    shown.sort(key=lambda r: r.map_index)
    rows = "".join(_row(r, label=r.id) for r in shown)
    if total > len(shown):
        rows += (f'<tr><td colspan="6" style="{_CELL};color:#777">… {total - len(shown)} more '
                 "elements not shown</td></tr>")
    return (
        f'<tr><td colspan="6" style="padding:0 0 4px 16px"><details>'
        f'<summary style="cursor:pointer;color:#555">{summary}</summary>'
        f'<table style="border-collapse:collapse">{rows}</table></details></td></tr>'
    )
