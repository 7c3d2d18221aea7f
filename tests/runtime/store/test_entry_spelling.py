"""A key entry in ``put_key``'s own spelling is read without the JSON tree
(``read_canonical``), to the same refs the full parse gives; any other spelling, and
every damaged entry, goes to the full parse, which says what is wrong."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_key_index import HOW, damaged, good_body

from ductwork.runtime.keys.hashing import new_hasher
from ductwork.runtime.store.artifacts import ArtifactRef, ArtifactStore, BadEntry
from ductwork.runtime.store.entry import _parse_json, parse_entry, read_canonical

KEY = "ab" + "c" * 62


def _ref(data: bytes, serializer: str = "json", inline: bool = True,
         classes: tuple[str, ...] = ()) -> ArtifactRef:
    return ArtifactRef(new_hasher(data).hexdigest(), serializer, len(data), classes,
                       data if inline else None)


def _written(tmp_path, outputs: dict[str, ArtifactRef]) -> bytes:
    store = ArtifactStore(str(tmp_path / "store"))
    store.put_key(KEY, outputs)
    return store._cat(store.key_path(KEY))


def _same(a: dict[str, ArtifactRef], b: dict[str, ArtifactRef]) -> bool:
    return a == b and all(a[n].inline == b[n].inline and a[n].classes == b[n].classes
                          for n in a)


@pytest.mark.parametrize("outputs", [
    {"output": _ref(b"6")},
    {"output": _ref(b"x" * 700, "bytes")},
    {"output": _ref(b"", "bytes")},
    {"output": _ref(b"x" * 5000, "pickle", inline=False)},
    {"a": _ref(b"1"), "b_2": _ref(b"[1, 2]", inline=False), "c": _ref(b'"s"', "json")},
], ids=["int", "bytes", "empty", "object", "three"])
def test_put_keys_own_spelling_is_read_without_the_json_tree(tmp_path, outputs):
    data = _written(tmp_path, outputs)
    fast = read_canonical(data)
    assert fast is not None, data
    assert _same(fast, _parse_json(data)) and _same(fast, outputs)
    assert fast["output" if "output" in outputs else "a"].classes == ()


@pytest.mark.parametrize("outputs", [
    {"output": _ref(b"6", classes=("m:Model",))},  # classes: read by the full parse
    {"naïve": _ref(b"6")},  # an escaped name
    {"output": _ref(b"6", "my.serializer-that-is-not-registered")},
], ids=["classes", "unicode_name", "unknown_serializer"])
def test_other_spellings_take_the_full_parse(tmp_path, outputs):
    data = _written(tmp_path, outputs)
    assert read_canonical(data) is None
    if "naïve" in outputs:
        assert _same(parse_entry(data), outputs)


@pytest.mark.parametrize("how", sorted(HOW))
def test_every_damaged_entry_still_says_what_is_wrong(tmp_path, how):
    store = ArtifactStore(str(tmp_path / "store"))
    data = damaged(good_body(store), how)
    assert read_canonical(data) is None
    with pytest.raises(BadEntry, match=re.escape(HOW[how])):
        parse_entry(data)


@pytest.mark.parametrize("change", [
    (b'"size": 1}', b'"size": 2}'),  # inline bytes of another size
    (b'"inline": "Ng=="', b'"inline": "Nw=="'),  # bytes that hash to another digest
    (b'"inline": "Ng=="', b'"inline": "Ng="'),  # not base64
])
def test_damaged_inline_data_in_the_own_spelling_is_a_bad_entry(tmp_path, change):
    data = _written(tmp_path, {"output": _ref(b"6")})
    assert read_canonical(data) is not None
    with pytest.raises(BadEntry, match="inline data"):
        parse_entry(data.replace(*change))


@pytest.mark.parametrize("cut", [1, 2, 10, 17])
def test_an_entry_cut_short_or_padded_is_never_read_as_the_fast_spelling(tmp_path, cut):
    data = _written(tmp_path, {"output": _ref(b"6"), "other": _ref(b"7")})
    assert read_canonical(data[:-cut]) is None
    assert read_canonical(data + b" ") is None
    assert read_canonical(data.replace(b", ", b",", 1)) is None


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.from_regex(r"[A-Za-z0-9_]{1,12}", fullmatch=True) | st.text(max_size=6),
                       st.tuples(st.binary(max_size=40), st.booleans(),
                                 st.sampled_from(["json", "bytes", "pickle", "str"])),
                       min_size=1, max_size=4))
def test_fast_and_full_parse_agree_on_any_entry_put_key_writes(tmp_path_factory, outputs):
    refs = {name: _ref(data, serializer, inline)
            for name, (data, inline, serializer) in outputs.items()}
    data = json.dumps({"version": 1, "outputs": {n: r.to_dict() for n, r in refs.items()}},
                      sort_keys=True).encode()
    fast = read_canonical(data)
    assert _same(_parse_json(data), refs)
    assert fast is None or _same(fast, refs)
    assert _same(parse_entry(data), refs)
