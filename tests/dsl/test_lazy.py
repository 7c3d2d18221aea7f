"""The lazy-input walker: what it finds and replaces, against a plain recursive model."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, NamedTuple

from hypothesis import given
from hypothesis import strategies as st

from ductwork.dsl.lazy import holds_lazy, is_lazy, materialize
from ductwork.dsl.step import step


class Lazy:
    def __init__(self, value: int) -> None:
        self.value = value

    def __ductwork_materialize__(self, context: Any) -> int:
        return self.value * 10

    def materialize(self) -> int:
        return self.value * 10


class Pair(NamedTuple):
    left: Any
    right: Any


def _read(lazy: Lazy) -> int:
    return lazy.value * 10


def _model_holds(value: Any) -> bool:
    if is_lazy(value):
        return True
    if isinstance(value, list | tuple):
        return any(_model_holds(v) for v in value)
    if isinstance(value, dict):
        return any(_model_holds(v) for v in value.values())
    return False


def _model_read(value: Any) -> Any:
    if is_lazy(value):
        return _read(value)
    if isinstance(value, Pair):
        return Pair(*map(_model_read, value))
    if isinstance(value, list | tuple):
        return type(value)(map(_model_read, value))
    if isinstance(value, dict):
        return type(value)((k, _model_read(v)) for k, v in value.items())
    return value


leaves = st.one_of(st.integers(), st.text(max_size=3), st.none(), st.floats(allow_nan=False),
                   st.builds(Lazy, st.integers(0, 9)), st.builds(object))
values = st.recursive(leaves, lambda inner: st.one_of(
    st.lists(inner, max_size=4),
    st.lists(inner, max_size=4).map(tuple),
    st.builds(Pair, inner, inner),
    st.dictionaries(st.text(max_size=2), inner, max_size=3),
    st.dictionaries(st.text(max_size=2), inner, max_size=3).map(OrderedDict),
), max_leaves=20)


@given(values)
def test_the_walker_finds_and_replaces_exactly_what_the_model_does(value):
    assert holds_lazy(value) == _model_holds(value)
    got = materialize(value, _read)
    expected = _model_read(value)
    assert got == expected and type(got) is type(expected)
    if not _model_holds(value):
        assert got is value  # nothing lazy: nothing copied


def test_big_plain_arguments_are_returned_as_they_are():
    rows = [(i, "x", 1.0) for i in range(100_000)]
    records = [{"a": i, "b": [i, None]} for i in range(100_000)]
    for big in (rows, records, {"rows": rows, "records": records}):
        assert not holds_lazy(big) and materialize(big, _read) is big
    mixed = [*rows, [{"deep": Lazy(4)}]]
    assert holds_lazy(mixed) and materialize(mixed, _read)[-1] == [{"deep": 40}]


@step
def echo(*values: Any, **named: Any) -> list[Any]:
    return [list(values), named]


@step
def same(x: Any) -> Any:
    return x


def test_a_plain_step_call_reads_lazy_values_at_any_depth():
    plain = [1, [2, "x"]]
    assert echo(*plain)[0][1] is plain[1]  # nothing lazy: the very same objects
    assert echo(Lazy(1), [Lazy(2), (3, Lazy(4))], k={"n": [Lazy(5)]}) == [
        [10, [20, (3, 40)]], {"k": {"n": [50]}}]
    assert same.map([Lazy(1), [Lazy(2)], 3]) == [10, [20], 3]


def test_a_container_holding_itself_is_walked_without_end():
    loop: list[Any] = [1]
    loop.append(loop)
    assert materialize(loop, _read) is loop
    assert same(loop) is loop
    assert same([loop, Lazy(3)])[1] == 30
