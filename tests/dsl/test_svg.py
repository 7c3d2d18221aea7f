"""The graph as an SVG picture: well-formed, complete, escaped, laid out left to right."""

from __future__ import annotations

import re
import subprocess
import sys
import xml.etree.ElementTree as ET

from hypothesis import given, settings
from hypothesis import strategies as st

from ductwork import pipeline, step
from ductwork.dsl.graph import plan_to_dict
from ductwork.dsl.svg import STATE_STYLE, pipeline_html, pipeline_svg

NS = {"s": "http://www.w3.org/2000/svg"}


@step
def load(path: str) -> list[float]:
    raise AssertionError("drawing must not run step code")


@step(outputs=("train", "test"))
def split(rows, frac: float = 0.8):
    raise AssertionError


@step
def fit(train, c: float = 1.0) -> dict:
    raise AssertionError


@step
def score(x, model) -> float:
    raise AssertionError


@step
def report(model, scores, rows, rows_again):
    raise AssertionError


@pipeline
def training(path: str = "data.csv", c: float = 1.0):
    """Train and score."""
    rows = load(path)
    train, test = split(rows)
    model = fit(train, c=c)
    return report(model, score.map(test, model=model), rows, rows)


def _parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    return root


def _nodes(root: ET.Element) -> dict[str, ET.Element]:
    return {g.get("data-id"): g for g in root.iterfind(".//s:g[@class='dw-node']", NS)}


def _edges(root: ET.Element) -> list[tuple[str, str]]:
    return [(g.get("data-source"), g.get("data-target"))
            for g in root.iterfind(".//s:g[@class='dw-edge']", NS)]


def _box(node: ET.Element) -> tuple[float, float, float, float]:
    rect = node.find("s:rect", NS)
    return tuple(float(rect.get(k)) for k in ("x", "y", "width", "height"))  # type: ignore


def test_svg_of_a_traced_pipeline_has_every_node_and_edge():
    plan = plan_to_dict(training.trace())
    root = _parse(pipeline_svg(plan))
    assert set(_nodes(root)) == {"load", "split", "fit", "score", "report"}
    pairs = {(e["source"], e["target"]) for e in plan["edges"]}
    assert sorted(_edges(root)) == sorted(pairs)  # one line per connected pair
    assert len(root.findall(".//s:polygon", NS)) == len(pairs)  # each with an arrowhead
    text = " ".join(t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text"))
    assert "train → train" in text  # named output → argument
    assert "rows, rows_again" in text  # two links on one edge, default output: arguments only


def test_layers_run_left_to_right_and_a_long_edge_goes_around_boxes():
    root = _parse(pipeline_svg(plan_to_dict(training.trace())))
    nodes = _nodes(root)
    x = {nid: _box(node)[0] for nid, node in nodes.items()}
    assert x["load"] < x["split"] < x["fit"] < x["score"] < x["report"]
    # load -> report skips three layers: its path must not cross the boxes between.
    path = next(g for g in root.iterfind(".//s:g[@class='dw-edge']", NS)
                if g.get("data-source") == "load" and g.get("data-target") == "report")
    d = path.find("s:path", NS).get("d")
    points = [tuple(map(float, p.split(","))) for p in re.findall(r"[\d.]+,[\d.]+", d)]
    for nid in ("split", "fit", "score"):
        bx, by, bw, bh = _box(nodes[nid])
        inside = [p for p in points if bx <= p[0] <= bx + bw and by <= p[1] <= by + bh]
        assert not inside, f"edge load -> report runs through {nid}"


def test_top_down_layout():
    root = _parse(pipeline_svg(plan_to_dict(training.trace()), direction="TB"))
    y = {nid: _box(node)[1] for nid, node in _nodes(root).items()}
    assert y["load"] < y["split"] < y["fit"] < y["score"] < y["report"]


def test_map_nodes_have_a_double_border_and_states_colour_boxes():
    plan = plan_to_dict(training.trace())
    states = {"load": "cached", "split": "succeeded", "fit": "failed", "score": "running",
              "report": "skipped"}
    root = _parse(pipeline_svg(plan, states, {"score": "37/100"}))
    nodes = _nodes(root)
    assert len(nodes["score"].findall("s:rect", NS)) == 2
    assert len(nodes["fit"].findall("s:rect", NS)) == 1
    for nid, state in states.items():
        assert nodes[nid].find("s:rect", NS).get("fill") == STATE_STYLE[state][0]
        assert nodes[nid].get("data-state") == state
    assert "37/100" in [t.text for t in nodes["score"].iterfind("s:text", NS)]


def test_odd_ids_are_escaped():
    odd = 'a<b>&"c"'
    plan = {
        "name": "p&<q>",
        "nodes": [{"id": odd, "step": "s", "kind": "step", "outputs": ["output"]},
                  {"id": "it's", "step": "t", "kind": "map", "outputs": ["output"]}],
        "edges": [{"source": odd, "target": "it's", "output": "o<1>", "argument": "x&y"}],
    }
    svg = pipeline_svg(plan, {odd: "failed"}, {"it's": "<b>bold</b>"})
    root = _parse(svg)
    assert set(_nodes(root)) == {odd, "it's"}
    assert _edges(root) == [(odd, "it's")]
    texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert odd in texts and "<b>bold</b>" in texts and "o<1> → x&y" in texts
    assert "<b>" not in svg


def test_empty_plan_and_unknown_direction():
    _parse(pipeline_svg({"name": "empty", "nodes": [], "edges": []}))
    try:
        pipeline_svg({"nodes": []}, direction="up")
    except ValueError as exc:
        assert "LR" in str(exc)
    else:
        raise AssertionError("direction='up' was accepted")


@st.composite
def dags(draw):
    n = draw(st.integers(1, 25))
    edges = set()
    for target in range(1, n):
        for source in draw(st.sets(st.integers(0, target - 1), max_size=3)):
            edges.add((source, target))
    return n, sorted(edges)


@settings(max_examples=60, deadline=None)
@given(dags())
def test_random_dags_draw_every_node_and_edge_forward(dag):
    n, edges = dag
    plan = {
        "name": "random",
        "nodes": [{"id": f"n{i}", "kind": "map" if i % 5 == 0 else "step"} for i in range(n)],
        "edges": [{"source": f"n{a}", "target": f"n{b}", "output": "output", "argument": "x"}
                  for a, b in edges],
    }
    root = _parse(pipeline_svg(plan))
    nodes = _nodes(root)
    assert len(nodes) == n
    assert sorted(_edges(root)) == sorted((f"n{a}", f"n{b}") for a, b in edges)
    for a, b in edges:  # every edge points forward, left to right
        assert _box(nodes[f"n{a}"])[0] < _box(nodes[f"n{b}"])[0]
    boxes = [_box(node) for node in nodes.values()]
    for i, (x1, y1, w1, h1) in enumerate(boxes):  # and no two boxes overlap
        for x2, y2, w2, h2 in boxes[i + 1:]:
            assert x1 + w1 <= x2 or x2 + w2 <= x1 or y1 + h1 <= y2 or y2 + h2 <= y1


def test_svg_needs_neither_networkx_nor_the_runtime():
    code = (
        "import sys\n"
        "from ductwork.dsl.svg import pipeline_svg\n"
        "pipeline_svg({'nodes': [{'id': 'a'}, {'id': 'b'}],\n"
        "              'edges': [{'source': 'a', 'target': 'b', 'argument': 'x'}]})\n"
        "print(','.join(m for m in sys.modules if m == 'networkx' or\n"
        "               m.startswith('ductwork.runtime')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


# -- the pipeline's HTML repr -----------------------------------------------------------------


def test_pipeline_html_shows_parameters_and_the_graph():
    html = pipeline_html(training)
    assert "training" in html and "Train and score." in html
    assert "<code>path</code>" in html and "&#x27;data.csv&#x27;" in html
    assert "<svg" in html and 'data-id="report"' in html


@step
def echo(x):
    raise AssertionError


@pipeline
def needs(size: int, label: str = "<x>"):
    return echo(size)


def test_pipeline_html_with_a_required_parameter_shows_a_note():
    html = pipeline_html(needs)
    assert "<svg" not in html and "required" in html
    assert "size" in html and "needs a value" in html
    assert "&lt;x&gt;" in html and "<x>" not in html
    assert 'data-id="echo"' in pipeline_html(needs, {"size": 3})


@pipeline
def faulty(n: int = 1):
    raise RuntimeError("body <fails>")


def test_pipeline_html_never_raises():
    html = pipeline_html(faulty)
    assert "RuntimeError: body &lt;fails&gt;" in html
