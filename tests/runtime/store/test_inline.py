"""Small step outputs are inlined: their bytes travel in the ref, the cache entry and the
run record, and no object file is written for them -- on a local directory and memory://.

The entry format stays version 1 with one optional field (``inline``, base64), so an
entry without it (an older store) reads as before; damaged inline data is a miss with a
warning naming the entry; a ref whose inline bytes do not hash to its digest fails
verification (``CorruptArtifact``) and is never loaded.
"""

from __future__ import annotations

import base64
import json
import os
import warnings

import pytest
from entry_files import write_entry

from ductwork.runtime.keys.hashing import hash_value
from ductwork.runtime.store.artifacts import (
    INLINE_MAX,
    ArtifactRef,
    CorruptArtifact,
    parse_entry,
)
from ductwork.runtime.store.refs import (
    GatherRef,
    iter_digests,
    ref_from_json,
    ref_to_json,
    stored_digests,
)

KEY = "ab" + "c" * 62


def objects(store) -> list[str]:
    return list(store.iter_objects())


def entry_body(store, key: str = KEY) -> dict:
    return json.loads(store._cat(store.key_path(key)))


def write_body(store, body: dict, key: str = KEY) -> str:
    return write_entry(store, key, json.dumps(body).encode())


def test_a_small_value_is_inlined_and_writes_no_object(store):
    ref = store.put({"a": 1, "b": [1, 2]}, inline=True)
    assert ref.inline is not None and len(ref.inline) == ref.size <= INLINE_MAX
    assert objects(store) == []
    assert store.get(ref) == {"a": 1, "b": [1, 2]}
    # The same value without inline=True is an object, with the same digest: one identity.
    plain = store.put({"a": 1, "b": [1, 2]})
    assert plain.inline is None and plain.digest == ref.digest
    assert objects(store) == [ref.digest]


def test_a_value_over_the_threshold_is_an_object(store):
    ref = store.put(b"x" * (INLINE_MAX + 1), inline=True)
    assert ref.inline is None and objects(store) == [ref.digest]
    at_limit = store.put(b"y" * INLINE_MAX, inline=True)
    assert at_limit.inline == b"y" * INLINE_MAX and objects(store) == [ref.digest]


def test_inline_bytes_do_not_change_a_refs_identity_or_its_key(store):
    ref = store.put(41, inline=True)
    bare = ref.replace(inline=None)
    assert ref == bare and hash(ref) == hash(bare)
    assert hash_value(ref) == hash_value(bare)  # downstream cache keys: old and new agree
    assert "inline" not in repr(ref)  # bytes stay out of logs and errors


def test_ref_json_round_trip_keeps_the_bytes(store):
    ref = store.put("hello", inline=True)
    d = ref.to_dict()
    assert base64.b64decode(d["inline"]) == ref.inline
    back = ArtifactRef.from_dict(json.loads(json.dumps(d)))
    assert back.inline == ref.inline and store.get(back) == "hello"
    gather = GatherRef.of([ref, store.put("x" * 5000, inline=True)])
    again = ref_from_json(json.loads(json.dumps(ref_to_json(gather))))
    assert [store.get(p) for p in again.parts] == ["hello", "x" * 5000]


def test_stored_digests_names_only_objects(store):
    small = store.put(1, inline=True)
    big = store.put(b"z" * 5000, inline=True)
    gather = GatherRef.of([small, big])
    assert iter_digests(gather) == [small.digest, big.digest]  # what a run refers to
    assert stored_digests(gather) == [big.digest]  # what has a file to lease and keep


def test_entry_round_trip_needs_no_object(store):
    refs = {"lo": store.put(1, inline=True), "hi": store.put(b"q" * 3000, inline=True)}
    store.put_key(KEY, refs)
    body = entry_body(store)
    assert body["version"] == 1
    assert "inline" in body["outputs"]["lo"] and "inline" not in body["outputs"]["hi"]
    got = store.get_key(KEY)
    assert got == refs and got["lo"].inline == refs["lo"].inline
    assert store.get(got["lo"]) == 1 and store.get(got["hi"]) == b"q" * 3000
    # An object-backed output still needs its object: without it the entry is a miss.
    store.delete_object(refs["hi"].digest)
    assert store.get_key(KEY) is None


def test_an_entry_without_inline_data_still_works(store):
    """An older store's entry (objects only) reads as before."""
    ref = store.put(7)
    body = {"version": 1, "outputs": {"output": ref.to_dict()}}
    assert "inline" not in body["outputs"]["output"]
    write_body(store, body)
    got = store.get_key(KEY)
    assert got["output"].inline is None and store.get(got["output"]) == 7


def _damage(body: dict, how: str) -> dict:
    out = body["outputs"]["output"]
    if how == "not_base64":
        out["inline"] = "***" + out["inline"][3:]
    elif how == "truncated":
        out["inline"] = base64.b64encode(base64.b64decode(out["inline"])[:-1]).decode()
    elif how == "not_a_string":
        out["inline"] = 12
    return body


@pytest.mark.parametrize("how", ["not_base64", "truncated", "not_a_string"])
def test_damaged_inline_data_is_a_miss_with_a_warning_then_replaced(store, how):
    ref = store.put([1, 2, 3], inline=True)
    store.put_key(KEY, {"output": ref})
    path = write_body(store, _damage(entry_body(store), how))
    with pytest.warns(RuntimeWarning, match="inline") as caught:
        assert store.get_key(KEY) is None
    assert path in str(caught[0].message)
    store.put_key(KEY, {"output": ref})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert store.get(store.get_key(KEY)["output"]) == [1, 2, 3]


def test_parse_entry_names_the_output_with_bad_inline_data():
    body = {"version": 1, "outputs": {"model": {
        "digest": "0" * 64, "serializer": "json", "size": 3, "inline": "%%%"}}}
    with pytest.raises(ValueError, match="'model'.*inline"):
        parse_entry(json.dumps(body).encode())


def test_tampered_inline_bytes_fail_verification_and_are_never_loaded(store):
    ref = store.put({"k": 1}, inline=True)
    flipped = bytearray(ref.inline)
    flipped[len(flipped) // 2] ^= 0x01
    bad = ref.replace(inline=bytes(flipped))
    with pytest.raises(CorruptArtifact) as info:
        store.get(bad)
    assert info.value.digest == ref.digest and ref.digest in str(info.value)
    assert store.get(ref) == {"k": 1}


def test_a_cold_entry_is_one_file(tmp_path):
    """What the change is for: a small output and its entry are one file write."""
    from ductwork.runtime.store.artifacts import ArtifactStore

    store = ArtifactStore(str(tmp_path / "s"))
    store.put_key(KEY, {"output": store.put(3, inline=True)})
    files = [os.path.relpath(os.path.join(d, f), store.root)
             for d, _, fs in os.walk(store.root) for f in fs]
    assert files == [os.path.relpath(store.key_path(KEY), store.root)]


def test_refs_pickle_with_their_bytes_and_from_older_pickles_without(store):
    """Workers send refs back pickled; one from an older ductwork has no ``inline``."""
    import pickle

    import cloudpickle

    ref = store.put([1, 2], inline=True)
    for dumps in (pickle.dumps, cloudpickle.dumps):
        back = pickle.loads(dumps(ref))
        assert back == ref and back.inline == ref.inline and store.get(back) == [1, 2]
    # What pickle does with an older ductwork's state: __new__, then __setstate__(dict).
    plain = store.put([3])
    old_state = {"digest": plain.digest, "serializer": plain.serializer, "size": plain.size,
                 "classes": ()}
    old = ArtifactRef.__new__(ArtifactRef)
    old.__setstate__(old_state)
    assert old.inline is None and old == plain and store.get(old) == [3]
    assert stored_digests(old) == [plain.digest]


@pytest.mark.parametrize("size", [0, 300, (1 << 16) - 1, 1 << 16, (1 << 16) + 1, 200_000])
def test_a_small_file_is_read_whole_in_as_few_reads_as_it_takes(tmp_path, monkeypatch, size):
    """A warm step reads one key entry: one read when it is shorter than the buffer (a
    short read of a regular file is its end), more only for a bigger file."""
    import os

    from ductwork.runtime.store import files as store_files
    from ductwork.runtime.store.artifacts import ArtifactStore

    data = os.urandom(size)
    path = tmp_path / "entry.json"
    path.write_bytes(data)
    store = ArtifactStore(str(tmp_path / "s"))
    reads = []
    real_read = os.read
    monkeypatch.setattr(store_files.os, "read", lambda fd, n: reads.append(n) or real_read(fd, n))
    assert store._cat_small(str(path)) == data
    full, rest = divmod(size, 1 << 16)
    assert len(reads) == (1 if size < 1 << 16 else full + 1 + (rest > 0))  # + the EOF read
