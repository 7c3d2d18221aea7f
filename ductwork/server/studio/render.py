"""Drawing the studio's pages: the Jinja2 environment, a run's steps as shown, previews of
small outputs, and the metrics chart as inline SVG.

Templates autoescape everything; the only markup passed through unescaped is the
SVG drawn here or by ``dsl.svg`` (which escapes every piece of text it draws).
Every page is answered with a Content-Security-Policy that allows scripts only from
this server, so a value a step printed can never run as script in the page.

A preview reads an output only when its serializer is one that decodes bytes without
running code (``json``, ``str``, ``bytes``) and it is small: the server never
unpickles what a step wrote.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import json
from pathlib import Path
from typing import Any

from markupsafe import Markup
from starlette.responses import HTMLResponse

__all__ = ["chart_svg", "page", "preview", "step_rows"]

HERE = Path(__file__).parent
PREVIEW_BYTES = 64 * 1024
GRAPH_INLINE = 400  # nodes: a run page draws a graph this big inline, a bigger one apart
_CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
        "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; "
        "base-uri 'none'")
SECURITY_HEADERS = {"Content-Security-Policy": _CSP, "X-Frame-Options": "DENY",
                    "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff",
                    "Cache-Control": "no-store"}


def when(t: float | None) -> str:
    """A timestamp as local ``YYYY-mm-dd HH:MM:SS`` (``-`` for none)."""
    if t is None:
        return "-"
    return dt.datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M:%S")


def seconds(s: float | None) -> str:
    """A duration as ``0.42s``, ``12.3s``, ``2m 03s``."""
    from ductwork.runtime.ui.tally import format_seconds

    return format_seconds(s)


@functools.cache
def environment() -> Any:
    """The studio's Jinja2 environment (templates shipped in the package)."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"),
                             autoescape=True, trim_blocks=True, lstrip_blocks=True)
    env.filters["when"] = when
    env.filters["seconds"] = seconds
    env.filters["tojson_compact"] = lambda v: json.dumps(v, sort_keys=True, default=str)
    return env


def page(template: str, who: Any, status: int = 200, **context: Any) -> HTMLResponse:
    """A page rendered from ``template`` for the signed-in ``who`` (or None)."""
    html = environment().get_template(template).render(who=who, **context)
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)


def fragment(template: str, **context: Any) -> str:
    """A template rendered as a string (the live part of a page)."""
    return environment().get_template(template).render(**context)


def state_of(step: dict[str, Any]) -> str:
    """The state a step is shown in: its status, or ``cached`` for a hit."""
    return "cached" if step.get("cached") and step.get("status") == "succeeded" \
        else str(step.get("status", "pending"))


def step_rows(run: Any, live: dict[str, dict[str, Any]] | None, *, why_limit: int = 200
              ) -> list[dict[str, Any]]:
    """A run's steps as the run page shows them: from the record, or while the run runs,
    from what its child last wrote (``live``)."""
    if run is None:
        return []
    if live is not None and not run.steps:
        rows = []
        for sid, s in live.items():
            started, finished = s.get("started"), s.get("finished")
            rows.append({"id": sid, "step": s.get("step", sid), "status": s.get("status"),
                         "state": state_of(s), "cached": s.get("cached", False),
                         "cached_from": None, "duration": None if started is None or
                         finished is None else finished - started, "why": None,
                         "logs": s.get("logs", ""), "error": None, "metrics": {},
                         "outputs": {}, "map_index": s.get("map_index")})
        return rows
    explain = len(run.steps) <= why_limit
    rows = []
    for record in run.steps.values():
        status = str(record.status)
        why = None
        if explain and status in ("succeeded", "failed"):
            try:
                why = record.why
            except Exception as exc:  # a damaged record says so rather than failing the page
                why = f"(why cannot be told: {type(exc).__name__})"
        rows.append({
            "id": record.id, "step": record.step, "status": status,
            "state": state_of({"status": status, "cached": record.cached}),
            "cached": record.cached, "cached_from": getattr(record, "cached_from", None),
            "duration": record.duration, "why": why, "logs": record.logs or "",
            "error": record.error, "metrics": record.metrics or {},
            "outputs": record.output_refs, "map_index": record.map_index,
            "note": record.note,
        })
    return rows


def graph_svg(run: Any, rows: list[dict[str, Any]], limit: int | None = None) -> Markup:
    """The run's graph coloured by each step's state (``dsl.svg``), as markup; with more
    than ``limit`` nodes, a link to it drawn apart (``/runs/{id}/graph.svg``) instead."""
    from ductwork.dsl.svg import esc, pipeline_svg

    if run is None or not run.graph:
        return Markup('<p class="muted">This run recorded no graph.</p>')
    size = len(run.graph.get("nodes", ()))
    if limit is not None and size > limit:
        # Inline, a 2,000-step graph is 1.8 MB of SVG and 200,000 px wide: too slow to load
        # (issue [11]: <= 1 s) and too wide to read; the steps table and the link serve.
        return Markup(f'<p><a href="/runs/{esc(run.id)}/graph.svg" id="graph-link">The '
                      f"graph of its {size} nodes</a>, drawn on a page of its own (too big "
                      "to draw here).</p>")
    states = {r["id"]: r["state"] for r in rows if r["map_index"] is None}
    captions = {r["id"]: ("cached" if r["state"] == "cached" else seconds(r["duration"]))
                for r in rows if r["map_index"] is None and r["duration"] is not None}
    try:
        return Markup(pipeline_svg(run.graph, states, captions))
    except Exception as exc:  # a page must not fail over its picture
        return Markup(f"<p>The graph could not be drawn: {esc(type(exc).__name__)}</p>")


def output_info(ref: Any) -> dict[str, Any]:
    """An output's digest, serializer, size and types, for the run page."""
    from ductwork.runtime.store.refs import GatherRef

    if isinstance(ref, GatherRef):
        return {"digest": ref.digest, "serializer": "gather", "size": ref.size,
                "types": sorted({c for p in ref.parts for c in getattr(p, "classes", ())})}
    return {"digest": ref.digest, "serializer": ref.serializer, "size": ref.size,
            "types": list(ref.classes)}


def preview(artifacts: Any, ref: Any) -> dict[str, Any] | None:
    """A small output's preview: ``{"kind": "json"|"text"|"png", "text"|"src"}``, or None."""
    info = output_info(ref)
    if info["serializer"] not in ("json", "str", "bytes") or (info["size"] or 0) > PREVIEW_BYTES:
        return None
    try:
        value = artifacts.get(ref)
    except Exception:
        return None
    if isinstance(value, bytes):
        if value.startswith(b"\x89PNG\r\n\x1a\n"):
            return {"kind": "png", "src": "data:image/png;base64,"
                                          + base64.b64encode(value).decode()}
        return {"kind": "text", "text": value[:2000].decode("utf-8", "replace")}
    if isinstance(value, str):
        return {"kind": "text", "text": value[:4000]}
    if isinstance(value, list) and value and all(isinstance(r, dict) for r in value[:20]):
        columns = list(dict.fromkeys(k for r in value[:20] for k in r))
        return {"kind": "table", "columns": columns,
                "rows": [[r.get(c, "") for c in columns] for r in value[:20]]}
    return {"kind": "json", "text": json.dumps(value, indent=2, sort_keys=True)[:4000]}


def chart_svg(name: str, points: list[tuple[str, float, float]], width: int = 640,
              height: int = 200) -> Markup:
    """One metric over runs, oldest to newest, as a labelled inline SVG line chart."""
    from ductwork.dsl.svg import esc

    left, right, top, bottom = 56, 12, 12, 28
    values = [v for _, _, v in points]
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    step = (width - left - right) / max(len(points) - 1, 1)

    def y(v: float) -> float:
        return top + (height - top - bottom) * (1 - (v - low) / span)

    xy = [(left + i * step, y(v)) for i, v in enumerate(values)]
    path = " ".join(f"{x:.1f},{yy:.1f}" for x, yy in xy)
    dots = "".join(
        f'<circle cx="{x:.1f}" cy="{yy:.1f}" r="3" fill="#1f4e99"><title>{esc(run)}: '
        f"{v:g}</title></circle>" for (x, yy), (run, _, v) in zip(xy, points, strict=True))
    last = points[-1][2]
    return Markup(
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{esc(name)} over '
        f'{len(points)} runs, from {values[0]:g} to {last:g}">'
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{height - bottom}" stroke="#555"/>'
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" '
        f'y2="{height - bottom}" stroke="#555"/>'
        f'<text x="{left - 6}" y="{top + 4}" text-anchor="end" font-size="11" '
        f'fill="#222">{high:.4g}</text>'
        f'<text x="{left - 6}" y="{height - bottom}" text-anchor="end" font-size="11" '
        f'fill="#222">{low:.4g}</text>'
        f'<text x="{left}" y="{height - 8}" font-size="11" fill="#222">oldest</text>'
        f'<text x="{width - right}" y="{height - 8}" text-anchor="end" font-size="11" '
        f'fill="#222">newest</text>'
        f'<polyline points="{path}" fill="none" stroke="#1f4e99" stroke-width="2"/>'
        f"{dots}</svg>")
