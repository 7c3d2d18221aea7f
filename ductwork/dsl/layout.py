"""Where the boxes and edges of a step graph go: a small Sugiyama layout, pure geometry.

Nodes are the ids of ``plan_to_dict``; nothing here knows about SVG, text or
the runtime (``svg`` measures and draws, ``pipeline_svg`` calls these in turn).

1. ``assign_layers``: longest path from the sources -- a node sits one layer after
   its deepest predecessor, so every edge points forward. Nodes left on a
   cycle go after the rest, one layer each.
2. ``layered_graph``: an edge that spans several layers gets a waypoint in
   each layer it crosses (``("~", source, target, layer)``, never equal to a
   node id); waypoints take a slot like a node, so the edge runs between
   boxes, not through them. A cycle's back edge is drawn but not laid out.
   Waypoints grow with the square of the graph (one step feeding each of a
   chain of n needs n**2/2), so past ``MAX_WAYPOINTS`` the shortest edges get
   theirs first and the longest are drawn straight across, like back edges.
3. ``order``: barycenter sweeps -- down the layers ordering each by the mean
   position of its predecessors, back up by its successors -- keeping the
   order with the fewest crossings seen (``count_crossings`` counts them; it is
   quadratic, so above 600 edges the sweeps run without counting).
4. Routing: ``ports`` spreads the edges that leave (enter) one box along its
   side, in the order of their other ends, so a fan does not meet in a point;
   ``cubic`` evaluates the Bezier curve an edge is drawn with, to place its
   label on it.
"""

from __future__ import annotations

import collections
import itertools

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "MAX_WAYPOINTS", "assign_layers", "count_crossings", "cubic", "layered_graph", "order",
    "ports", "reorder",
]

#: Waypoints for all long edges together; beyond it the longest edges get none.
MAX_WAYPOINTS = 20_000


def assign_layers(ids: list[str], pairs: list[tuple[str, str]]) -> dict[str, int]:
    """Longest-path layering (Kahn order); nodes left on a cycle go after the rest."""
    preds: dict[str, list[str]] = {n: [] for n in ids}
    succs: dict[str, list[str]] = {n: [] for n in ids}
    for a, b in pairs:
        preds[b].append(a)
        succs[a].append(b)
    indegree = {n: len(preds[n]) for n in ids}
    layer: dict[str, int] = {}
    ready = collections.deque(n for n in ids if indegree[n] == 0)
    while ready:
        node = ready.popleft()
        layer[node] = max((layer[p] + 1 for p in preds[node]), default=0)
        for s in succs[node]:
            indegree[s] -= 1
            if indegree[s] == 0:
                ready.append(s)
    last = max(layer.values(), default=-1)
    for node in ids:
        if node not in layer:
            last += 1
            layer[node] = last
    return layer


def layered_graph(
    ids: list[str], layer: dict[str, int], pairs: list[tuple[str, str]],
    max_waypoints: int = MAX_WAYPOINTS,
) -> tuple[list[list[Any]], dict[Any, list[Any]], dict[Any, list[Any]], dict[Any, list[Any]]]:
    """Put nodes in layers and give long forward edges a waypoint per layer they cross."""
    depth = max(layer.values()) + 1
    layers: list[list[Any]] = [[] for _ in range(depth)]
    pred: dict[Any, list[Any]] = {}
    succ: dict[Any, list[Any]] = {}
    for node in ids:
        layers[layer[node]].append(node)
        pred[node], succ[node] = [], []
    chains: dict[Any, list[Any]] = {}
    straight = _without_waypoints(layer, pairs, max_waypoints)
    for a, b in pairs:
        if a == b or layer[b] <= layer[a] or (a, b) in straight:
            chains[(a, b)] = [a, b]  # a cycle's back edge (or one over budget): drawn, not laid out
            continue
        chain = [a]
        for k in range(layer[a] + 1, layer[b]):
            way = ("~", a, b, k)  # a tuple never equals a node id (a str)
            layers[k].append(way)
            pred[way], succ[way] = [], []
            chain.append(way)
        chain.append(b)
        for u, v in itertools.pairwise(chain):
            succ[u].append(v)
            pred[v].append(u)
        chains[(a, b)] = chain
    return layers, pred, succ, chains


def _without_waypoints(layer: dict[str, int], pairs: list[tuple[str, str]],
                       budget: int) -> set[tuple[str, str]]:
    """The longest forward edges whose waypoints would exceed ``budget`` in all."""
    spans = [(layer[b] - layer[a] - 1, (a, b)) for a, b in pairs if layer[b] > layer[a] + 1]
    if sum(span for span, _ in spans) <= budget:
        return set()
    spans.sort(key=lambda sp: sp[0])
    over: set[tuple[str, str]] = set()
    for span, pair in spans:
        if span <= budget:
            budget -= span
        else:
            over.add(pair)
    return over


def count_crossings(layers: list[list[Any]], succ: dict[Any, list[Any]]) -> int:
    """Count edge crossings between neighbouring layers (quadratic; capped by the caller)."""
    total = 0
    for upper, lower in itertools.pairwise(layers):
        pos = {v: i for i, v in enumerate(lower)}
        ends = sorted((i, pos[v]) for i, u in enumerate(upper) for v in succ[u] if v in pos)
        for x in range(len(ends)):
            for y in range(x + 1, len(ends)):
                if ends[x][0] < ends[y][0] and ends[x][1] > ends[y][1]:
                    total += 1
    return total


def reorder(layer: list[Any], neighbours: dict[Any, list[Any]], pos: dict[Any, int]) -> None:
    """Sort ``layer`` by the mean position (``pos``) of each slot's ``neighbours``."""
    keys = {}
    for i, v in enumerate(layer):
        near = [pos[n] for n in neighbours[v] if n in pos]
        keys[v] = sum(near) / len(near) if near else float(i)
    layer.sort(key=keys.__getitem__)


def order(layers: list[list[Any]], pred: dict[Any, list[Any]],
          succ: dict[Any, list[Any]], sweeps: int = 4) -> list[list[Any]]:
    """Barycenter sweeps down and up; keep the order with the fewest crossings."""
    edges = sum(len(s) for s in succ.values())
    count = edges <= 600  # counting is quadratic per layer pair; big graphs just sweep
    best = [list(level) for level in layers]
    best_crossings = count_crossings(best, succ) if count else 0
    current = [list(level) for level in layers]
    for _ in range(sweeps):
        if count and best_crossings == 0:
            break
        for i in range(1, len(current)):
            reorder(current[i], pred, {v: k for k, v in enumerate(current[i - 1])})
        for i in range(len(current) - 2, -1, -1):
            reorder(current[i], succ, {v: k for k, v in enumerate(current[i + 1])})
        if not count:
            best = [list(level) for level in current]
            continue
        crossings = count_crossings(current, succ)
        if crossings < best_crossings:
            best, best_crossings = [list(level) for level in current], crossings
    return best


def ports(chains: dict[Any, list[Any]], centre: dict[Any, tuple[float, float]],
          cross: Any) -> dict[Any, tuple[float, float]]:
    """Spread the edges leaving (entering) a box along its side, in the order of their
    other ends, so fans do not start (end) in one point."""
    leaving: dict[Any, list[Any]] = {}
    entering: dict[Any, list[Any]] = {}
    for pair, chain in chains.items():
        leaving.setdefault(chain[0], []).append((centre[chain[1]][1], pair))
        entering.setdefault(chain[-1], []).append((centre[chain[-2]][1], pair))
    offsets: dict[Any, list[float]] = {pair: [0.0, 0.0] for pair in chains}
    for side, groups in ((0, leaving), (1, entering)):
        for node, ends in groups.items():
            if len(ends) < 2:
                continue
            ends.sort(key=lambda e: e[0])
            step = min(8.0, (cross(node) - 10) / (len(ends) - 1))
            for i, (_, pair) in enumerate(ends):
                offsets[pair][side] = (i - (len(ends) - 1) / 2) * step
    return {pair: (o[0], o[1]) for pair, o in offsets.items()}


def cubic(t: float, a: float, b: float, c: float, d: float) -> float:
    """Return the point at ``t`` of the cubic Bezier curve with control values a, b, c, d."""
    u = 1 - t
    return u * u * u * a + 3 * u * u * t * b + 3 * u * t * t * c + t * t * t * d
