"""The step graph as an inline SVG picture, drawn here with no external tool.

The input is the plain dict of ``plan_to_dict`` (also what a run records), so
neither networkx nor graphviz is needed. ``pipeline_svg`` collects the nodes
and edges, has ``layout`` put them in layers, add waypoints to long edges and
order each layer (a small Sugiyama, pure geometry), then draws:

- Coordinates: each layer is a column (a row when top-down), centred; a box
  is as wide as its label in a monospace font; the gap after a layer is as
  wide as the edge labels leaving it.
- Boxes are coloured by node state (``STATE_STYLE``), a map has a double
  border, and a caption can add a second line.
- Edges are cubic curves through their waypoints, spread along a box's side
  (``layout.ports``), with an arrowhead drawn as a polygon (no ``<marker>``,
  whose ids would collide between several pictures on one notebook page).

Every piece of text is escaped for XML.

``pipeline_html`` (the HTML repr of a ``Pipeline``) lives here too because the
DSL layer may not import the runtime, where ``run_html`` lives.
"""

from __future__ import annotations

import html
import inspect
import unicodedata
from collections.abc import Iterable

from ductwork.dsl import layout
from ductwork.dsl.options import SINGLE_OUTPUT

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

# state -> (fill, stroke, text colour)
STATE_STYLE: dict[str, tuple[str, str, str]] = {
    "pending": ("#ffffff", "#9e9e9e", "#212121"),
    "running": ("#ffe082", "#ef8f00", "#212121"),
    "succeeded": ("#c8e6c9", "#2e7d32", "#1b3d1d"),
    "cached": ("#cfe3f7", "#4a78a8", "#1a2f47"),
    "failed": ("#ffcdd2", "#c62828", "#5f1010"),
    "skipped": ("#f0f0f0", "#c4c4c4", "#8a8a8a"),
    "cancelled": ("#e0e0e0", "#757575", "#424242"),
}
_PLAIN = ("#f7f8fb", "#5b6b8c", "#1f2a40")

FONT = 12
CHAR_W = 7.25  # advance of one character of a 12px monospace font
PAD = 12  # inside a box, either side of its label
BOX_H = 30
CAPTION_H = 13
GAP = 56  # between layers, at least
SLOT_GAP = 16  # between boxes in one layer
WAYPOINT = 6  # cross size of an edge's slot in a layer it passes through
MARGIN = 10
ARROW = 7

_MONO = "ui-monospace, SFMono-Regular, Menlo, Consolas, 'DejaVu Sans Mono', monospace"


def esc(text: Any) -> str:
    """Escape ``text`` for XML/HTML text and attribute values."""
    return html.escape(str(text), quote=True)


def text_width(text: str, char_w: float = CHAR_W) -> float:
    """Estimate the drawn width of ``text`` in the monospace font (wide characters count 2)."""
    cells = sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)
    return cells * char_w


def edge_label(links: Iterable[tuple[str, str]]) -> str:
    """Label an edge by the arguments it feeds, with the output name when not the default."""
    parts = [arg if out == SINGLE_OUTPUT else f"{out} → {arg}" for out, arg in links]
    return ", ".join(dict.fromkeys(parts))


def pipeline_svg(
    plan: dict[str, Any],
    states: dict[str, str] | None = None,
    captions: dict[str, str] | None = None,
    *,
    direction: str = "LR",
) -> str:
    """Draw the graph of ``plan_to_dict(plan)`` as an SVG document (a string).

    ``states`` colours boxes by node state (``succeeded``, ``cached``, ``failed``,
    ``skipped``, ``running``, ``pending``); ``captions`` adds a second line to a
    box. ``direction`` is ``"LR"`` (left to right) or ``"TB"`` (top down).
    """
    if direction not in ("LR", "TB"):
        raise ValueError(f"direction= is 'LR' or 'TB', got {direction!r}")
    states = states or {}
    captions = captions or {}
    nodes: dict[str, dict[str, Any]] = {}
    for node in plan.get("nodes", ()):
        nodes[str(node["id"])] = node
    links: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for edge in plan.get("edges", ()):
        pair = (str(edge["source"]), str(edge["target"]))
        for end in pair:
            nodes.setdefault(end, {"id": end, "kind": "step"})
        links.setdefault(pair, []).append(
            (str(edge.get("output", SINGLE_OUTPUT)), str(edge.get("argument", "")))
        )
    title = f"pipeline {plan.get('name', '')}".strip()
    if not nodes:
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="160" height="40" '
            f'viewBox="0 0 160 40" role="img" aria-label="{esc(title)}">'
            f'<text x="10" y="24" font-family="{_MONO}" font-size="{FONT}" fill="#888">'
            "no steps</text></svg>"
        )
    layer = layout.assign_layers(list(nodes), [p for p in links if p[0] != p[1]])
    layers, pred, succ, chains = layout.layered_graph(list(nodes), layer, list(links))
    layers = layout.order(layers, pred, succ)
    return _draw(plan, nodes, links, layers, chains, states, captions, direction, title)


# -- drawing ------------------------------------------------------------------------------


def _draw(plan: dict[str, Any], nodes: dict[str, dict[str, Any]],
          links: dict[tuple[str, str], list[tuple[str, str]]], layers: list[list[Any]],
          chains: dict[Any, list[Any]], states: dict[str, str], captions: dict[str, str],
          direction: str, title: str) -> str:
    lr = direction == "LR"
    size: dict[Any, tuple[float, float]] = {}  # (width, height) of each slot
    caption_of: dict[str, str] = {}
    for level in layers:
        for v in level:
            if isinstance(v, tuple):
                size[v] = (0.0, WAYPOINT) if lr else (WAYPOINT, 0.0)
                continue
            caption = captions.get(v) or ("map" if nodes[v].get("kind") == "map" else "")
            caption_of[v] = caption
            wide = max(text_width(v), text_width(caption, CHAR_W * 10 / FONT))
            size[v] = (max(56.0, wide + 2 * PAD), BOX_H + (CAPTION_H if caption else 0))

    def main(v: Any) -> float:
        return size[v][0] if lr else size[v][1]

    def cross(v: Any) -> float:
        return size[v][1] if lr else size[v][0]

    labels = {pair: edge_label(pl) for pair, pl in links.items()}
    layer_of = {v: i for i, level in enumerate(layers) for v in level}
    # Main-axis extent of each layer and the gap after it (room for the labels leaving it).
    extent = [max((main(v) for v in level), default=0.0) for level in layers]
    # One pass over the edges (not one per layer: a 10,000-step chain has 10,000 of each).
    widest = [0.0] * len(layers)
    for pair, label in labels.items():
        if pair[0] in layer_of and label:
            i = layer_of[pair[0]]
            widest[i] = max(widest[i], text_width(label, CHAR_W * 10 / FONT) if lr else 14.0)
    gaps = [max(GAP, w + 28) for w in widest]
    start = []
    at = float(MARGIN)
    for i in range(len(layers)):
        start.append(at)
        at += extent[i] + gaps[i]
    total_main = at - gaps[-1] + MARGIN
    spans = [sum(cross(v) for v in level) + SLOT_GAP * max(0, len(level) - 1)
             for level in layers]
    widest_span = max(spans)
    total_cross = widest_span + 2 * MARGIN
    centre: dict[Any, tuple[float, float]] = {}  # (main, cross) of each slot's centre
    for i, level in enumerate(layers):
        c = MARGIN + (widest_span - spans[i]) / 2
        for v in level:
            centre[v] = (start[i] + extent[i] / 2, c + cross(v) / 2)
            c += cross(v) + SLOT_GAP

    def xy(m: float, c: float) -> tuple[float, float]:
        return (m, c) if lr else (c, m)

    width, height = xy(total_main, total_cross)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" role="img" aria-label="{esc(title)}" '
        f'font-family="{_MONO}" font-size="{FONT}" style="max-width:100%;height:auto">',
        f"<title>{esc(title)}</title>",
    ]
    ports = layout.ports(chains, centre, cross)
    for pair, chain in chains.items():
        out.append(_edge(pair, chain, centre, main, xy, labels[pair], layer_of, extent,
                         ports[pair]))
    for level in layers:
        for v in level:
            if not isinstance(v, tuple):
                out.append(_node(v, nodes[v], centre[v], size[v], caption_of[v],
                                 states.get(v), xy))
    out.append("</svg>")
    return "\n".join(out)


def _edge(pair: tuple[str, str], chain: list[Any], centre: dict[Any, tuple[float, float]],
          main: Any, xy: Any, label: str, layer_of: dict[Any, int], extent: list[float],
          port: tuple[float, float]) -> str:
    # Points along the path, in (main, cross): leave the source box, run straight through
    # each layer it crosses, stop an arrow's length before the target box.
    src, dst = chain[0], chain[-1]
    m, c = centre[src]
    pts = [(m + main(src) / 2, c + port[0])]
    for way in chain[1:-1]:
        m, c = centre[way]
        half = extent[layer_of[way]] / 2
        pts += [(m - half, c), (m + half, c)]
    m, c = centre[dst]
    end = (m - main(dst) / 2 - ARROW, c + port[1])
    pts.append(end)
    d = [f"M{_p(xy(*pts[0]))}"]
    for k in range(1, len(pts)):
        (m0, c0), (m1, c1) = pts[k - 1], pts[k]
        if k % 2 == 1:  # between layers: a curve that leaves and arrives level
            bend = max(abs(m1 - m0) / 2, 20.0)
            d.append(f"C{_p(xy(m0 + bend, c0))} {_p(xy(m1 - bend, c1))} {_p(xy(m1, c1))}")
        else:  # through a layer: straight
            d.append(f"L{_p(xy(m1, c1))}")
    tip = (end[0] + ARROW, end[1])
    arrow = [tip, (end[0], end[1] - ARROW / 2 - 0.5), (end[0], end[1] + ARROW / 2 + 0.5)]
    parts = [
        f'<g class="dw-edge" data-source="{esc(pair[0])}" data-target="{esc(pair[1])}">',
        f"<title>{esc(pair[0])} → {esc(pair[1])}{': ' + esc(label) if label else ''}</title>",
        f'<path class="dw-edge-line" d="{" ".join(d)}" fill="none" stroke="#8a8f99" '
        f'stroke-width="1.3"/>',
        f'<polygon points="{" ".join(_p(xy(*q)) for q in arrow)}" fill="#8a8f99"/>',
    ]
    if label:
        # On the first curve: half-way when left to right; lower down when top-down, where
        # labels of a fan would overlap near its source.
        (m0, c0), (m1, c1) = pts[0], pts[1]
        t = 0.5 if xy(0, 1) == (0, 1) else 0.72
        bend = max(abs(m1 - m0) / 2, 20.0)
        lm = layout.cubic(t, m0, m0 + bend, m1 - bend, m1)
        lc = layout.cubic(t, c0, c0, c1, c1)
        lx, ly = xy(lm, lc)
        parts.append(
            f'<text x="{lx:.1f}" y="{ly - 4:.1f}" text-anchor="middle" font-size="10" '
            f'fill="#5f6670" stroke="#ffffff" stroke-width="3" stroke-opacity="0.85" '
            f'paint-order="stroke">{esc(label)}</text>'
        )
    parts.append("</g>")
    return "\n".join(parts)


def _node(nid: str, node: dict[str, Any], centre: tuple[float, float],
          size: tuple[float, float], caption: str, state: str | None, xy: Any) -> str:
    w, h = size
    cx, cy = xy(*centre)
    x, y = cx - w / 2, cy - h / 2
    fill, stroke, ink = STATE_STYLE.get(state, _PLAIN) if state else _PLAIN
    is_map = node.get("kind") == "map"
    tip = [nid]
    if node.get("step") and node.get("step") != nid:
        tip.append(f"step: {node['step']}")
    if is_map:
        tip.append("map: runs once per element")
    if state:
        tip.append(f"state: {state}")
    if caption and caption != "map":
        tip.append(caption)
    parts = [
        f'<g class="dw-node" data-id="{esc(nid)}"'
        + (f' data-state="{esc(state)}"' if state else "") + ">",
        f"<title>{esc(chr(10).join(tip))}</title>",
        f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" rx="5" '
        f'fill="{fill}" stroke="{stroke}" stroke-width="1.4"/>',
    ]
    if is_map:  # a double border marks a map
        parts.append(
            f'<rect x="{x + 3:.1f}" y="{y + 3:.1f}" width="{w - 6:.1f}" height="{h - 6:.1f}" '
            f'rx="3" fill="none" stroke="{stroke}" stroke-width="1"/>'
        )
    text_y = cy + 4 - (CAPTION_H / 2 if caption else 0)
    parts.append(
        f'<text x="{cx:.1f}" y="{text_y:.1f}" text-anchor="middle" fill="{ink}">{esc(nid)}</text>'
    )
    if caption:
        parts.append(
            f'<text x="{cx:.1f}" y="{text_y + CAPTION_H:.1f}" text-anchor="middle" '
            f'font-size="10" fill="{ink}" fill-opacity="0.75"'
            + (' font-style="italic"' if caption == "map" else "")
            + f">{esc(caption)}</text>"
        )
    parts.append("</g>")
    return "\n".join(parts)


def _p(point: tuple[float, float]) -> str:
    return f"{point[0]:.1f},{point[1]:.1f}"


# -- the HTML repr of a pipeline ----------------------------------------------------------


def pipeline_html(pipeline: Any, params: dict[str, Any] | None = None) -> str:
    """HTML for ``Pipeline._repr_html_``: name, parameters with defaults, the graph.

    The graph needs a trace; when a parameter has no default (and ``params`` does
    not give it) a note says how to see the graph instead. This never raises.
    """
    from ductwork.dsl.core import ParameterError
    from ductwork.dsl.graph import plan_to_dict

    name = getattr(pipeline, "name", type(pipeline).__name__)
    signature = getattr(pipeline, "signature", None)
    doc = inspect.getdoc(getattr(pipeline, "fn", None)) or ""
    out = [
        '<div class="ductwork-pipeline" style="font-family:system-ui,-apple-system,'
        'Segoe UI,Roboto,sans-serif;font-size:13px;line-height:1.45">',
        f'<div><span style="color:#777">pipeline</span> '
        f'<b style="font-family:{esc(_MONO)}">{esc(name)}</b>'
        f'<code style="color:#555">{esc(signature) if signature is not None else ""}</code></div>',
    ]
    if doc:
        out.append(f'<div style="color:#555;margin:2px 0 6px">{esc(doc.splitlines()[0])}</div>')
    if signature is not None and signature.parameters:
        out.append(_params_table(signature))
    try:
        plan = pipeline.trace(**(params or {}))
    except ParameterError as exc:
        out.append(_note(f"The graph depends on the parameters' values. {exc}"))
    except Exception as exc:  # a repr must not raise: say what went wrong instead
        out.append(_note(f"Tracing the pipeline failed: {type(exc).__name__}: {exc}"))
    else:
        steps = len(plan.invocations)
        out.append(f'<div style="color:#777;margin:6px 0 2px">{steps} '
                   f'step{"s" if steps != 1 else ""}</div>')
        out.append(f"<div>{pipeline_svg(plan_to_dict(plan))}</div>")
    out.append("</div>")
    return "\n".join(out)


def _params_table(signature: inspect.Signature) -> str:
    cell = 'style="text-align:left;padding:1px 10px 1px 0;vertical-align:top"'
    rows = [f"<tr><th {cell}>parameter</th><th {cell}>default</th><th {cell}>type</th></tr>"]
    for param in signature.parameters.values():
        default = ("<i style='color:#b00'>required</i>" if param.default is param.empty
                   else f"<code>{esc(short_repr(param.default))}</code>")
        annotation = "" if param.annotation is param.empty else (
            param.annotation if isinstance(param.annotation, str)
            else inspect.formatannotation(param.annotation)
        )
        rows.append(f"<tr><td {cell}><code>{esc(param.name)}</code></td><td {cell}>{default}</td>"
                    f"<td {cell}><code>{esc(annotation)}</code></td></tr>")
    return '<table style="border-collapse:collapse;margin:4px 0">' + "".join(rows) + "</table>"


def _note(text: str) -> str:
    return (f'<div style="color:#7a5b00;background:#fff8e1;border-left:3px solid #f0b400;'
            f'padding:4px 8px;margin:6px 0;white-space:pre-wrap">{esc(text)}</div>')


def short_repr(value: Any, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters, or the type's name if repr fails."""
    try:
        text = repr(value)
    except Exception:
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 1] + "…"
