"""A call given its own id: ``step.named("id")(...)``.

Plain calls of a step are numbered in call order (``evaluate``, ``evaluate-2``);
a named call has the id it was given, whatever the order. The rule tested here:
positional ids count plain calls only, so naming, adding or moving a named call
never renumbers another call, and a named id equal to any other call's id is an
error at trace time naming both calls -- in either order.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ductwork as dw
from ductwork import pipeline, step
from ductwork.dsl.graph import plan_to_dict
from ductwork.dsl.svg import pipeline_svg


@step
def load(n: int) -> list[int]:
    return list(range(n))


@step
def evaluate(rows: list[int], depth: int = 1) -> int:
    print(f"evaluating at depth {depth}")
    return sum(rows) * depth


@step
def best(*scores: int) -> int:
    return max(scores)


@step
def square(x: int) -> int:
    return x * x


@pipeline
def compare(n: int = 4):
    rows = load(n)
    linear = evaluate(rows)
    tree = evaluate.named("evaluate_tree")(rows, depth=3)
    return best(linear, tree)


def test_a_named_call_has_its_id_and_plain_calls_keep_theirs():
    plan = compare.trace()
    assert list(plan.invocations) == ["load", "evaluate", "evaluate_tree", "best"]
    assert plan.invocations["evaluate_tree"].step is evaluate
    assert [link.source for link in plan.invocations["best"].links] == [
        "evaluate", "evaluate_tree"]


def test_outside_a_pipeline_a_named_call_is_a_plain_function_call():
    assert evaluate.named("evaluate_tree")([1, 2], depth=2) == 6
    assert square.named("squares").map([1, 2, 3]) == [1, 4, 9]


def test_naming_a_call_does_not_renumber_the_plain_calls():
    @pipeline
    def p():
        rows = load(3)
        return [evaluate(rows), evaluate.named("middle")(rows), evaluate(rows)]

    assert list(p.trace().invocations) == ["load", "evaluate", "middle", "evaluate-2"]


def test_a_named_call_inside_a_nested_pipeline_is_prefixed():
    @pipeline
    def prep(n: int):
        return evaluate.named("total")(load(n))

    @pipeline
    def outer():
        return prep(2), prep(3)

    assert list(outer.trace().invocations) == [
        "prep/load", "prep/total", "prep-2/load", "prep-2/total"]


def test_a_named_map_fans_out_under_its_id():
    @pipeline
    def p(n: int = 3):
        return square.named("squares").map(load(n))

    plan = p.trace()
    assert plan.invocations["squares"].is_map
    run = p.run(store="memory://", progress=False)
    assert run.outputs == [0, 1, 4]
    assert {"squares", "squares[0]", "squares[2]"} <= set(run.steps)


# -- bad ids --------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["", "a/b", "two words", "x[1]", "1st", "-x", "é" * 3, "a" * 101,
                                 "tab\t", "a.b"])
def test_a_bad_id_names_the_step_and_what_is_allowed(bad):
    with pytest.raises(dw.DefinitionError) as info:
        evaluate.named(bad)
    message = str(info.value)
    assert "'evaluate'" in message and repr(bad) in message
    assert "letters, digits, '_' and '-'" in message


def test_an_id_that_is_not_a_string_is_refused():
    with pytest.raises(dw.DefinitionError, match=r"step 'evaluate'.*\.named\(3\).*a string"):
        evaluate.named(3)


def test_a_named_call_cannot_be_named_again():
    with pytest.raises(AttributeError):
        evaluate.named("a").named("b")


# -- clashes --------------------------------------------------------------------------------


def _lines(pattern: str, text: str) -> list[int]:
    return [int(n) for n in re.findall(pattern, text)]


def test_two_calls_with_one_name_is_an_error_naming_both():
    @pipeline
    def p():
        rows = load(2)
        first = evaluate.named("score")(rows)
        second = square.named("score")(3)
        return first, second

    with pytest.raises(dw.TraceError) as info:
        p.trace()
    message = str(info.value)
    assert "'score'" in message and "step 'evaluate'" in message and "step 'square'" in message
    assert len(_lines(r"test_named\.py:(\d+)", message)) == 2
    assert "another name" in message


@pytest.mark.parametrize("named_first", [False, True])
def test_a_name_equal_to_a_positional_id_is_an_error_in_either_order(named_first):
    @pipeline
    def p():
        rows = load(2)
        outs = []
        if named_first:
            outs.append(evaluate.named("evaluate-2")(rows))
        outs += [evaluate(rows), evaluate(rows)]
        if not named_first:
            outs.append(evaluate.named("evaluate-2")(rows))
        return outs

    with pytest.raises(dw.TraceError) as info:
        p.trace()
    message = str(info.value)
    assert "'evaluate-2'" in message
    assert "second plain call of step 'evaluate'" in message
    assert len(_lines(r"test_named\.py:(\d+)", message)) == 2


def test_a_name_equal_to_another_steps_id_or_a_nested_pipeline_clashes():
    @pipeline
    def inner():
        return load(1)

    @pipeline
    def p():
        return square.named("load")(2), load(3)

    @pipeline
    def q():
        return inner(), square.named("inner")(2)

    with pytest.raises(dw.TraceError, match="'load'.*step 'square'.*step 'load'"):
        p.trace()
    with pytest.raises(dw.TraceError, match="'inner'.*pipeline 'inner'"):
        q.trace()


def test_a_named_id_unused_by_plain_calls_is_fine_with_the_same_step_name():
    @pipeline
    def p():
        rows = load(2)
        return evaluate.named("evaluate-3")(rows), evaluate(rows), evaluate(rows)

    assert list(p.trace().invocations) == ["load", "evaluate-3", "evaluate", "evaluate-2"]


# -- renderings ------------------------------------------------------------------------------


def test_renderings_label_the_named_call():
    assert '"evaluate_tree"' in compare.to_mermaid()
    assert '"evaluate_tree" -> "best"' in compare.to_dot()
    assert set(compare.graph().nodes) == {"load", "evaluate", "evaluate_tree", "best"}
    assert compare.graph().nodes["evaluate_tree"]["step"] == "evaluate"
    svg = pipeline_svg(plan_to_dict(compare.trace()))
    assert 'data-id="evaluate_tree"' in svg and "step: evaluate" in svg


# -- property: random pipelines with some named calls ---------------------------------------


@step
def a(*xs: int) -> int:
    return sum(xs)


@step
def b(*xs: int) -> int:
    return sum(xs)


@step
def c(*xs: int) -> int:
    return sum(xs)


_STEPS = {"a": a, "b": b, "c": c}
# Names that are free, and names equal to an id some plain call may get.
_NAMES = ["x", "y", "z_1", "a", "a-2", "b-3", "c"]

# A call: (step, name or None, indices of earlier calls it reads).
Call = tuple[str, "str | None", tuple[int, ...]]


@st.composite
def programs(draw: st.DrawFn) -> list[Call]:
    calls: list[Call] = []
    for i in range(draw(st.integers(1, 12))):
        deps = draw(st.lists(st.integers(0, i - 1), max_size=3, unique=True)) if i else []
        name = draw(st.one_of(st.none(), st.none(), st.sampled_from(_NAMES)))
        calls.append((draw(st.sampled_from(sorted(_STEPS))), name, tuple(deps)))
    return calls


def expected_ids(calls: list[Call]) -> list[str] | None:
    """The documented rule: plain calls numbered per step, named calls as named; None on
    a clash (a name given twice, or equal to a plain call's id)."""
    counts: dict[str, int] = {}
    ids = []
    for step_name, name, _ in calls:
        if name is None:
            counts[step_name] = counts.get(step_name, 0) + 1
            n = counts[step_name]
            ids.append(step_name if n == 1 else f"{step_name}-{n}")
        else:
            ids.append(name)
    return ids if len(set(ids)) == len(ids) else None


def traced_ids(calls: list[Call], order: list[int]) -> list[str]:
    """Trace the calls in ``order``; return each call's id by its index in ``calls``."""

    @pipeline
    def p():
        outs: dict[int, Any] = {}
        for i in order:
            step_name, name, deps = calls[i]
            call = _STEPS[step_name] if name is None else _STEPS[step_name].named(name)
            outs[i] = call(*(outs[d] for d in deps))
        return [outs[i] for i in range(len(calls))]

    plan = p.trace()
    ids = [out.node for out in plan.result]
    assert list(plan.invocations) == [ids[i] for i in order]  # recorded in call order
    return ids


def reorderings(calls: list[Call]) -> st.SearchStrategy[list[int]]:
    """Call orders that keep data dependencies and the order of each step's plain calls:
    every other call (unrelated to it) may move."""
    before: dict[int, set[int]] = {i: set(deps) for i, (_, _, deps) in enumerate(calls)}
    last_plain: dict[str, int] = {}
    for i, (step_name, name, _) in enumerate(calls):
        if name is None:
            if step_name in last_plain:
                before[i].add(last_plain[step_name])
            last_plain[step_name] = i

    @st.composite
    def order(draw: st.DrawFn) -> list[int]:
        done: list[int] = []
        while len(done) < len(calls):
            ready = [i for i in range(len(calls)) if i not in done and before[i] <= set(done)]
            done.append(draw(st.sampled_from(ready)))
        return done

    return order()


@settings(max_examples=150, deadline=None)
@given(data=st.data(), calls=programs())
def test_random_pipelines_with_named_calls_get_unique_ids_that_do_not_move(data, calls):
    expected = expected_ids(calls)
    order = data.draw(reorderings(calls))
    for attempt in (list(range(len(calls))), order):
        if expected is None:
            with pytest.raises(dw.TraceError, match="Two calls in this pipeline have the id"):
                traced_ids(calls, attempt)
        else:
            ids = traced_ids(calls, attempt)
            assert ids == expected
            assert len(set(ids)) == len(ids)
