"""``why`` shows a small input's values, not its digests: "input 'c' changed (0.5 -> 0.7)".

A short repr of each small input (scalars, short strings, small tuples and lists of
them) is recorded beside the digests when a key is computed (``value:<arg>``); it is
not part of the key. Big values, values the key never saw (upstream outputs), and
anything secret -- by its argument's name or its look -- keep their digests, as do
records written before values were kept.
"""

from __future__ import annotations

import re

import pytest

from ductwork import pipeline, step
from ductwork.runtime.keys.cache_key import diff, finish_key, input_components, key_basis
from ductwork.runtime.keys.shown import short_repr
from ductwork.runtime.records.runstore import forget_runstore
from ductwork.runtime.store.artifacts import ArtifactStore

DIGESTS = re.compile(r"\([0-9a-f]{12} -> [0-9a-f]{12}\)")


@step
def fit(c: float, label: str = "a", shape: tuple = (1, 2), rows: list | None = None,
        api_token: str = "", note: str = "") -> float:
    return c


@pipeline
def train(c: float = 0.5, label: str = "a", shape: tuple = (1, 2), n: int = 3,
          api_token: str = "t0ken-one-long", note: str = ""):
    return fit(c, label=label, shape=shape, rows=list(range(n)), api_token=api_token,
               note=note)


@pytest.mark.parametrize(("value", "shown"), [
    (0.5, "0.5"), (7, "7"), (True, "True"), (None, "None"), (1 + 2j, "(1+2j)"),
    ("adam", "'adam'"), (b"ab", "b'ab'"), ((1, "x"), "(1, 'x')"), ([0.1, 2], "[0.1, 2]"),
    ((), "()"),
])
def test_small_values_are_shown_by_their_repr(value, shown):
    assert short_repr(value) == shown


@pytest.mark.parametrize("value", [
    "x" * 200, 10 ** 40, list(range(100)), ((1, 2), (3, 4)), {"a": 1}, {1, 2}, object(),
    (1.5,) * 30, bytearray(b"ab"),
])
def test_big_or_unknown_values_are_not_shown(value):
    assert short_repr(value) is None


def _run(store, **params):
    return train.run(store=store, **params)


def test_why_names_the_old_and_new_values_of_a_small_input(tmp_path):
    store = str(tmp_path / "s")
    _run(store)
    why = _run(store, c=0.7, label="b", shape=(1, 3)).steps["fit"].why
    assert "input 'c' changed (0.5 -> 0.7)" in why
    assert "input 'label' changed ('a' -> 'b')" in why
    assert "input 'shape' changed ((1, 2) -> (1, 3))" in why
    forget_runstore(ArtifactStore(store))


def test_big_inputs_and_secrets_keep_their_digests(tmp_path):
    store = str(tmp_path / "s")
    first = _run(store, note="AccountKey=abcdefgh0123")
    assert not any(k.startswith("value:api_token") or k.startswith("value:note")
                   for k in first.steps["fit"].components)
    why = _run(store, n=200, api_token="an0ther-t0ken-value",
               note="AccountKey=ijklmnop4567").steps["fit"].why
    for name in ("api_token", "note"):
        (line,) = [x for x in why.splitlines() if f"input '{name}' changed" in x]
        assert DIGESTS.search(line), line
    # Each side on its own: three rows were small, two hundred are not.
    assert re.search(r"input 'rows' changed \(\[0, 1, 2\] -> [0-9a-f]{12}\)", why), why
    assert "t0ken" not in why and "abcdefgh" not in why and "ijklmnop" not in why
    forget_runstore(ArtifactStore(store))


def test_the_values_shown_are_not_part_of_the_key(tmp_path):
    store = str(tmp_path / "s")
    record = _run(store, c=0.25).steps["fit"]
    assert record.components["value:c"] == "0.25"
    arguments = {"c": 0.25, "label": "a", "shape": (1, 2), "rows": [0, 1, 2],
                 "api_token": "t0ken-one-long", "note": ""}
    key, _ = finish_key(key_basis(fit), input_components(fit, arguments))
    assert record.key == key  # stores written before values were shown keep their hits
    forget_runstore(ArtifactStore(store))


def test_records_without_values_show_digests_and_a_side_without_one_its_digest():
    old = {"input:c": "790273396be0aaaa", "code": "x"}
    new = {"input:c": "5b45d5f00cefbbbb", "code": "x", "value:c": "0.7"}
    assert diff(old, old | {"input:c": "5b45d5f00cefbbbb"}) == [
        "input 'c' changed (790273396be0 -> 5b45d5f00cef)"]
    assert diff(old, new) == ["input 'c' changed (790273396be0 -> 0.7)"]
    assert diff(old | {"value:c": "0.5"}, new) == ["input 'c' changed (0.5 -> 0.7)"]
    # Values are never a change of their own: equal digests are an equal input.
    assert diff(new | {"value:c": "0.70"}, new) == []
