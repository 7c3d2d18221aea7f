"""The step graph of a traced pipeline, and its Mermaid and dot renderings.

``build_graph`` is the one place a ``Plan`` becomes a ``networkx.DiGraph``.
Nodes are invocation ids. An edge ``a -> b`` carries ``links``, every
``(output, argument)`` pair through which ``a`` feeds ``b``, and, for the
common case of one pair, ``output`` and ``argument`` of the first.
"""

from __future__ import annotations

import functools
import json

from ductwork.dsl.options import SINGLE_OUTPUT
from ductwork.dsl.trace import Plan

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    import networkx


_quote = functools.partial(json.dumps, ensure_ascii=False)


def build_graph(plan: Plan) -> networkx.DiGraph:
    """Return the plan's invocations and data edges as a DiGraph."""
    import networkx as nx

    graph = nx.DiGraph(name=plan.name, params=dict(plan.params))
    for inv in plan.invocations.values():
        graph.add_node(
            inv.id,
            step=inv.step.name,
            kind="map" if inv.is_map else "step",
            map_over=inv.map_over,
            outputs=inv.step.options.outputs,
            location=inv.location,
        )
        for link in inv.links:
            if graph.has_edge(link.source, inv.id):
                graph.edges[link.source, inv.id]["links"].append((link.output, link.argument))
            else:
                graph.add_edge(
                    link.source, inv.id, output=link.output, argument=link.argument,
                    links=[(link.output, link.argument)],
                )
    return graph


def plan_to_dict(plan: Plan) -> dict[str, Any]:
    """The graph as plain JSON-able data (no networkx needed), for run records and the studio."""
    # Once per run: fields read straight from the records (not through Step.name and
    # Invocation.is_map), lists made by displays, not list().
    invocations = plan.invocations.values()
    nodes = [
        {"id": inv.id, "step": inv.step.options.name,
         "kind": "step" if inv.map_over is None else "map",
         "outputs": [*inv.step.options.outputs]}
        for inv in invocations
    ]
    edges = [
        {"source": link.source, "target": inv.id, "output": link.output,
         "argument": link.argument}
        for inv in invocations for link in inv.links
    ]
    return {"name": plan.name, "nodes": nodes, "edges": edges}


def _edge_label(links: list[tuple[str, str]]) -> str:
    parts = []
    for output, argument in links:
        parts.append(argument if output == SINGLE_OUTPUT else f"{output} → {argument}")
    return ", ".join(dict.fromkeys(parts))


def to_mermaid(plan: Plan) -> str:
    """Render the plan as a Mermaid ``flowchart``."""
    graph = build_graph(plan)
    short = {node: f"n{i}" for i, node in enumerate(graph.nodes)}
    lines = ["flowchart TD"]
    for node, data in graph.nodes(data=True):
        label = _quote(node + (" (map)" if data["kind"] == "map" else ""))
        shape = f"[[{label}]]" if data["kind"] == "map" else f"[{label}]"
        lines.append(f"    {short[node]}{shape}")
    for a, b, data in graph.edges(data=True):
        lines.append(f"    {short[a]} -->|{_quote(_edge_label(data['links']))}| {short[b]}")
    return "\n".join(lines) + "\n"


def to_dot(plan: Plan) -> str:
    """Render the plan in Graphviz dot."""
    graph = build_graph(plan)
    lines = [f"digraph {_quote(plan.name)} {{", "    rankdir=TB;", "    node [shape=box];"]
    for node, data in graph.nodes(data=True):
        extra = ", style=rounded, peripheries=2" if data["kind"] == "map" else ""
        label = node + (" (map)" if data["kind"] == "map" else "")
        lines.append(f"    {_quote(node)} [label={_quote(label)}{extra}];")
    for a, b, data in graph.edges(data=True):
        label = _quote(_edge_label(data["links"]))
        lines.append(f"    {_quote(a)} -> {_quote(b)} [label={label}];")
    lines.append("}")
    return "\n".join(lines) + "\n"
