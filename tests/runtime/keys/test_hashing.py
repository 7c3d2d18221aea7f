"""Tests for ductwork.runtime.keys.hashing: canonical tokens, stable digests, clear refusals."""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import enum
import json
import math
import os
import pickle
import struct
import subprocess
import sys
import threading
import tracemalloc
import uuid
from decimal import Decimal
from fractions import Fraction
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import attrs
import cloudpickle
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ductwork.dsl.core import DuctworkError
from ductwork.runtime.keys.hashing import (
    HASH_NAME,
    UnhashableValue,
    hash_str_pairs,
    hash_tagged,
    hash_value,
    new_hasher,
    normalize,
    register_hash,
    register_lazy,
)

ROOT = Path(__file__).resolve().parents[3]


class Color(enum.Enum):
    RED = 1
    BLUE = 2


class Level(enum.IntEnum):
    LOW = 1


class Point(NamedTuple):
    x: int
    y: int


@dataclasses.dataclass
class Config:
    lr: float
    layers: list[int]


@attrs.define
class Params:
    alpha: float
    name: str


class UserId(int):
    pass


class Hooked:
    def __init__(self, key: str, cache: object = None) -> None:
        self.key = key
        self.cache = cache  # left out of the hash on purpose

    def __ductwork_hash__(self) -> Any:
        return {"key": self.key}


SUPPORTED: list[Any] = [
    None,
    True,
    False,
    0,
    1,
    -(10**5000),
    1.5,
    float("inf"),
    float("nan"),
    -0.0,
    1 + 2j,
    "",
    "héllo \U0001f600",
    "\ud800",
    b"\x00\xff",
    bytearray(b"ab"),
    memoryview(b"ab"),
    [1, [2, "x"]],
    (1, (2,)),
    {"a": 1, 2: [3]},
    collections.OrderedDict(a=1, b=2),
    collections.defaultdict(list, a=[1]),
    {1, "a", (2, 3)},
    frozenset({1.5, None}),
    range(1, 10, 3),
    Color.RED,
    Level.LOW,
    dt.datetime(2024, 5, 1, 12, 30, 1, 5),
    dt.datetime(2024, 5, 1, tzinfo=dt.UTC),
    dt.datetime(2024, 5, 1, tzinfo=ZoneInfo("Europe/Paris")),
    dt.date(2024, 5, 1),
    dt.time(12, 30),
    dt.timedelta(days=1, microseconds=3),
    dt.timezone(dt.timedelta(hours=2), "X"),
    Decimal("1.10"),
    Fraction(1, 3),
    uuid.UUID(int=7),
    PurePosixPath("data/x.csv"),
    PureWindowsPath("data/x.csv"),
    Point(1, 2),
    Config(0.1, [2, 3]),
    Params(0.5, "p"),
    UserId(3),
    Hooked("k"),
]


def assert_token(token: Any) -> None:
    if isinstance(token, list):
        for item in token:
            assert_token(item)
    else:
        assert type(token) in (str, bytes, bytearray, memoryview, int, type(None)), token


@pytest.mark.parametrize("value", SUPPORTED, ids=lambda v: type(v).__name__)
def test_supported_values_hash_stably(value: Any) -> None:
    assert_token(normalize(value))
    digest = hash_value(value)
    assert len(digest) == 64 and int(digest, 16) >= 0
    assert hash_value(value) == digest
    restored = cloudpickle.loads(cloudpickle.dumps(value))
    if type(restored) is type(value):  # cloudpickle turns a memoryview into bytes
        assert hash_value(restored) == digest


def test_supported_values_are_all_distinct() -> None:
    digests = [hash_value(v) for v in SUPPORTED]
    assert len(set(digests)) == len(digests)


def test_hasher_is_blake3() -> None:
    assert HASH_NAME == "blake3" and new_hasher().name == "blake3"


@pytest.mark.parametrize(
    "group",
    [
        [1, 1.0, True, "1", b"1", bytearray(b"1"), Decimal(1), Fraction(1), UserId(1), Level.LOW],
        [0, 0.0, False, None, "", b"", "None", [], (), {}, set(), frozenset()],
        [[1], (1,), {1}, frozenset({1}), {1: None}, Point(1, 2), (1, 2), [1, 2]],
        [{"a": 1}, [["a", 1]], [("a", 1)], (("a", 1),), collections.OrderedDict(a=1)],
        [PurePosixPath("a"), PureWindowsPath("a"), "a", dt.date(2024, 1, 1), "2024-01-01"],
        [["int", 1], 1, ["str", "a"], "a"],
    ],
)
def test_different_kinds_never_collide(group: list[Any]) -> None:
    digests = [hash_value(v) for v in group]
    assert len(set(digests)) == len(group)


def test_set_order_does_not_matter_and_dict_order_does() -> None:
    # Code sees a dict's order (json.dumps, iteration), so it is part of the value's hash.
    assert hash_value({"a": 1, "b": 2, 3: "c"}) != hash_value({3: "c", "b": 2, "a": 1})
    assert hash_value({"a": 1, "b": 2}) == hash_value(dict([("a", 1), ("b", 2)]))
    assert hash_value({"x", "y", "z", 1}) == hash_value({1, "z", "y", "x"})
    assert hash_value({"a": 1}) != hash_value(collections.OrderedDict(a=1))
    first = collections.OrderedDict([("a", 1), ("b", 2)])
    assert hash_value(first) != hash_value(collections.OrderedDict([("b", 2), ("a", 1)]))


def test_floats_canonical() -> None:
    other_nan = struct.unpack("<d", struct.pack("<Q", 0x7FF8_0000_0000_0001))[0]
    assert math.isnan(other_nan)
    assert hash_value(float("nan")) == hash_value(-float("nan")) == hash_value(other_nan)
    assert hash_value(0.0) != hash_value(-0.0)
    assert hash_value(0.1 + 0.2) != hash_value(0.3)


def test_hash_tagged_separates_kinds_of_key() -> None:
    key = hash_tagged("CacheKey", "abc", 1, {"x": "d1"})
    assert key == hash_tagged("CacheKey", "abc", 1, {"x": "d1"})
    assert key != hash_tagged("RunKey", "abc", 1, {"x": "d1"})
    assert key != hash_tagged("CacheKey", "abc", 2, {"x": "d1"})
    assert hash_tagged("list", 1) != hash_value([1])
    assert hash_tagged("x") != hash_value("x")


# --- properties -----------------------------------------------------------------------------

atoms = st.none() | st.booleans() | st.integers() | st.floats() | st.text() | st.binary()
hashable_atoms = st.none() | st.booleans() | st.integers() | st.floats() | st.text()
values = st.recursive(
    atoms,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=4).map(tuple)
        | st.dictionaries(hashable_atoms, inner, max_size=4)
        | st.sets(hashable_atoms, max_size=4)
        | st.frozensets(hashable_atoms, max_size=4)
    ),
    max_leaves=20,
)


def rebuild(value: Any) -> Any:
    """Return an equal value built from new objects, sets filled in reverse order."""
    if isinstance(value, list):
        return [rebuild(v) for v in value]
    if isinstance(value, tuple):
        return tuple(rebuild(v) for v in value)
    if isinstance(value, dict):
        return {k: rebuild(value[k]) for k in value}  # dict order is part of the value
    if isinstance(value, set | frozenset):
        return type(value)(reversed(list(value)))
    if isinstance(value, str):
        return "".join(list(value))
    if isinstance(value, bytes):
        return bytes(bytearray(value))
    return value


def plain(token: Any) -> Any:
    if isinstance(token, list):
        return tuple(plain(t) for t in token)
    return bytes(token) if isinstance(token, bytearray | memoryview) else token


@given(values)
@settings(max_examples=300, deadline=None)
def test_equal_values_hash_equal(value: Any) -> None:
    digest = hash_value(value)
    assert_token(normalize(value))
    assert hash_value(value) == digest
    assert hash_value(rebuild(value)) == digest
    assert hash_value(cloudpickle.loads(cloudpickle.dumps(value))) == digest


@given(values, values)
@settings(max_examples=200, deadline=None)
def test_values_that_differ_in_kind_or_content_hash_differently(a: Any, b: Any) -> None:
    # Tokens equal <=> digests equal: the encoding adds no collisions.
    same_token = plain(normalize(a)) == plain(normalize(b))
    assert (hash_value(a) == hash_value(b)) == same_token


# --- fresh interpreters -----------------------------------------------------------------------

FRESH = """
import json, sys
from ductwork.runtime.keys.hashing import hash_value
print(json.dumps([hash_value({"apple", "pear", "plum", "fig"}),
                  hash_value({"b": {"x", "y"}, "a": [1.5, None], ("t", 1): b"raw"})]))
"""


def run_fresh(code: str, **env: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        check=True,
    )
    return proc.stdout.strip()


@pytest.mark.slow
def test_digests_match_across_interpreters_and_hash_seeds() -> None:
    here = [
        hash_value({"fig", "plum", "pear", "apple"}),
        hash_value({"b": {"y", "x"}, "a": [1.5, None], ("t", 1): b"raw"}),  # same order
    ]
    for seed in ("1", "2"):
        assert json.loads(run_fresh(FRESH, PYTHONHASHSEED=seed)) == here


@pytest.mark.slow
def test_import_does_not_load_numpy_or_pandas() -> None:
    code = (
        "import sys, ductwork.runtime.keys.hashing as h; h.hash_value({'a': [1, 2.0]}); "
        "print(sorted(m for m in ('numpy', 'pandas') if m in sys.modules))"
    )
    assert run_fresh(code) == "[]"


#: Digests computed before pathlib was taken off a run's path (its handler is registered on
#: first sight of a path now): a path value's key must not change with that.
PINNED_PATHS = {
    "PurePosixPath('data/iris.csv')":
        "8233f1b3868233ff8c7df3087f0817c20f165b0729256431c03d89b02e77d15f",
    "PureWindowsPath('C:/data/iris.csv')":
        "75b31d8241fb9689709c53bea079367fab4597ea054cd88ac93411dddea0138c",
    "PosixPath('/tmp/x')": "49949a400e2fc395c678254a9b9fbbc54849e16d2f52d95b2ff89e8ef6655fde",
    "[PurePosixPath('a'), {'k': PureWindowsPath('b/c')}]":
        "3b8238a129d1178a97030ff5cc97ae743d5b7dda0d4e1ac7fd393b66772d54ed",
}


def test_path_values_keep_their_digests() -> None:
    values = [PurePosixPath("data/iris.csv"), PureWindowsPath(r"C:\data\iris.csv"),
              Path("/tmp/x"), [PurePosixPath("a"), {"k": PureWindowsPath("b/c")}]]
    if os.name != "posix":
        pytest.skip("the pinned Path is a PosixPath")
    # In a fresh interpreter the handler is registered on the first path seen.
    code = ("import json; from pathlib import *; from ductwork.runtime.keys.hashing import "
            f"hash_value; print(json.dumps([hash_value(v) for v in [{', '.join(PINNED_PATHS)}]]))")
    assert json.loads(run_fresh(code)) == list(PINNED_PATHS.values())
    assert {repr(v): hash_value(v) for v in values} == PINNED_PATHS


#: Digests computed before datetime was taken off a run's path (its handlers are registered
#: on first sight of a datetime value now): those values' keys must not change with that.
PINNED_DATETIMES = {
    "[{'k': dt.date(2024, 5, 1)}]":
        "a6f5418dd610b498e82c4edac4f35ac53b4c4c611e8ce90405a6b1a9b09718ad",
    "dt.datetime(2024, 5, 1, 12, 30, 1, 5)":
        "c50cbc53553c6e074fffd5b4f865e74e200831a6dbeac8c4006983eb7f179e0f",
    "dt.datetime(2024, 5, 1, tzinfo=dt.timezone(dt.timedelta(hours=2), 'X'))":
        "27a785add31c8767096097161ae7d303917c72d1f14e0b244a9ac28409ef37e0",
    "dt.time(12, 30, fold=1)":
        "b0e599d8b4a40048428e194058e3a4936e66b4f6b0cdb0df176118734f7c2553",
    "dt.timedelta(days=1, microseconds=3)":
        "b025e5c05b0379f1e5607a8a1b233db4a2bdef2e05fd7fa13d02dad15e81b2d2",
    "dt.timezone.utc":
        "2e502c32c597ae4f373e36a1c057206470658394bf5d87ce81481f5e797b42ed",
}


def test_datetime_values_keep_their_digests() -> None:
    # In a fresh interpreter the handlers are registered on the first value seen: a date
    # inside a dict inside a list.
    values = ", ".join(PINNED_DATETIMES)
    code = ("import json; import datetime as dt; from ductwork.runtime.keys.hashing import "
            f"hash_value; print(json.dumps([hash_value(v) for v in [{values}]]))")
    assert json.loads(run_fresh(code)) == list(PINNED_DATETIMES.values())
    assert {v: hash_value(eval(v)) for v in PINNED_DATETIMES} == PINNED_DATETIMES


# --- refusals ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [object(), lambda: 1, len, threading.Lock(), (i for i in range(3)), int, Config],
    ids=["object", "lambda", "builtin", "lock", "generator", "class", "dataclass-class"],
)
def test_unsupported_values_are_refused(value: Any) -> None:
    with pytest.raises(UnhashableValue) as info:
        hash_value(value)
    assert isinstance(info.value, DuctworkError) and isinstance(info.value, TypeError)
    assert info.value.path == ""
    message = str(info.value)
    assert "register_hash" in message and "__ductwork_hash__" in message


def test_open_file_is_refused(tmp_path: Path) -> None:
    with open(tmp_path / "f", "w") as handle, pytest.raises(UnhashableValue):
        hash_value(handle)


def test_refusal_names_the_nested_position_and_the_step() -> None:
    value = {"rows": [0, 1, 2, {"a": object()}]}
    with pytest.raises(UnhashableValue) as info:
        hash_value(value)
    err = info.value
    assert err.path == "['rows'][3]['a']" and err.type_name == "object"
    assert "['rows'][3]['a']" in str(err)
    described = err.describe("fit", "data")
    assert "'fit'" in described and "'data'" in described and "data['rows'][3]['a']" in described
    assert "ignore_inputs" in described
    copy = pickle.loads(pickle.dumps(err))
    assert (copy.path, copy.type_name, str(copy)) == (err.path, err.type_name, str(err))


def test_paths_through_records_and_hooks() -> None:
    with pytest.raises(UnhashableValue) as info:
        hash_value([Config(0.1, [1, object()])])
    assert info.value.path == "[0].layers[1]"
    with pytest.raises(UnhashableValue) as info:
        hash_value((Hooked(object()),))  # type: ignore[arg-type]
    assert info.value.path == "[0].__ductwork_hash__()['key']"


def test_cycles_are_refused_not_recursion_errors() -> None:
    cyclic: list[Any] = [1]
    cyclic.append(cyclic)
    with pytest.raises(UnhashableValue, match="cycle") as info:
        hash_value({"k": cyclic})
    assert info.value.path == "['k'][1]"
    loop: dict[str, Any] = {}
    loop["self"] = [loop]
    with pytest.raises(UnhashableValue, match="cycle"):
        hash_value(loop)
    # The same object twice is not a cycle.
    shared = [1]
    assert hash_value([shared, shared]) == hash_value([[1], [1]])


def test_too_deep_nesting_is_refused() -> None:
    deep: list[Any] = []
    for _ in range(sys.getrecursionlimit() * 2):
        deep = [deep]
    with pytest.raises(UnhashableValue, match="deeply"):
        hash_value(deep)
    assert hash_value([[1]])  # the refusal left no state behind


# --- extension --------------------------------------------------------------------------------


def test_hook_hashes_what_it_returns() -> None:
    assert hash_value(Hooked("k", cache=1)) == hash_value(Hooked("k", cache=2))
    assert hash_value(Hooked("k")) != hash_value(Hooked("j"))
    assert hash_value(Hooked("k")) != hash_value({"key": "k"})
    assert normalize(Hooked("k"))[:2] == ["hook", f"{__name__}.Hooked"]


def test_register_hash_for_a_user_class() -> None:
    class Vec:
        def __init__(self, *xs: float) -> None:
            self.xs = xs

    with pytest.raises(UnhashableValue):
        hash_value(Vec(1.0))
    register_hash(Vec, lambda v: ["Vec", normalize(list(v.xs))])
    assert hash_value(Vec(1.0, 2.0)) == hash_value(Vec(1.0, 2.0))
    assert hash_value(Vec(1.0, 2.0)) != hash_value(Vec(2.0, 1.0))
    assert hash_value({"v": Vec(1.0)}) != hash_value({"v": [1.0]})


def test_handler_returning_a_non_token_is_an_error() -> None:
    class Bad:
        pass

    register_hash(Bad, lambda b: ("Bad", 1.5))
    with pytest.raises(TypeError, match="wrap that part in normalize"):
        hash_value(Bad())


def test_register_lazy_runs_once_on_first_sight() -> None:
    calls = []
    Fake = type("Fake", (), {"__module__": "ductwork_fake_lib.sub"})

    def registration() -> None:
        calls.append(1)
        register_hash(Fake, lambda f: ["Fake"])

    register_lazy("ductwork_fake_lib", registration)
    assert calls == []
    assert hash_value(Fake()) == hash_value(Fake())
    assert calls == [1]


# --- numpy ------------------------------------------------------------------------------------


def test_numpy_arrays() -> None:
    np = pytest.importorskip("numpy")
    a = np.arange(12, dtype="<i8").reshape(3, 4)
    assert hash_value(a) == hash_value(np.arange(12, dtype="<i8").reshape(3, 4))
    assert hash_value(a) != hash_value(a.astype("<i4"))
    assert hash_value(a) != hash_value(a.astype("<f8"))
    assert hash_value(a) != hash_value(a.reshape(4, 3))
    assert hash_value(a) != hash_value(a.reshape(12))
    assert hash_value(a) != hash_value(a.tolist())
    assert hash_value(a[:, ::2]) == hash_value(a[:, ::2].copy())
    assert hash_value(a) == hash_value(cloudpickle.loads(cloudpickle.dumps(a)))
    assert hash_value(np.zeros(0)) != hash_value(np.zeros((0, 1)))


def test_numpy_memory_order_counts_and_byte_order_does_not() -> None:
    np = pytest.importorskip("numpy")
    a = np.arange(12, dtype="<i8").reshape(3, 4)
    fortran = np.asfortranarray(a)
    # Code sees memory order: ravel("K") of these two differs, so their hashes do.
    assert fortran.ravel("K").tolist() != a.ravel("K").tolist()
    assert hash_value(fortran) != hash_value(a)
    assert hash_value(a.T) == hash_value(np.asfortranarray(a.T))  # a transpose is F order
    assert hash_value(a.T) != hash_value(np.ascontiguousarray(a.T))
    assert hash_value(fortran) == hash_value(cloudpickle.loads(cloudpickle.dumps(fortran)))
    cube = np.arange(24).reshape(2, 3, 4).transpose(1, 0, 2)  # neither C nor F
    assert hash_value(cube) == hash_value(cube.copy(order="K"))
    assert hash_value(cube) != hash_value(np.ascontiguousarray(cube))
    assert hash_value(np.ones((3, 1))) == hash_value(np.asfortranarray(np.ones((3, 1))))
    # Equal values in another byte order are the same value.
    assert hash_value(a.astype(">i8")) == hash_value(a)
    assert hash_value(fortran.astype(">i8")) == hash_value(fortran)
    rec = [("x", "<i4"), ("y", "<f8")]
    swapped = [("x", ">i4"), ("y", ">f8")]
    assert hash_value(np.ones(2, dtype=rec)) == hash_value(np.ones(2, dtype=swapped))
    assert hash_value(np.array(["ab"], ">U2")) == hash_value(np.array(["ab"], "<U2"))
    assert hash_value(a.astype(">i8")) != hash_value(a.astype(">i4"))


def test_numpy_object_structured_and_scalar_values() -> None:
    np = pytest.importorskip("numpy")
    objs = np.array([1, "a", None, [2]], dtype=object)
    assert hash_value(objs) == hash_value(np.array([1, "a", None, [2]], dtype=object))
    assert hash_value(objs) != hash_value(np.array([1, "b", None, [2]], dtype=object))
    with pytest.raises(UnhashableValue) as info:
        hash_value(np.array([1, object()], dtype=object))
    assert info.value.path == ".flat[1]"
    rec_a = np.zeros(2, dtype=[("x", "<i4"), ("y", "<f4")])
    rec_b = np.zeros(2, dtype=[("x", "<i4"), ("z", "<f4")])
    assert hash_value(rec_a) != hash_value(rec_b)
    scalars = [np.float64(1.0), np.float32(1.0), np.int64(1), np.int32(1), np.bool_(True), 1.0, 1]
    assert len({hash_value(s) for s in scalars}) == len(scalars)
    assert hash_value(np.dtype("f4")) != hash_value(np.dtype("f8"))
    masked = np.ma.masked_array([1, 2], mask=[False, True])
    assert hash_value(masked) != hash_value(np.ma.masked_array([1, 2], mask=[False, False]))
    dates = np.array(["2024-01-01"], dtype="M8[D]")
    assert hash_value(dates) != hash_value(dates.astype("M8[s]"))


@given(st.lists(st.text() | st.none(), max_size=6), st.lists(st.text() | st.none(), max_size=6))
@settings(max_examples=200, deadline=None)
def test_numpy_text_arrays_hash_equal_exactly_when_equal(a: list, b: list) -> None:
    np = pytest.importorskip("numpy")
    same = hash_value(np.array(a, dtype=object)) == hash_value(np.array(b, dtype=object))
    assert same == (a == b)


def test_numpy_text_arrays_keep_boundaries_and_missing_values() -> None:
    np = pytest.importorskip("numpy")
    text = np.array(["ab", "c", None], dtype=object)
    assert hash_value(text) != hash_value(np.array(["a", "bc", None], dtype=object))
    assert hash_value(text) != hash_value(np.array(["ab", "c", ""], dtype=object))
    assert hash_value(text) != hash_value(np.array(["ab", "c", "None"], dtype=object))
    assert hash_value(text) != hash_value(text.tolist())
    mixed = np.array(["ab", 1, None], dtype=object)  # not all text: hashed cell by cell
    assert hash_value(mixed) != hash_value(np.array(["ab", "1", None], dtype=object))


@pytest.mark.slow
def test_numpy_values_hash_the_same_in_a_fresh_interpreter() -> None:
    np = pytest.importorskip("numpy")
    # In the fresh process numpy handlers load lazily, on a scalar first.
    code = (
        "import json, numpy as np; from ductwork.runtime.keys.hashing import hash_value; "
        "print(json.dumps([hash_value(np.float64(1.5)), hash_value(np.arange(6).reshape(2, 3)),"
        " hash_value({'s': np.str_('x')})]))"
    )
    here = [
        hash_value(np.float64(1.5)),
        hash_value(np.arange(6).reshape(2, 3)),
        hash_value({"s": np.str_("x")}),
    ]
    assert json.loads(run_fresh(code)) == here


# --- pandas -----------------------------------------------------------------------------------


def frame() -> Any:
    pd = pytest.importorskip("pandas")
    return pd.DataFrame(
        {"x": [1, 2, 3], "y": [0.5, None, 2.0], "s": ["a", "b", None], "o": [1, "1", None]},
        index=pd.Index([10, 20, 30], name="id"),
    )


def test_pandas_frames() -> None:
    pd = pytest.importorskip("pandas")
    df = frame()
    digest = hash_value(df)
    assert digest == hash_value(frame()) == hash_value(df.copy())
    assert digest == hash_value(cloudpickle.loads(cloudpickle.dumps(df)))
    assert digest != hash_value(df[["y", "x", "s", "o"]])  # column order
    assert digest != hash_value(df.set_axis([10, 20, 31]))  # index values
    assert digest != hash_value(df.rename_axis("key"))  # index name
    assert digest != hash_value(df.astype({"x": "int32"}))  # dtype
    assert digest != hash_value(df.rename(columns={"x": "X"}))  # column name
    changed = df.copy()
    changed.loc[20, "o"] = 1
    assert digest != hash_value(changed)
    missing = df.copy()
    missing.loc[30, "s"] = ""  # "" is not a missing value
    assert digest != hash_value(missing)
    assert hash_value(pd.DataFrame({"a": [1]})) != hash_value(pd.DataFrame({"a": ["1"]}))


def test_pandas_series_index_and_scalars() -> None:
    pd = pytest.importorskip("pandas")
    s = pd.Series([1.0, 2.0], name="s")
    assert hash_value(s) == hash_value(pd.Series([1.0, 2.0], name="s"))
    assert hash_value(s) != hash_value(s.rename("t"))
    assert hash_value(s) != hash_value(s.to_frame())
    multi = pd.MultiIndex.from_tuples([("a", 1), ("b", 2)], names=["k", "n"])
    same = pd.MultiIndex.from_tuples([("a", 1), ("b", 2)], names=["k", "n"])
    assert hash_value(multi) == hash_value(same)
    assert hash_value(multi) != hash_value(multi.set_names(["k", "m"]))
    cat = pd.Categorical(["u", "v", "u"])
    assert hash_value(cat) != hash_value(pd.Categorical(["u", "v", "u"], categories=["v", "u"]))
    assert hash_value(pd.Series(cat)) != hash_value(pd.Series(["u", "v", "u"]))
    nullable = pd.Series([1, None], dtype="Int64")
    assert hash_value(nullable) != hash_value(pd.Series([1, 0], dtype="Int64"))
    ts = pd.Timestamp("2024-01-01 00:00:00.000000001")
    assert hash_value(ts) != hash_value(pd.Timestamp("2024-01-01"))
    assert hash_value(ts) != hash_value(ts.tz_localize("UTC"))
    assert hash_value(pd.Timedelta("1s")) != hash_value(dt.timedelta(seconds=1))
    assert hash_value(pd.NaT) != hash_value(pd.NA) != hash_value(None)
    zoned = pd.Series(pd.date_range("2024", periods=2, tz="UTC"))
    assert hash_value(zoned) != hash_value(zoned.dt.tz_convert("Europe/Paris"))


# --- performance shape ------------------------------------------------------------------------


def test_big_buffers_are_hashed_without_a_copy() -> None:
    big = bytes(range(256)) * (1 << 17)  # 32 MiB
    tracemalloc.start()
    try:
        hash_value(big)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20
    np = pytest.importorskip("numpy")
    array = np.frombuffer(big, dtype="<f8").reshape(-1, 64)
    tracemalloc.start()
    try:
        hash_value(array)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


@given(st.lists(st.tuples(st.text(), st.text())))
def test_str_pairs_fast_path_is_the_generic_digest(pairs):
    # Every cache key goes through the fast path: a different digest would retire every key.
    assert hash_str_pairs("StepKey", pairs) == hash_tagged("StepKey", pairs)


@pytest.mark.parametrize("text", ["", "\ud800 lone surrogate", "x" * 300, "é" * 200, "l2:s3"])
def test_str_pairs_fast_path_spells_odd_strings_alike(text):
    pairs = [(text, text), ("k", text)] * 40  # more than 63 pairs: a list head past the table
    assert hash_str_pairs(text, pairs) == hash_tagged(text, pairs)


def test_str_pairs_with_other_values_fall_back_to_the_generic_digest():
    pairs = [("a", 1), ("b", None)]
    assert hash_str_pairs("StepKey", pairs) == hash_tagged("StepKey", pairs)


@pytest.mark.parametrize("odd", [("b", ["unhashable"]), ("b", b"bytes"), ["b", "a list"],
                                 ("b", "c", "three")], ids=repr)
def test_an_odd_pair_after_remembered_ones_falls_back_to_the_generic_digest(odd):
    # The remembered pairs are spelled out; one pair of anything else makes the whole list
    # take the generic digest, wherever it comes in the list.
    plain = [("a", "x"), ("c", "y")]
    hash_str_pairs("StepKey", plain)
    for pairs in ([*plain, odd], [odd, *plain], [plain[0], odd, plain[1]]):
        assert hash_str_pairs("StepKey", pairs) == hash_tagged("StepKey", pairs)
    assert hash_str_pairs("Other", plain) == hash_tagged("Other", plain)


@given(st.text(max_size=8), st.lists(st.text() | st.sampled_from(["\ud800", "é" * 90])))
def test_a_list_of_strs_is_spelled_out_as_the_generic_digest(tag, items):
    # A gathered map output's digest is one of these over its element digests.
    from ductwork.runtime.keys.encoding import _write
    from ductwork.runtime.keys.hashing import _TAGGED_PREFIX

    out = [_TAGGED_PREFIX]
    _write(([tag, normalize(items)],), out, None)
    assert hash_tagged(tag, items) == new_hasher(b"".join(out)).hexdigest()


class _Flat:
    def __init__(self, parts: list) -> None:
        self.parts = parts


register_hash(_Flat, lambda flat: flat.parts)


@given(st.lists(st.text() | st.sampled_from(["\ud800", "é" * 90]), max_size=70)
       | st.lists(st.text() | st.integers() | st.none(), max_size=5))
def test_a_handlers_flat_token_is_spelled_out_as_the_generic_digest(parts):
    # An upstream output's ref (["artifact", digest, serializer]) feeds every step's key.
    from ductwork.runtime.keys.encoding import _write
    from ductwork.runtime.keys.hashing import _VALUE_PREFIX

    out = [_VALUE_PREFIX]
    _write((parts,), out, None)
    assert hash_value(_Flat(parts)) == new_hasher(b"".join(out)).hexdigest()


def test_an_inputs_ref_digest_is_pinned():
    from ductwork.runtime.store.artifacts import ArtifactRef
    from ductwork.runtime.store.refs import GatherRef

    ref = ArtifactRef("a" * 64, "json", 1)
    assert hash_value(ref) == REF_DIGEST
    assert hash_value(GatherRef.of([ref, ArtifactRef("b" * 64, "pickle", 3)])) == GATHERED


REF_DIGEST = "ae2aa7834c1fc04452bd3520b35a4cf5d6ce7c5f75d7d0bb35a0d8c876b1c3c8"  # 440eee4
GATHERED = "dd5ee118392d943bb965e43bf513be460fd88539e2471c577a5eaa3b36459388"  # 440eee4


def test_a_gathered_digest_is_pinned():
    assert hash_tagged("Gather", ["a" * 64, "b" * 64]) == GATHER_DIGEST


GATHER_DIGEST = "528358f41b490077df6a8de94f3c1569d6ce7aa3cdc44671d3e2756669a2379c"  # 440eee4


KNOWN_KEY = "82a8bf260dbc3e675be23ec15f94e1023863c2b57935f8b23ff6abdf35cfdd0d"


def test_a_known_step_key_digest_is_unchanged():
    # Pinned: a change to the encoding must be a deliberate version bump, not an accident.
    assert hash_str_pairs("StepKey", [("code", "c"), ("outputs", "output")]) == KNOWN_KEY


@given(st.one_of(st.integers(), st.integers(min_value=-300, max_value=1100), st.text()))
def test_int_and_str_fast_paths_are_the_generic_digest(value):
    """hash_value spells out ["int", i] and ["str", s]; the digest must be normalize's."""
    from ductwork.runtime.keys.hashing import _VALUE_PREFIX, _digest
    from ductwork.runtime.keys.tokens import normalize

    assert hash_value(value) == _digest(_VALUE_PREFIX, lambda: normalize(value))


def test_a_users_own_int_handler_still_wins_over_the_fast_path():
    from ductwork.runtime.keys.tokens import normalize

    before = hash_value(7)
    original = normalize.registry[int]
    register_hash(int, lambda i: ["my-int", str(i)])
    try:
        assert hash_value(7) != before
    finally:
        normalize.register(int, original)
    assert hash_value(7) == before
