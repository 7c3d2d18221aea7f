"""Recording a call: the plain-signature binder agrees with ``inspect``, errors included.

Random plain signatures (positional-or-keyword parameters, defaults on a suffix) and
random calls (positional values, keywords named after parameters or not): ``bind_plain``
must give exactly what ``Signature.bind`` + ``apply_defaults`` gives -- the same names, in
the same order, bound to the same objects -- and ``None`` exactly where inspect raises,
so a traced step's error is inspect's own message. And what the engine reads of each
call, ``substitute`` and ``deps``, keeps its answers on its fast paths.
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import ductwork as dw
from ductwork.dsl.binding import EMPTY, bind_plain, parameters, plain_table
from ductwork.dsl.core import Output
from ductwork.dsl.trace import Invocation, Link, links_for, step_links, substitute

P = inspect.Parameter
NAMES = ["a", "b", "c", "d", "e", "x"]


@st.composite
def signatures(draw: Any) -> inspect.Signature:
    names = draw(st.lists(st.sampled_from(NAMES[:-1]), unique=True, max_size=5))
    first_default = draw(st.integers(0, len(names)))
    return inspect.Signature([
        P(name, P.POSITIONAL_OR_KEYWORD, **({"default": object()} if i >= first_default else {}))
        for i, name in enumerate(names)
    ])


@given(signatures(), st.integers(0, 6), st.lists(st.sampled_from(NAMES), unique=True))
def test_bind_plain_agrees_with_inspect(signature: inspect.Signature, n_args: int,
                                        keywords: list[str]) -> None:
    args = tuple(object() for _ in range(n_args))
    kwargs = {name: object() for name in keywords}
    table = plain_table(tuple((p.name, int(p.kind), EMPTY if p.default is p.empty else p.default)
                              for p in signature.parameters.values()))
    assert table is not None
    fast = bind_plain(table, args, kwargs)
    try:
        bound = signature.bind(*args, **kwargs)
    except TypeError:
        assert fast is None
        return
    bound.apply_defaults()
    assert fast is not None
    assert list(fast.items()) == list(bound.arguments.items())
    assert all(fast[k] is v for k, v in bound.arguments.items())


@pytest.mark.parametrize("fn", [lambda z, /, a: 0, lambda a, *, z: 0, lambda a, *z: 0,
                                lambda a, **z: 0])
def test_a_signature_with_other_kinds_has_no_table(fn: Any) -> None:
    assert plain_table(parameters(fn)) is None


@dw.step
def scale(x: int, k: int = 1) -> int:
    return x * k


@pytest.mark.parametrize(("args", "kwargs", "message"), [
    ((1, 2, 3), {}, "too many positional arguments"),
    ((), {}, "missing a required argument: 'x'"),
    ((1,), {"x": 2}, "multiple values for argument 'x'"),
    ((1, 2), {"k": 2}, "multiple values for argument 'k'"),
    ((1,), {"y": 2}, "got an unexpected keyword argument 'y'"),
])
def test_a_misfit_call_raises_inspects_message(args: tuple[Any, ...], kwargs: dict[str, Any],
                                               message: str) -> None:
    @dw.pipeline
    def p() -> Any:
        return scale(*args, **kwargs)

    with pytest.raises(dw.TraceError) as caught:
        p.graph()
    try:
        scale.signature.bind(*args, **kwargs)
    except TypeError as exc:
        expected = str(exc)
    assert message in expected
    assert str(caught.value).startswith("Step 'scale' called with arguments that do not fit "
                                        "scale(x: 'int', k: 'int' = 1) -> 'int' at ")
    assert str(caught.value).endswith(f": {expected}.")


@pytest.mark.parametrize(("args", "kwargs"), [((1,), {}), ((1, 2), {}), ((), {"k": 3, "x": 1}),
                                              ((1,), {"k": 3})])
def test_a_traced_call_binds_every_parameter_in_order(args: tuple[Any, ...],
                                                      kwargs: dict[str, Any]) -> None:
    @dw.pipeline
    def p() -> Any:
        return scale(*args, **kwargs)

    bound = scale.signature.bind(*args, **kwargs)
    bound.apply_defaults()
    (invocation,) = p.trace().invocations.values()
    assert list(invocation.arguments.items()) == list(bound.arguments.items())


def test_substitute_copies_a_dict_only_where_a_value_changes() -> None:
    out, other = Output("a", "output"), Output("b", "output")
    values = {out: 1, other: 2}
    constant = [1, 2, 3]
    arguments = {"x": out, "n": 3, "rows": constant, "nested": {"y": other}, "s": "t"}
    new = substitute(arguments, values.__getitem__)
    assert new == {"x": 1, "n": 3, "rows": [1, 2, 3], "nested": {"y": 2}, "s": "t"}
    assert list(new) == list(arguments) and new["rows"] is constant
    assert arguments["x"] is out  # the traced arguments are not changed
    plain = {"n": 3, "rows": constant}
    assert substitute(plain, values.__getitem__) is plain


@pytest.mark.parametrize(("sources", "deps"), [
    ((), ()), (("a",), ("a",)), (("a", "b", "a"), ("a", "b")), (("b", "b"), ("b",)),
])
def test_deps_name_each_source_once_in_order(sources: tuple[str, ...],
                                             deps: tuple[str, ...]) -> None:
    links = tuple(Link(source, "output", f"arg{i}") for i, source in enumerate(sources))
    assert Invocation("c", None, {}, links, ("f.py", 1)).deps == deps


@pytest.mark.parametrize("arguments", [
    {"x": Output("a", "output"), "n": 1},
    {"rows": [Output("a", "output"), {"k": Output("b", "m")}], "s": "t"},
    {"x": None, "kw": {"p": Output("a", "output"), "q": [Output("b", "output")]}},
    {},
])
def test_step_links_finds_the_edges_links_for_finds(arguments: dict[str, Any]) -> None:
    assert step_links("s", arguments, ("f.py", 1), "kw") == links_for(arguments, "kw")


def test_step_links_refuses_a_value_that_contains_itself_naming_the_step() -> None:
    rows: list[Any] = [1]
    rows.append(rows)
    with pytest.raises(dw.TraceError, match=r"Step 's' at f.py:1: argument 'rows' contains "
                                            r"itself: rows\[1\]"):
        step_links("s", {"rows": rows}, ("f.py", 1))
