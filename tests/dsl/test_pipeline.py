"""@pipeline: parameters, tracing, nesting, map, and errors found before any step runs."""

from __future__ import annotations

import pytest

import ductwork as dw
from ductwork import pipeline, step

CALLS: list[str] = []


@step
def load(path: str) -> list[int]:
    CALLS.append("load")
    return [len(path), 2, 3]


@step
def scale(x: int, k: int = 1) -> int:
    return x * k


@step
def total(xs: list[int]) -> int:
    return sum(xs)


@pipeline
def prep(path: str, k: int = 2):
    rows = load(path)
    return scale.map(rows, k=k)


@pipeline
def outer(path: str = "abcd", k: int = 3):
    a = prep(path, k=k)
    b = prep("xy")
    return {"a": total(a), "b": total(b)}


def test_parameters_defaults_and_binding():
    assert list(outer.parameters) == ["path", "k"]
    plan = outer.trace(k=5)
    assert plan.params == {"path": "abcd", "k": 5}


def test_unknown_parameter_names_it_and_suggests():
    CALLS.clear()
    with pytest.raises(dw.ParameterError, match="has no parameter 'kk'. Did you mean 'k'"):
        outer.run(kk=1)
    assert CALLS == []


def test_missing_parameter_names_it_before_any_step_runs():
    @pipeline
    def needs(path: str):
        return load(path)

    CALLS.clear()
    with pytest.raises(dw.ParameterError, match="needs a value for parameter 'path'"):
        needs.run()
    with pytest.raises(dw.ParameterError, match="parameter 'path'"):
        needs.graph()
    assert CALLS == []


@pytest.mark.parametrize("name", ["backend", "store", "max_workers", "regenerate", "progress",
                                  "address", "shared_filesystem"])
def test_reserved_run_option_names_are_refused_at_definition(name):
    src = f"def p({name}=1):\n    return None\n"
    ns: dict = {}
    exec(src, ns)
    with pytest.raises(dw.DefinitionError, match=f"parameter '{name}' has the name of a run"):
        pipeline(ns["p"])


def test_var_args_and_positional_only_parameters_are_refused():
    with pytest.raises(dw.DefinitionError, match=r"\*args or \*\*kwargs"):

        @pipeline
        def p(*xs):
            return None

    with pytest.raises(dw.DefinitionError, match="positional-only"):

        @pipeline
        def q(a, /):
            return None


def test_pipeline_name_option():
    @pipeline(name="training_v2")
    def p():
        return load("x")

    assert p.name == "training_v2"
    assert p.trace().name == "training_v2"
    with pytest.raises(dw.DefinitionError):
        pipeline(name="bad name")(lambda: None)


def test_nested_pipelines_inline_with_prefixed_ids():
    g = outer.graph()
    assert set(g.nodes) == {"prep/load", "prep/scale", "prep-2/load", "prep-2/scale",
                            "total", "total-2"}
    assert g.nodes["prep/scale"]["kind"] == "map"
    assert ("prep/scale", "total") in g.edges
    assert ("prep-2/scale", "total-2") in g.edges


def test_second_call_of_a_step_gets_numbered_id():
    @pipeline
    def p():
        a = load("a")
        b = load("b")
        c = load("c")
        return [a, b, c]

    assert list(p.graph().nodes) == ["load", "load-2", "load-3"]


def test_wrong_arguments_to_a_step_fail_at_trace_time_naming_it():
    @pipeline
    def p():
        return scale(1, 2, 3)

    with pytest.raises(dw.TraceError, match=r"Step 'scale' called with arguments that do not fit "
                                            r"scale\(x: 'int', k: 'int' = 1\)"):
        p.graph()

    @pipeline
    def q():
        return scale(x=1, y=1)

    with pytest.raises(dw.TraceError, match="Step 'scale'.*unexpected keyword argument 'y'"):
        q.graph()


def test_wrong_arguments_to_a_nested_pipeline_fail_naming_it():
    @pipeline
    def p():
        return prep()

    with pytest.raises(dw.TraceError, match="Pipeline 'prep' called with arguments"):
        p.graph()


def test_map_checks_fixed_arguments_and_items():
    @pipeline
    def p():
        return scale.map([1, 2], j=1)

    with pytest.raises(dw.TraceError, match="Step 'scale'.*'j'"):
        p.graph()

    @pipeline
    def q():
        return scale.map(5)

    with pytest.raises(dw.TraceError, match=r"scale.map .* needs a list of items.*got int"):
        q.graph()

    @pipeline
    def r():
        return scale.map([1], x=1, k=2)

    with pytest.raises(dw.TraceError, match="no argument is left to map over"):
        r.graph()


def test_map_over_constant_and_list_of_outputs():
    @pipeline
    def p():
        a = scale(1, k=5)
        b = scale(2, k=5)
        return scale.map([a, b, 7], k=2)

    g = p.graph()
    assert set(g.predecessors("scale-3")) == {"scale", "scale-2"}
    assert p.run().outputs == [10, 20, 14]


def test_outputs_nested_in_containers_make_edges():
    @pipeline
    def p():
        a = load("a")
        b = load("bb")
        return total([a, {"deep": (b,)}])

    g = p.graph()
    assert set(g.predecessors("total")) == {"load", "load-2"}
    assert g.edges["load", "total"]["argument"] == "xs"


def test_outputs_from_another_trace_are_refused():
    leaked = {}

    @pipeline
    def first():
        leaked["o"] = load("a")
        return leaked["o"]

    first.graph()

    @pipeline
    def second():
        return scale(leaked["o"])

    with pytest.raises(dw.TraceError, match="was not called in this pipeline"):
        second.graph()


def test_calling_a_pipeline_outside_a_trace_runs_plain_functions():
    assert outer() == {"a": (4 + 2 + 3) * 3, "b": (2 + 2 + 3) * 2}


def test_ignored_inputs_cannot_carry_outputs():
    @step(ignore_inputs=["log"])
    def f(x, log=None):
        return x

    @pipeline
    def p():
        return f(1, log=load("a"))

    with pytest.raises(dw.TraceError, match="argument 'log' is in ignore_inputs"):
        p.graph()


def test_tracing_twice_is_independent_and_context_is_restored():
    from ductwork.dsl.trace import current_trace

    outer.graph()
    outer.graph()
    assert current_trace() is None
    with pytest.raises(ZeroDivisionError):

        @pipeline
        def p():
            load("x")
            return 1 / 0

        p.graph()
    assert current_trace() is None


def test_outputs_inside_a_set_are_refused_at_trace_time():
    @pipeline
    def p():
        return total({load("a")})

    with pytest.raises(dw.TraceError, match="puts step outputs in a set.*Use a list"):
        p.graph()


def test_an_empty_map_is_not_a_cache_hit():
    @pipeline
    def p():
        return total(scale.map([]))

    run = p.run()
    assert run.outputs == 0 and not run.steps["scale"].cached
