"""Bad pipeline bodies fail while tracing with a TraceError that names what is wrong.

Recursion between pipelines, values that contain themselves, and outputs put where
no edge can be made (dict keys, sets, dataclass and attrs instances) were a bare
``RecursionError`` or a misleading hashing error at run time ([8] item 16).
"""

from __future__ import annotations

import dataclasses
import sys
from typing import NamedTuple

import attrs
import pytest

import ductwork as dw
from ductwork import pipeline, step


@step
def one() -> int:
    return 1


@step
def take(x):
    return repr(x)


# -- a. recursion ----------------------------------------------------------------------


@pipeline
def itself(n: int = 3):
    return itself(n - 1)


@pipeline
def ping():
    return pong()


@pipeline
def pong():
    return ping()


@pipeline
def outer():
    return {"a": take(one()), "b": ping()}


def test_a_pipeline_calling_itself_is_refused_naming_it():
    with pytest.raises(dw.TraceError, match=r"Pipeline 'itself' calls itself: itself -> itself"):
        itself.graph()


def test_mutual_recursion_names_the_chain():
    with pytest.raises(dw.TraceError, match=r"ping -> pong -> ping") as info:
        ping.run(store="memory://", progress=False)
    assert "test_bad_input.py:" in str(info.value)  # the user's line


def test_recursion_inside_a_nested_pipeline_names_the_chain_from_where_it_starts():
    with pytest.raises(dw.TraceError, match=r"calls itself: ping -> pong -> ping\b") as info:
        outer.graph()
    assert "outer ->" not in str(info.value)


def test_the_refusal_comes_at_once_not_after_the_interpreter_runs_out_of_stack():
    with pytest.raises(dw.TraceError) as info:
        ping.graph()
    depth = len(list(_frames(info.value.__traceback__)))
    assert depth < 40  # not sys.getrecursionlimit() frames deep


def _frames(tb):
    while tb is not None:
        yield tb
        tb = tb.tb_next


def test_the_same_pipeline_twice_in_a_row_is_not_recursion():
    @pipeline
    def inner(x: int = 1):
        return take(x)

    @pipeline
    def twice():
        return [inner(1), inner(2)]

    assert list(twice.graph().nodes) == ["inner/take", "inner-2/take"]


def test_a_refused_trace_leaves_nothing_behind_for_the_next_one():
    @pipeline
    def calls_pong():
        return pong()

    with pytest.raises(dw.TraceError, match=r"calls itself: pong -> ping -> pong\b"):
        calls_pong.graph()
    with pytest.raises(dw.TraceError, match=r"calls itself: ping -> pong -> ping\b"):
        ping.graph()


# -- a. values that contain themselves --------------------------------------------------


def _cyclic_list():
    items: list = [1]
    items.append(items)
    return items


@pipeline
def takes(items: list = ()):
    return take(items)


def test_a_parameter_that_contains_itself_is_refused_naming_the_step_and_argument():
    with pytest.raises(dw.TraceError, match=r"Step 'take' at .*argument 'x' contains itself") \
            as info:
        takes.run(items=_cyclic_list(), store="memory://", progress=False)
    assert "x[1]" in str(info.value)


def test_a_dict_that_contains_itself_is_refused():
    d: dict = {}
    d["me"] = d
    with pytest.raises(dw.TraceError, match=r"argument 'x' contains itself"):
        takes.graph(items=d)


def test_a_default_that_contains_itself_is_refused():
    @pipeline
    def looped(items: list = _cyclic_list()):  # noqa: B008 - the point of the test
        return take(items)

    with pytest.raises(dw.TraceError, match="contains itself"):
        looped.graph()


def test_a_cyclic_constant_handed_to_map_is_refused():
    @pipeline
    def mapped():
        return take.map([_cyclic_list()])

    with pytest.raises(dw.TraceError, match="contains itself"):
        mapped.graph()


def test_a_pipeline_returning_a_value_that_contains_itself_is_refused():
    @pipeline
    def returns():
        return {"out": one(), "loop": _cyclic_list()}

    with pytest.raises(dw.TraceError, match=r"Pipeline 'returns'.*contains itself"):
        returns.graph()


def test_shared_not_cyclic_values_are_fine():
    shared = [1, 2]

    @pipeline
    def diamond():
        return take([shared, shared, {"a": shared}])

    assert list(diamond.graph().nodes) == ["take"]


def test_deep_but_finite_nesting_does_not_hit_the_recursion_limit_while_tracing():
    nested: list = [0]
    for _ in range(sys.getrecursionlimit() * 2):
        nested = [nested]

    @pipeline
    def deep():
        out = one()
        return take([nested, out])

    assert ("one", "take") in deep.graph().edges


# -- b. outputs where no edge can be made ---------------------------------------------------


@dataclasses.dataclass
class Box:
    value: object


@attrs.define
class Crate:
    value: object


class Pair(NamedTuple):
    left: object
    right: object


def test_an_output_as_a_dict_key_is_refused_saying_values_not_keys():
    @pipeline
    def keyed():
        return take({one(): 1})

    with pytest.raises(dw.TraceError) as info:
        keyed.graph()
    text = str(info.value)
    assert "Step 'take'" in text and "argument 'x'" in text and "step 'one'" in text
    assert "dict values, not keys" in text
    assert "callable" not in text


def test_an_output_inside_a_tuple_key_is_refused_too():
    @pipeline
    def keyed():
        return take({("a", one()): 1})

    with pytest.raises(dw.TraceError, match="dict values, not keys"):
        keyed.graph()


def test_an_output_as_a_key_of_the_pipeline_result_is_refused():
    @pipeline
    def keyed():
        return {one(): 1}

    with pytest.raises(dw.TraceError, match=r"Pipeline 'keyed'.*dict values, not keys"):
        keyed.graph()


@pytest.mark.parametrize(("make", "kind"), [(Box, "Box"), (Crate, "Crate")])
def test_an_output_inside_a_dataclass_or_attrs_instance_is_refused_with_the_fix(make, kind):
    @pipeline
    def boxed():
        return take(make(one()))

    with pytest.raises(dw.TraceError) as info:
        boxed.run(store="memory://", progress=False)
    text = str(info.value)
    assert "Step 'take'" in text and "argument 'x'" in text and "x.value" in text
    assert kind in text and "step 'one'" in text
    assert "as its own argument" in text and "inside a step" in text
    assert "callable" not in text


def test_an_output_inside_a_dataclass_inside_a_list_is_refused():
    @pipeline
    def boxed():
        return take([1, {"k": Box(one())}])

    with pytest.raises(dw.TraceError, match=r"x\[1\]\['k'\]\.value"):
        boxed.graph()


def test_an_output_in_a_set_nested_in_a_list_is_refused():
    @pipeline
    def setted():
        return take([frozenset({one()})])

    with pytest.raises(dw.TraceError, match="set"):
        setted.graph()


def test_dataclasses_without_outputs_and_named_tuples_with_them_still_work():
    @pipeline
    def fine():
        return take([Box(3), Crate("c"), Pair(one(), 2), {"k": one()}])

    assert list(fine.graph().edges) == [("one", "take"), ("one-2", "take")]
    run = fine.run(store="memory://", progress=False)
    assert run.outputs == repr([Box(3), Crate("c"), Pair(1, 2), {"k": 1}])
