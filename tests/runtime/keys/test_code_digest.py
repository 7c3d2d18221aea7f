"""hash_code must give hash_tagged's digests: every fingerprint component is made with it."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ductwork.runtime.keys.code_digest import hash_code
from ductwork.runtime.keys.hashing import hash_tagged

LONG = "x" * 300  # past the precomputed string headers
PAIRS = [(f"name{i}", f"fn:mod.f{i}") for i in range(70)]  # past the precomputed list heads


@pytest.mark.parametrize(
    "parts",
    [
        (), ("",), ("def f(x):\n    return x",), (LONG,), ("ünï", "\ud800 lone surrogate"),
        ([],), ([("a", "b")],), (PAIRS,), ("own", [("x", "fn:m.x"), ("y", "builtin:len")]),
        ("own", [], "more"), (["not", "pairs"],), ("own", [("a", 1)]), ("own", None, [("a", "b")]),
        ("own", [("a", "b", "c")]), (("a", "b"),), (3,),
    ],
)
def test_same_digests_as_hash_tagged(parts: tuple[Any, ...]) -> None:
    assert hash_code("Function", *parts) == hash_tagged("Function", *parts)


text = st.text(max_size=40)


@given(st.lists(st.one_of(text, st.lists(st.tuples(text, text), max_size=8)), max_size=4))
def test_same_digests_on_random_parts(parts: list[Any]) -> None:
    assert hash_code("Class", *parts) == hash_tagged("Class", *parts)
