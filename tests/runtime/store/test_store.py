import json
import os
import subprocess
import sys
import textwrap
import time

import pytest

from ductwork.dsl.core import DuctworkError
from ductwork.runtime.keys.hashing import new_hasher
from ductwork.runtime.store.artifacts import (
    ArtifactRef,
    ArtifactStore,
    CorruptArtifact,
    MissingArtifact,
)
from ductwork.runtime.store.hashio import THREAD_MIN
from ductwork.runtime.store.serializers import SerializerError, register_serializer

try:
    import numpy as np
except ImportError:
    np = None
try:
    import pandas as pd
except ImportError:
    pd = None

BIG = THREAD_MIN + 12_345  # takes the threaded write and read paths


def read_raw(store, digest):
    if store.is_local:
        with open(store.object_path(digest), "rb") as f:
            return f.read()
    return store.fs.cat_file(store.object_path(digest))


def write_raw(store, digest, data):
    if store.is_local:
        with open(store.object_path(digest), "wb") as f:
            f.write(data)
    else:
        store.fs.pipe_file(store.object_path(digest), data)


def files_under(store, top):
    base = os.path.join(store.root, top) if store.is_local else f"{store.root}/{top}"
    if store.is_local:
        return [os.path.join(d, f) for d, _, fs in os.walk(base) for f in fs]
    return store.fs.find(base) if store.fs.exists(base) else []


VALUES = {
    "json": lambda: {"a": [1, 2.5, None, True], "b": "x"},
    "str": lambda: "héllo",
    "bytes": lambda: b"\x00\x01" * 100,
    "big-bytes": lambda: os.urandom(BIG),
    "pickle": lambda: {(1, 2): {3}},
    "empty": lambda: b"",
}
if np is not None:
    VALUES["numpy"] = lambda: np.arange(10.0).reshape(2, 5)
    VALUES["big-numpy"] = lambda: np.random.default_rng(0).random(BIG // 8 + 3)
if pd is not None:
    VALUES["pandas"] = lambda: pd.DataFrame({"a": [1, 2]}, index=pd.Index(["x", "y"], name="k"))


def equal(a, b):
    if np is not None and isinstance(a, np.ndarray):
        return a.dtype == b.dtype and np.array_equal(a, b)
    if pd is not None and isinstance(a, pd.DataFrame):
        return a.equals(b)
    return type(a) is type(b) and a == b


@pytest.mark.parametrize("make", VALUES.values(), ids=VALUES.keys())
def test_put_get_round_trip(store, make):
    value = make()
    ref = store.put(value)
    assert equal(store.get(ref), value)
    raw = read_raw(store, ref.digest)
    assert new_hasher(raw).hexdigest() == ref.digest and len(raw) == ref.size
    assert store.has(ref.digest)
    assert list(store.iter_objects()) == [ref.digest]
    assert files_under(store, "tmp") == []


def test_put_deduplicates(store):
    first, second = store.put([1, 2, 3]), store.put([1, 2, 3])
    assert first == second
    assert list(store.iter_objects()) == [first.digest]
    assert store.put([1, 2, 4]) != first
    assert len(list(store.iter_objects())) == 2


def test_ref_to_dict_round_trips_through_json():
    ref = ArtifactRef("ab" * 32, "numpy", 12)
    assert ArtifactRef.from_dict(json.loads(json.dumps(ref.to_dict()))) == ref
    with pytest.raises(ValueError, match="64-hex-digit"):
        ArtifactRef("../../etc/passwd", "json", 1)


def test_cache_index(store):
    assert store.get_key("k" * 64) is None
    outputs = {"model": store.put(b"m"), "score": store.put(0.5)}
    store.put_key("abc123", outputs)
    assert store.get_key("abc123") == outputs
    store.put_key("abc123", {"model": outputs["model"]})  # replaces
    assert store.get_key("abc123") == {"model": outputs["model"]}
    store.put_key("def456", {})
    assert sorted(store.iter_keys()) == ["abc123", "def456"]
    store.delete_key("def456")
    store.delete_key("def456")  # absent: fine
    assert list(store.iter_keys()) == ["abc123"]
    with pytest.raises(ValueError, match="cache key"):
        store.put_key("../x", {})


def test_get_key_is_none_when_an_object_is_missing(store):
    outputs = {"a": store.put(1), "b": store.put(2)}
    store.put_key("key1", outputs)
    store.delete_object(outputs["b"].digest)
    store.delete_object(outputs["b"].digest)  # absent: fine
    assert store.get_key("key1") is None
    assert list(store.iter_objects()) == [outputs["a"].digest]


def test_unreadable_index_record_is_a_miss(store):
    store.put_key("key1", {})
    path = store.key_path("key1")
    if store.is_local:
        with open(path, "w") as f:
            f.write("{trunc")
    else:
        store.fs.pipe_file(path, b"{trunc")
    with pytest.warns(RuntimeWarning, match="is not valid JSON"):
        assert store.get_key("key1") is None


@pytest.mark.parametrize("size", [100, BIG], ids=["small", "big"])
@pytest.mark.parametrize("damage", ["flip", "truncate", "append"])
def test_corrupt_object_is_detected_and_removed(store, size, damage):
    value = os.urandom(size)
    ref = store.put(value)
    raw = bytearray(read_raw(store, ref.digest))
    if damage == "flip":
        raw[size // 2] ^= 0x01
    elif damage == "truncate":
        del raw[-1]
    else:
        raw += b"!"
    write_raw(store, ref.digest, bytes(raw))
    with pytest.raises(CorruptArtifact) as info:
        store.get(ref)
    assert isinstance(info.value, DuctworkError)
    assert ref.digest in str(info.value) and store.object_path(ref.digest) in str(info.value)
    assert not store.has(ref.digest)
    assert store.put(value) == ref  # a rerun puts it back
    assert store.get(ref) == value


@pytest.mark.skipif(np is None, reason="numpy is not installed")
def test_corrupt_array_is_never_returned(store):
    array = np.arange(BIG // 8, dtype=np.float64)
    ref = store.put(array)
    raw = bytearray(read_raw(store, ref.digest))
    raw[-8:] = b"\xff" * 8  # still a loadable .npy, with a wrong last element
    write_raw(store, ref.digest, bytes(raw))
    with pytest.raises(CorruptArtifact):
        store.get(ref)


def test_missing_object(store):
    ref = store.put("x")
    store.delete_object(ref.digest)
    with pytest.raises(MissingArtifact, match=ref.digest):
        store.get(ref)
    big = store.put(os.urandom(BIG))
    store.delete_object(big.digest)
    with pytest.raises(MissingArtifact):
        store.get(big)


class Exploding:
    pass


class ExplodingSerializer:
    """Writes part of a value, then fails: a crash in the middle of a put."""

    name = "tests.exploding"

    def dump(self, value, f):
        f.write(b"partial" * 1000)
        f.write(memoryview(bytes(BIG)))
        raise RuntimeError("boom")

    def load(self, f):
        raise AssertionError("never stored")


def test_failed_put_leaves_no_object(store):
    register_serializer(Exploding, ExplodingSerializer())
    with pytest.raises(RuntimeError, match="boom") as info:
        store.put(Exploding())
    assert any("tests.exploding" in note for note in info.value.__notes__)
    assert files_under(store, "objects") == []
    assert files_under(store, "tmp") == []


def test_unknown_serializer_in_ref(store):
    ref = store.put(b"x")
    with pytest.raises(SerializerError, match="register_serializer"):
        store.get(ArtifactRef(ref.digest, "tests.unregistered", ref.size))


def test_location(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DUCTWORK_STORE", raising=False)
    default = ArtifactStore()
    assert default.is_local and default.root == str(tmp_path / ".ductwork")
    monkeypatch.setenv("DUCTWORK_STORE", str(tmp_path / "env"))
    assert ArtifactStore().root == str(tmp_path / "env")
    by_url = ArtifactStore(f"file://{tmp_path}/u")
    assert by_url.is_local and by_url.root == str(tmp_path / "u") == by_url.url
    assert ArtifactStore(by_url.url).root == by_url.root
    mem = ArtifactStore("memory://ductwork-tests/loc/")
    assert not mem.is_local and mem.url == "memory://ductwork-tests/loc"
    assert mem.root == "/ductwork-tests/loc"


def test_clean_tmp(tmp_path):
    s = ArtifactStore(str(tmp_path))
    s.put(1)
    old, new = tmp_path / "tmp" / "old", tmp_path / "tmp" / "new"
    old.write_bytes(b"x")
    new.write_bytes(b"x")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    assert s.clean_tmp(older_than=3600) == 1
    assert sorted(p.name for p in (tmp_path / "tmp").iterdir()) == ["new"]


PUT_IN_CHILD = textwrap.dedent(
    """
    import json, os, sys, time
    from ductwork.runtime.store.artifacts import ArtifactStore
    root, go = sys.argv[1], sys.argv[2]
    value = bytes(range(256)) * (96 * 4096)  # 96 MiB
    while not os.path.exists(go):  # start both puts at the same moment
        time.sleep(0.001)
    print(json.dumps(ArtifactStore(root).put(value).to_dict()))
    """
)


@pytest.mark.slow
def test_concurrent_puts_of_the_same_value(tmp_path):
    root, go = tmp_path / "store", tmp_path / "go"
    children = [
        subprocess.Popen(
            [sys.executable, "-c", PUT_IN_CHILD, str(root), str(go)],
            stdout=subprocess.PIPE, text=True,
        )
        for _ in range(2)
    ]
    time.sleep(0.5)
    go.touch()
    outs = [child.communicate(timeout=120)[0] for child in children]
    assert [child.returncode for child in children] == [0, 0]
    refs = [ArtifactRef.from_dict(json.loads(out)) for out in outs]
    assert refs[0] == refs[1]
    s = ArtifactStore(str(root))
    assert s.get(refs[0]) == bytes(range(256)) * (96 * 4096)
    assert list(s.iter_objects()) == [refs[0].digest]
    assert list((root / "tmp").iterdir()) == []
