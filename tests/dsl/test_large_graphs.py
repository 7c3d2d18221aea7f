"""Big graphs: nothing in tracing or drawing recurses (or loops per layer) with the graph's size.

The pipelines are traced and drawn, never run. The recursion limit is lowered
to a little above the test's own stack depth, so a walk that recursed once per
step would fail here even if the interpreter's default limit were raised.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

from ductwork import pipeline, step
from ductwork.dsl import layout
from ductwork.dsl.graph import plan_to_dict, to_dot, to_mermaid
from ductwork.dsl.svg import pipeline_svg

N = 10_000


@step
def inc(x: int) -> int:
    return x + 1


@step
def add(x: int, y: int) -> int:
    return x + y


@pipeline
def chain(n: int = N):
    x = 0
    for _ in range(n):
        x = inc(x)
    return x


@contextlib.contextmanager
def shallow_stack(room: int = 250) -> Iterator[None]:
    """Allow only ``room`` frames above the current depth."""
    depth, frame = 0, sys._getframe()
    while frame is not None:
        depth, frame = depth + 1, frame.f_back
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(depth + room)
    try:
        yield
    finally:
        sys.setrecursionlimit(old)


def test_a_10000_step_chain_traces_graphs_and_renders():
    with shallow_stack():
        plan = chain.trace()
        graph = chain.graph()
        data = plan_to_dict(plan)
        mermaid, dot = to_mermaid(plan), to_dot(plan)
    ids = list(plan.invocations)
    assert ids[:3] == ["inc", "inc-2", "inc-3"] and ids[-1] == f"inc-{N}"
    assert graph.number_of_nodes() == N and graph.number_of_edges() == N - 1
    assert ("inc-9999", "inc-10000") in graph.edges
    assert len(data["nodes"]) == N and len(data["edges"]) == N - 1
    assert mermaid.count("-->") == N - 1 and dot.count(" -> ") == N - 1


def test_a_10000_step_chain_draws():
    with shallow_stack():
        svg = pipeline_svg(plan_to_dict(chain.trace()))
    assert svg.count('class="dw-node"') == N and svg.count('class="dw-edge"') == N - 1


def test_long_edges_past_the_waypoint_budget_are_drawn_straight():
    # One step feeding every step of a chain of n needs n**2/2 waypoints.
    n = 200
    ids = ["a", *(f"s{i}" for i in range(n))]
    pairs = [("a", "s0"), *((f"s{i}", f"s{i + 1}") for i in range(n - 1)),
             *(("a", f"s{i}") for i in range(1, n))]
    layer = layout.assign_layers(ids, pairs)
    layers, _, _, chains = layout.layered_graph(ids, layer, pairs, max_waypoints=1000)
    waypoints = sum(isinstance(v, tuple) for level in layers for v in level)
    assert 0 < waypoints <= 1000
    assert set(chains) == set(pairs)
    # the shortest long edges keep their waypoints, the longest go straight
    assert len(chains[("a", "s2")]) == 4 and chains[("a", f"s{n - 1}")] == ["a", f"s{n - 1}"]
    full = layout.layered_graph(ids, layer, pairs)[0]
    assert sum(isinstance(v, tuple) for level in full for v in level) == (n - 1) * n // 2

    @pipeline
    def fan(n: int = 2_000):
        first = x = inc(0)
        for _ in range(n):
            x = add(x, first)
        return x

    svg = pipeline_svg(plan_to_dict(fan.trace()))
    assert svg.count('class="dw-node"') == 2_001 and svg.count('class="dw-edge"') == 3_999
