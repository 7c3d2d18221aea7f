"""What tracing a step call costs, counted, and what it records, pinned.

Every run traces its pipeline body, so every warm and cold step pays for recording its
call: binding the arguments, its id, its edges, the invocation and the placeholder it
hands back. That cost is counted as the calls (Python and C) a traced step call makes --
deterministic, unlike a wall time on a shared machine (timings live in ``benchmarks/``):
the difference between a 30-step and a 10-step chain, over 20, so what a trace costs once
cancels out.

What a trace records must not move while it gets cheaper: the plan of a pipeline that
uses every kind of call (positional and keyword arguments, defaults, several outputs,
named calls, a nested pipeline, a map, outputs inside lists and dicts, ``**kwargs``) is
pinned -- ids, arguments, edges and ``plan_to_dict`` byte for byte, as main made them at
77f658c.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from ductwork import pipeline, step
from ductwork.dsl.core import Output
from ductwork.dsl.graph import plan_to_dict
from tests.calls import calls_made

# 30 calls per traced step call at 77f658c, 14 since: about one call per thing a call
# records (its line, arguments, edges, id, invocation, placeholder).
BUDGET = 14


@step
def inc(x: int) -> int:
    return x + 1


@pipeline
def chain(n: int = 10):
    x = 0
    for _ in range(n):
        x = inc(x)
    return x


def _calls(fn: Any) -> Counter[str]:
    return Counter(calls_made(fn, c_calls=True, name=lambda code: code.co_name))


def test_a_traced_step_call_makes_few_calls() -> None:
    chain.trace(n=10)  # first-use work is not the point
    short, long = _calls(lambda: chain.trace(n=10)), _calls(lambda: chain.trace(n=30))
    per_call = {name: (long[name] - short[name]) / 20 for name in long
                if long[name] != short[name]}
    assert sum(per_call.values()) <= BUDGET, sorted(per_call.items(), key=lambda kv: -kv[1])


def test_graph_json_costs_few_calls_per_node() -> None:
    plans = chain.trace(n=10), chain.trace(n=30)
    short, long = (_calls(lambda plan=plan: plan_to_dict(plan)) for plan in plans)
    per_node = (sum(long.values()) - sum(short.values())) / 20
    # 2 at 77f658c (Step.name and Invocation.is_map, per node): the records are read directly.
    assert per_node == 0, sorted((long - short).items(), key=lambda kv: -kv[1])


@step(outputs=("train", "test"))
def split(rows: list[int], frac: float = 0.5) -> tuple[list[int], list[int]]:
    cut = int(len(rows) * frac)
    return rows[:cut], rows[cut:]


@step
def fit(train: list[int], c: float = 1.0, *, seed: int = 0) -> float:
    return sum(train) * c + seed


@step
def gather(parts: Any, **extra: Any) -> int:
    return 0


@step
def make(n: int) -> list[int]:
    return list(range(n))


@pipeline
def prep(n: int):
    rows = make(n)
    return split(rows, frac=0.75)


@pipeline
def every_kind(n: int = 8, c: float = 2.0):
    train, test = prep(n)
    a = fit(train, c)
    b = fit.named("fit_test")(test, c=c, seed=3)
    c2 = fit(train)
    parts = [a, {"b": b, "k": (c2, 1)}]
    total = gather(parts, more=a, plain=5)
    mapped = inc.map(make(3))
    doubled = inc.map([a, b, 4])
    return {"total": total, "mapped": mapped, "doubled": doubled}


def _spelled(value: Any) -> Any:
    # Placeholders compare by refusing: spell them as plain data to compare.
    if isinstance(value, Output):
        return ["Output", value.node, value.name]
    if isinstance(value, list | tuple):
        return [type(value).__name__, *(_spelled(v) for v in value)]
    if isinstance(value, dict):
        return {"dict": {k: _spelled(v) for k, v in value.items()}}
    return value


GRAPH = (
    '{"name": "every_kind", "nodes": [{"id": "prep/make", "step": "make", "kind": "step", '
    '"outputs": ["output"]}, {"id": "prep/split", "step": "split", "kind": "step", '
    '"outputs": ["train", "test"]}, {"id": "fit", "step": "fit", "kind": "step", "outputs": '
    '["output"]}, {"id": "fit_test", "step": "fit", "kind": "step", "outputs": ["output"]}, '
    '{"id": "fit-2", "step": "fit", "kind": "step", "outputs": ["output"]}, {"id": "gather", '
    '"step": "gather", "kind": "step", "outputs": ["output"]}, {"id": "make", "step": "make", '
    '"kind": "step", "outputs": ["output"]}, {"id": "inc", "step": "inc", "kind": "map", '
    '"outputs": ["output"]}, {"id": "inc-2", "step": "inc", "kind": "map", "outputs": '
    '["output"]}], "edges": [{"source": "prep/make", "target": "prep/split", "output": '
    '"output", "argument": "rows"}, {"source": "prep/split", "target": "fit", "output": '
    '"train", "argument": "train"}, {"source": "prep/split", "target": "fit_test", "output": '
    '"test", "argument": "train"}, {"source": "prep/split", "target": "fit-2", "output": '
    '"train", "argument": "train"}, {"source": "fit", "target": "gather", "output": "output", '
    '"argument": "parts"}, {"source": "fit_test", "target": "gather", "output": "output", '
    '"argument": "parts"}, {"source": "fit-2", "target": "gather", "output": "output", '
    '"argument": "parts"}, {"source": "fit", "target": "gather", "output": "output", '
    '"argument": "more"}, {"source": "make", "target": "inc", "output": "output", "argument": '
    '"x"}, {"source": "fit", "target": "inc-2", "output": "output", "argument": "x"}, '
    '{"source": "fit_test", "target": "inc-2", "output": "output", "argument": "x"}]}'
)

CALLS = [
    ["prep/make", "make", {"dict": {"n": 8}}, None, 0],
    ["prep/split", "split", {"dict": {"rows": ["Output", "prep/make", "output"],
                                      "frac": 0.75}}, None, 1],
    ["fit", "fit", {"dict": {"train": ["Output", "prep/split", "train"], "c": 2.0,
                             "seed": 0}}, None, 7],
    ["fit_test", "fit", {"dict": {"train": ["Output", "prep/split", "test"], "c": 2.0,
                                  "seed": 3}}, None, 8],
    ["fit-2", "fit", {"dict": {"train": ["Output", "prep/split", "train"], "c": 1.0,
                               "seed": 0}}, None, 9],
    ["gather", "gather", {"dict": {
        "parts": ["list", ["Output", "fit", "output"], {"dict": {
            "b": ["Output", "fit_test", "output"],
            "k": ["tuple", ["Output", "fit-2", "output"], 1]}}],
        "extra": {"dict": {"more": ["Output", "fit", "output"], "plain": 5}}}}, None, 11],
    ["make", "make", {"dict": {"n": 3}}, None, 12],
    ["inc", "inc", {"dict": {"x": ["Output", "make", "output"]}}, "x", 12],
    ["inc-2", "inc", {"dict": {"x": ["list", ["Output", "fit", "output"],
                                     ["Output", "fit_test", "output"], 4]}}, "x", 13],
]


def test_what_a_trace_records_is_unchanged() -> None:
    plan = every_kind.trace()
    first = min(inv.location[1] for inv in plan.invocations.values())
    calls = [[inv.id, inv.step.name, _spelled(inv.arguments), inv.map_over,
              inv.location[1] - first] for inv in plan.invocations.values()]
    assert calls == CALLS
    assert all(inv.location[0] == __file__ for inv in plan.invocations.values())
    assert json.dumps(plan_to_dict(plan)) == GRAPH
    assert _spelled(plan.result) == {"dict": {
        "total": ["Output", "gather", "output"], "mapped": ["Output", "inc", "output"],
        "doubled": ["Output", "inc-2", "output"]}}
    assert [inv.deps for inv in plan.invocations.values()] == [
        (), ("prep/make",), ("prep/split",), ("prep/split",), ("prep/split",),
        ("fit", "fit_test", "fit-2"), (), ("make",), ("fit", "fit_test")]


def test_records_made_by_a_trace_are_the_records_their_classes_make() -> None:
    """A trace fills its links, invocations and placeholders past ``__init__``
    (``slotted.thawed``): what comes out is exactly what the constructors make."""
    import pickle

    import pytest

    from ductwork.dsl.trace import Invocation, Link

    plan = every_kind.trace()
    fit_2 = plan.invocations["fit-2"]
    (link,) = fit_2.links
    assert type(link) is Link and link == Link("prep/split", "train", "train")
    assert hash(link) == hash(Link("prep/split", "train", "train"))
    assert repr(link) == "Link(source='prep/split', output='train', argument='train')"
    assert type(fit_2) is Invocation
    assert fit_2 == Invocation("fit-2", fit_2.step, fit_2.arguments, fit_2.links,
                               fit_2.location)
    assert pickle.loads(pickle.dumps(link)) == link
    out = plan.invocations["gather"].arguments["extra"]["more"]
    assert type(out) is Output and out.key == ("fit", "output")
    assert pickle.loads(pickle.dumps(out)).key == out.key
    for made, field in ((link, "source"), (fit_2, "id"), (out, "node")):
        with pytest.raises(AttributeError, match="immutable"):
            setattr(made, field, "other")
        with pytest.raises(AttributeError, match="immutable"):
            delattr(made, field)


def test_a_step_pickled_before_its_call_table_existed_still_traces() -> None:
    """A step unpickled from an older ductwork (a published snapshot) has no ``_made``;
    its first traced call makes it, and replaced options are seen at the next call."""
    import pickle

    import cloudpickle

    from ductwork.dsl.options import make_options

    @step
    def add(x: int, y: int = 1) -> int:
        return x + y

    old = pickle.loads(cloudpickle.dumps(add))
    del old.__dict__["_made"]

    @pipeline
    def uses_old(n: int = 1):
        return old(old(n), y=2)

    plan = uses_old.trace()
    assert [(inv.id, dict(inv.arguments)) for inv in plan.invocations.values()] == [
        ("add", {"x": 1, "y": 1}), ("add-2", {"x": plan.invocations["add-2"].arguments["x"],
                                              "y": 2})]
    assert old._made is not None
    old.options = make_options(old.fn, {"name": "plus"})
    assert list(uses_old.trace().invocations) == ["plus", "plus-2"]
