"""The graph of a traced pipeline and its renderings."""

from __future__ import annotations

import networkx as nx

from ductwork import pipeline, step


@step
def load(path: str) -> list[float]:
    raise AssertionError("graph() must not run step code")


@step(outputs=("train", "test"))
def split(rows, frac: float = 0.8):
    raise AssertionError


@step
def fit(train, c: float = 1.0) -> dict:
    raise AssertionError


@step
def count(xs) -> int:
    raise AssertionError


@step
def both(a, b):
    raise AssertionError


@pipeline
def training(path: str = "data/iris.csv", c: float = 1.0):
    rows = load(path)
    train, test = split(rows)
    model = fit(train, c=c)
    model2 = fit(test, c=c)
    return {"model": model, "model2": model2, "n_test": count(test), "j": both(train, b=train)}


def test_graph_nodes_edges_and_data_without_running_steps():
    g = training.graph(c=0.5)
    assert isinstance(g, nx.DiGraph)
    assert list(g.nodes) == ["load", "split", "fit", "fit-2", "count", "both"]
    assert set(g.edges) == {("load", "split"), ("split", "fit"), ("split", "fit-2"),
                            ("split", "count"), ("split", "both")}
    assert g.edges["load", "split"]["output"] == "output"
    assert g.edges["load", "split"]["argument"] == "rows"
    assert g.edges["split", "fit"]["output"] == "train"
    assert g.edges["split", "fit-2"]["output"] == "test"
    assert g.edges["split", "both"]["links"] == [("train", "a"), ("train", "b")]
    assert g.nodes["fit"]["step"] == "fit" and g.nodes["fit-2"]["step"] == "fit"
    assert g.nodes["split"]["outputs"] == ("train", "test")
    assert g.graph["params"] == {"path": "data/iris.csv", "c": 0.5}
    assert nx.is_directed_acyclic_graph(g)


def test_mermaid_rendering():
    text = training.to_mermaid()
    assert text.startswith("flowchart TD\n")
    for node in ["load", "split", "fit", "fit-2", "count", "both"]:
        assert f'["{node}"]' in text
    assert '-->|"train → train"|' in text
    assert '-->|"rows"|' in text


def test_dot_rendering():
    text = training.to_dot()
    assert text.startswith('digraph "training" {')
    assert '"load" -> "split" [label="rows"];' in text
    assert '"split" -> "fit-2" [label="test → train"];' in text
    assert text.rstrip().endswith("}")


def test_map_nodes_are_marked():
    @step
    def one(x):
        raise AssertionError

    @pipeline
    def p():
        return one.map(load("x"))

    g = p.graph()
    assert g.nodes["one"]["kind"] == "map" and g.nodes["one"]["map_over"] == "x"
    assert '[["one (map)"]]' in p.to_mermaid()
    assert "peripheries=2" in p.to_dot()
