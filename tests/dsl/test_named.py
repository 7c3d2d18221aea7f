"""A call given its own id: ``step.named("id")(...)``.

Plain calls of a step are numbered in call order (``evaluate``, ``evaluate-2``);
a named call has the id it was given, whatever the order. The rule tested here:
positional ids count plain calls only, so naming, adding or moving a named call
never renumbers another call, and a named id equal to any other call's id is an
error at trace time naming both calls -- in either order.
"""

from __future__ import annotations

import re

import pytest

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


# -- the id wherever step ids are used --------------------------------------------------------


def test_renderings_label_the_named_call():
    assert '"evaluate_tree"' in compare.to_mermaid()
    assert '"evaluate_tree" -> "best"' in compare.to_dot()
    assert set(compare.graph().nodes) == {"load", "evaluate", "evaluate_tree", "best"}
    assert compare.graph().nodes["evaluate_tree"]["step"] == "evaluate"
    svg = pipeline_svg(plan_to_dict(compare.trace()))
    assert 'data-id="evaluate_tree"' in svg and "step: evaluate" in svg


def test_run_steps_regenerate_plan_and_why_use_the_named_id(tmp_path):
    store = str(tmp_path / "store")
    first = compare.run(store=store, progress=False)
    assert first.outputs == 18
    tree = first.steps["evaluate_tree"]
    assert tree.status == "succeeded" and not tree.cached
    assert "depth 3" in tree.logs

    plan = compare.plan(store=store, regenerate=["evaluate_tree"])
    assert plan["evaluate_tree"][0] == "run" and plan["evaluate"][0] == "cached"

    again = compare.run(store=store, progress=False, regenerate=["evaluate_tree"])
    assert not again.steps["evaluate_tree"].cached and again.steps["evaluate"].cached
    assert not again.steps["best"].cached  # what follows the regenerated step reruns too
    assert "regenerate" in again.steps["evaluate_tree"].why


def test_renaming_a_call_keeps_its_cache_key(tmp_path):
    """The id names a call; it is not part of what the call computes, so not of its key."""
    store = str(tmp_path / "store")

    @pipeline
    def positional(n: int = 4):
        rows = load(n)
        return best(evaluate(rows), evaluate(rows, depth=3))

    before = positional.run(store=store, progress=False)
    after = compare.run(store=store, progress=False)
    assert after.steps["evaluate_tree"].cached
    assert after.steps["evaluate_tree"].key == before.steps["evaluate-2"].key
    assert after.outputs == before.outputs


def test_the_cli_finds_a_named_step_for_logs_and_why(tmp_path, capsys):
    from ductwork.cli import main

    path = tmp_path / "flow.py"
    path.write_text(
        "from ductwork import pipeline, step\n\n"
        "@step\ndef shout(word: str) -> str:\n"
        "    print('saying', word)\n    return word.upper()\n\n"
        "@pipeline\ndef flow():\n"
        "    return shout('a'), shout.named('loud_b')('b')\n"
    )
    store = str(tmp_path / "store")
    assert main(["run", f"{path}:flow", "--store", store]) == 0
    run_id = dw.runs(store=store)[0].id
    capsys.readouterr()
    assert main(["logs", run_id, "loud_b", "--store", store]) == 0
    assert "saying b" in capsys.readouterr().out
    assert main(["why", run_id, "loud_b", "--store", store]) == 0
    assert capsys.readouterr().out.strip()
    assert main(["graph", f"{path}:flow"]) == 0
    assert '"loud_b"' in capsys.readouterr().out
