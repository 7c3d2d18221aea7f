"""The hasher's dispatcher picks what ``functools.singledispatch`` picks, without loading typing."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from abc import ABCMeta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ductwork.runtime.keys.dispatch import Dispatcher


def _default(value: Any) -> str:
    return "default"


@st.composite
def hierarchies(draw: st.DrawFn) -> tuple[list[type], list[tuple[int, int]], list[int]]:
    """Random classes (some abstract, some virtual subclasses of those) and registrations."""
    classes: list[type] = []
    for i in range(draw(st.integers(1, 7))):
        bases = tuple(dict.fromkeys(
            classes[j] for j in draw(st.lists(st.integers(0, max(len(classes) - 1, 0)),
                                              max_size=2 if classes else 0))))
        meta = ABCMeta if draw(st.booleans()) else type
        try:
            classes.append(meta(f"C{i}", bases or (object,), {}))
        except TypeError:  # no consistent MRO (or metaclass) for these bases: leave it out
            continue
    virtual = draw(st.lists(st.tuples(st.integers(0, len(classes) - 1),
                                      st.integers(0, len(classes) - 1)), max_size=4))
    registered = draw(st.lists(st.integers(0, len(classes) - 1), unique=True))
    return classes, virtual, registered


def _answer(dispatch: Any, cls: type) -> Any:
    try:
        return dispatch(cls)
    except RuntimeError as exc:  # singledispatch's "Ambiguous dispatch"
        return ("ambiguous", str(exc))


@settings(max_examples=300, deadline=None)
@given(hierarchies(), st.booleans())
def test_dispatch_agrees_with_singledispatch(case: Any, early: bool) -> None:
    """Every class, abstract claims included, gets singledispatch's handler (or its error)."""
    classes, virtual, registered = case
    ours, theirs = Dispatcher(_default), functools.singledispatch(_default)

    def claim() -> None:
        for abstract, other in virtual:
            a, o = classes[abstract], classes[other]
            if isinstance(a, ABCMeta) and not issubclass(a, o):
                a.register(o)  # o becomes a virtual subclass of a

    if early:  # ABC.register before or after the registrations: neither may be cached
        claim()
    for i in registered:
        handler = (lambda name: lambda value: name)(classes[i].__name__)
        ours.register(classes[i], handler)
        theirs.register(classes[i], handler)
    if not early:
        claim()
    for cls in [*classes, int, bool, type]:
        assert _answer(ours.dispatch, cls) == _answer(theirs.dispatch, cls), cls.__mro__
    assert dict(ours.registry) == dict(theirs.registry)


def test_calls_and_registrations_as_singledispatch_does() -> None:
    """The decorator form, a call, the live registry and a non-class refused."""
    normalize = Dispatcher(_default)

    @normalize.register(int)
    def _int(value: int) -> str:
        return f"int {value}"

    view = normalize.registry
    normalize.register(str, lambda value: f"str {value}")
    assert (normalize(3), normalize(True), normalize("a"), normalize(2.5)) == (
        "int 3", "int True", "str a", "default")
    assert view[str]("b") == "str b" and view[object] is _default
    assert normalize.__wrapped__ is _default and normalize.__name__ == "_default"
    with pytest.raises(TypeError, match="not a class"):
        normalize.register(int | str, _int)  # type: ignore[arg-type]


def test_hashing_values_loads_no_typing() -> None:
    """Hashing builtins, containers and enums in a fresh interpreter imports no typing."""
    script = (
        "import json, sys\n"
        "from ductwork.runtime.keys.hashing import hash_value\n"
        "import enum\n"
        "class E(enum.Enum):\n    A = 1\n"
        "hash_value([1, 2.5, 'x', b'y', (None, True), {'k': {1, 2}}, E.A, range(3)])\n"
        "print(json.dumps('typing' in sys.modules))\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    out = subprocess.run([sys.executable, "-S", "-c", script], check=True, env=env,
                         capture_output=True, text=True).stdout
    assert json.loads(out) is False
