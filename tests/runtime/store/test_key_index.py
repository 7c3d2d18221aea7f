"""The key index reads a damaged entry as a miss, says which entry and what is wrong,
and the next ``put_key`` replaces it -- on a local directory and on fsspec."""

from __future__ import annotations

import json
import os
import re
import warnings

import pytest
from entry_files import write_entry

from ductwork.runtime.store.artifacts import ArtifactStore


def good_body(store) -> dict:
    ref = store.put(b"payload")
    return {"version": 1, "outputs": {"output": ref.to_dict()}}


def damaged(body: dict, how: str) -> bytes:
    out = body["outputs"]["output"]
    if how == "not_json":
        return json.dumps(body).encode()[:-3]
    if how == "not_utf8":
        return b"\xff\xfe" + json.dumps(body).encode()
    if how == "a_list":
        return b"[1, 2]"
    if how == "outputs_a_list":
        return json.dumps({"version": 1, "outputs": [out]}).encode()
    if how == "version":
        return json.dumps({**body, "version": 7}).encode()
    if how == "ref_a_string":
        return json.dumps({"version": 1, "outputs": {"output": "x"}}).encode()
    if how == "no_digest":
        return json.dumps({"version": 1, "outputs": {"output": {
            "serializer": out["serializer"], "size": out["size"], "digestt": "x"}}}).encode()
    if how == "digest":
        return json.dumps({"version": 1, "outputs": {"output": {**out, "digest": "z" * 64}}}
                          ).encode()
    if how == "serializer":
        return json.dumps({"version": 1, "outputs": {"output": {**out, "serializer": "bytez"}}}
                          ).encode()
    if how == "serializer_a_list":
        return json.dumps({"version": 1, "outputs": {"output": {**out, "serializer": []}}}
                          ).encode()
    if how == "size":
        return json.dumps({"version": 1, "outputs": {"output": {**out, "size": -1}}}).encode()
    raise AssertionError(how)


HOW = {
    "not_json": "is not valid JSON", "not_utf8": "is not valid JSON",
    "a_list": "is not {", "outputs_a_list": "is not {", "version": "format version 7",
    "ref_a_string": "output 'output' is not a", "no_digest": "output 'output' is not a",
    "digest": "has digest 'zzz", "serializer": "serializer 'bytez'",
    "serializer_a_list": "serializer []", "size": "has size -1",
}


@pytest.mark.parametrize("how", list(HOW))
def test_a_damaged_entry_is_a_miss_that_names_itself_and_is_replaced(store, how):
    body = good_body(store)
    path = write_entry(store, "key1", damaged(body, how))
    with pytest.warns(RuntimeWarning) as caught:
        assert store.get_key("key1") is None
    message = str(caught[0].message)
    assert path in message and "key1" in message and HOW[how] in message, message

    store.put_key("key1", {"output": store.put(b"payload")})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert store.get_key("key1")["output"].digest == body["outputs"]["output"]["digest"]


def test_a_directory_where_an_entry_belongs_is_a_miss_and_is_replaced(tmp_path):
    store = ArtifactStore(str(tmp_path / "store"))
    path = store.key_path("key1")
    os.makedirs(os.path.join(path, "junk"))
    with pytest.warns(RuntimeWarning, match="cannot be read"):
        assert store.get_key("key1") is None
    ref = store.put(b"payload")
    store.put_key("key1", {"output": ref})
    assert store.get_key("key1") == {"output": ref}


def test_a_good_entry_gives_no_warning(store):
    ref = store.put(b"payload")
    store.put_key("key1", {"a": ref, "b": ref})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert store.get_key("key1") == {"a": ref, "b": ref}


_GOOD = {"digest": "a" * 64, "serializer": "pickle", "size": 3}


@pytest.mark.parametrize("output, problem", [
    ("abc", "is not a {digest, serializer, size} record"),
    ([1, 2], "is not a {digest, serializer, size} record"),
    ({"digest": "a" * 64, "size": 3}, "is not a {digest, serializer, size} record"),
    ({**_GOOD, "digest": 7}, "not 64 hex digits"),
    ({**_GOOD, "digest": "A" * 64}, "not 64 hex digits"),
    ({**_GOOD, "size": True}, "not a byte count"),
    ({**_GOOD, "size": -1}, "not a byte count"),
    ({**_GOOD, "size": 3.0}, "not a byte count"),
    ({**_GOOD, "serializer": ["x"]}, "not registered"),
    ({**_GOOD, "serializer": "nope"}, "not registered"),
    ({**_GOOD, "classes": "m.C"}, "not a list of names"),
    ({**_GOOD, "classes": ["m.C", 1]}, "not a list of names"),
])
def test_a_damaged_output_record_says_what_is_wrong(output, problem):
    from ductwork.runtime.store.artifacts import BadEntry, parse_entry

    with pytest.raises(BadEntry, match=re.escape(problem)):
        parse_entry(json.dumps({"version": 1, "outputs": {"output": output}}).encode())
    good = parse_entry(json.dumps({"version": 1, "outputs": {"output": _GOOD}}).encode())
    assert good["output"].digest == "a" * 64 and good["output"].classes == ()
