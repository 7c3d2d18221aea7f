"""Parameters, bound calls and return hints read without ``inspect`` or ``typing``.

``binding.code_parameters`` reads a function's parameters from its code object, and
``hints.return_hint`` resolves its return annotation without ``typing`` where it can: for
random signatures and random annotations, each must give exactly what ``inspect`` and
``typing.get_type_hints`` give (the same names, kinds, default objects; the same hint, or
none where one annotation cannot be resolved), and ``call_arguments`` must split bound
arguments as ``inspect.BoundArguments`` does.
"""

from __future__ import annotations

import functools
import inspect
import pickle
import typing
from typing import Any, NamedTuple

import cloudpickle
import pytest
from hypothesis import given
from hypothesis import strategies as st

import ductwork as dw
from ductwork.dsl.binding import EMPTY, call_arguments, code_parameters, parameters
from ductwork.dsl.hints import NO_HINT, arguments, origin, return_hint
from ductwork.dsl.options import outputs_from_annotation

NAMES = ["a", "b", "c", "d", "e", "f", "g"]


@st.composite
def signature_sources(draw: Any) -> str:
    """The source of a ``def f(...)`` with any mix of parameter kinds and defaults."""
    names = iter(draw(st.permutations(NAMES)))
    positional = [next(names) for _ in range(draw(st.integers(0, 3)))]
    posonly = draw(st.integers(0, len(positional)))
    first_default = draw(st.integers(0, len(positional)))
    parts = [f"{n}={i}" if i >= first_default else n for i, n in enumerate(positional)]
    if posonly:
        parts.insert(posonly, "/")
    star = draw(st.sampled_from(["", "*args", "*"]))
    kwonly = [next(names) for _ in range(draw(st.integers(0, 2)))] if star else []
    if star:
        parts.append(star)
        parts += [f"{n}={draw(st.integers(0, 9))}" if draw(st.booleans()) else n for n in kwonly]
    if draw(st.booleans()):
        parts.append("**kwargs")
    if star == "*" and not kwonly:
        parts.remove("*")
    return f"def f({', '.join(parts)}):\n    return 0\n"


def _made(source: str) -> Any:
    namespace: dict[str, Any] = {}
    exec(source, namespace)
    return namespace["f"]


def _inspected(fn: Any) -> list[tuple[str, int, Any]]:
    return [(p.name, int(p.kind), EMPTY if p.default is p.empty else p.default)
            for p in inspect.signature(fn).parameters.values()]


@given(signature_sources())
def test_code_parameters_agree_with_inspect(source: str) -> None:
    fn = _made(source)
    params = code_parameters(fn)
    assert params is not None
    assert [(n, k) for n, k, _ in params] == [(n, k) for n, k, _ in _inspected(fn)]
    assert all(a is b for (_, _, a), (_, _, b) in zip(params, _inspected(fn), strict=True))


@given(signature_sources(), st.integers(0, 5), st.lists(st.sampled_from([*NAMES, "args", "z"]),
                                                         unique=True))
def test_call_arguments_split_as_bound_arguments_do(source: str, n_args: int,
                                                    keywords: list[str]) -> None:
    fn = _made(source)
    signature = inspect.signature(fn)
    try:
        bound = signature.bind(*range(n_args), **{k: object() for k in keywords})
    except TypeError:
        return
    bound.apply_defaults()
    # Every parameter bound, and one left out (the rest then go by keyword).
    for bound_now in (dict(bound.arguments), {k: v for i, (k, v) in
                                              enumerate(bound.arguments.items()) if i != 1}):
        expected = inspect.BoundArguments(signature, bound_now)  # type: ignore[arg-type]
        args, kwargs = call_arguments(parameters(fn), bound_now)
        assert args == expected.args and kwargs == expected.kwargs


class Point(NamedTuple):
    x: int
    y: int


def _wrapper(fn: Any) -> Any:
    @functools.wraps(fn)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)
    return wrapped


@pytest.mark.parametrize("fn", [
    functools.partial(lambda a, b=2, *, c: 0, 1), _wrapper(lambda a, b=1: 0), Point, len,
    type("Callable", (), {"__call__": lambda self, x, y=1: 0})(),
])
def test_unusual_callables_take_inspects_parameters(fn: Any) -> None:
    assert code_parameters(fn) is None
    assert list(parameters(fn)) == _inspected(fn)


# Annotations, as objects or strings, resolvable or not (``Missing`` is defined nowhere).
ANNOTATIONS = [
    int, float, None, Point, tuple[int, str], tuple[int, ...], tuple[()], tuple[int, "Point"],
    int | None, list[int], dict[str, list[int]], typing.Tuple[int, str], typing.Any,  # noqa: UP006
    typing.Optional[int], typing.Annotated[tuple[int, int], "meta"], typing.Generic,  # noqa: UP045
    "int", "None", "Point", "tuple[int, str]", "tuple[int, ...]", "int | None", "Missing",
    "tuple[int, 'Missing']", "list['Point']", "(int, str)", "'int'", "typing.Tuple[int, int]",
    "typing.Generic", "1 +", "*Point", 3, "x.y", "'int | None'", "'Missing'", "\"'int'\"",
    "'(int, str)'", "'*Point'",
]


@given(st.lists(st.sampled_from(ANNOTATIONS), max_size=3), st.sampled_from(ANNOTATIONS),
       st.booleans())
def test_return_hint_agrees_with_get_type_hints(params: list[Any], ret: Any,
                                                has_return: bool) -> None:
    def f(*args: Any) -> None:
        return None

    f.__annotations__ = {f"p{i}": a for i, a in enumerate(params)}
    if has_return:
        f.__annotations__["return"] = ret
    try:
        expected = typing.get_type_hints(f).get("return", NO_HINT)
    except Exception:
        expected = NO_HINT
    assert return_hint(f) == expected
    if expected is not NO_HINT:
        assert origin(expected) == typing.get_origin(expected)
        assert arguments(expected) == typing.get_args(expected)


def _reference_outputs(fn: Any) -> tuple[str, ...] | None:
    """``outputs_from_annotation`` as it was, through typing."""
    try:
        ret = typing.get_type_hints(fn).get("return")
    except Exception:
        return None
    if ret is None:
        return None
    if isinstance(ret, type) and issubclass(ret, tuple) and hasattr(ret, "_fields"):
        return tuple(ret._fields)
    if typing.get_origin(ret) is tuple:
        args = typing.get_args(ret)
        if len(args) >= 2 and args[-1] is not Ellipsis:
            return tuple(f"output_{i}" for i in range(len(args)))
    return None


@pytest.mark.parametrize("ret", ANNOTATIONS)
def test_outputs_from_annotation_as_before(ret: Any) -> None:
    def f(a: int) -> None:
        return None

    f.__annotations__["return"] = ret
    assert outputs_from_annotation(f) == _reference_outputs(f)


@dw.step
def scale(x: int, /, k: int = 2, *rest: int, by: int = 1, **more: Any) -> int:
    return x * k * by


@dw.pipeline
def scaled(n: int = 1, *, m: int = 2):
    return scale(n, m)


def test_signature_is_inspects_and_parameters_keep_inspects_empty() -> None:
    assert scale.signature == inspect.signature(scale.fn)
    assert scaled.signature == inspect.signature(scaled.fn)
    assert repr(scale) == f"<step scale{inspect.signature(scale.fn)}>"

    @dw.pipeline
    def needs(a: int, b: int = 3):
        return scale(a, b)

    assert needs.parameters == {"a": inspect.Parameter.empty, "b": 3}
    assert needs.parameters["a"] is inspect.Parameter.empty


def test_a_step_pickled_with_an_inspect_binding_table_binds_again() -> None:
    """A step pickled before parameters were read from code (no ``_params``) held a table
    whose missing defaults are ``inspect.Parameter.empty``; it is made again."""
    @dw.step
    def add(x: int, y: int = 1) -> int:
        return x + y

    state = dict(pickle.loads(cloudpickle.dumps(add)).__dict__)
    del state["_params"]
    empty = inspect.Parameter.empty
    state["_made"] = (state["options"], "add", (("x", "y"), (("x", empty), ("y", 1)), 2),
                      False, None)
    old = dw.Step.__new__(dw.Step)
    old.__setstate__(state)

    @dw.pipeline
    def uses(n: int = 1):
        return old(y=n)

    with pytest.raises(dw.TraceError, match="missing a required argument: 'x'"):
        uses.trace()
