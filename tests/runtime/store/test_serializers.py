import io
import math
import os
import subprocess
import sys
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ductwork.dsl.core import DuctworkError
from ductwork.runtime.store import serializers
from ductwork.runtime.store.serializers import (
    SerializerError,
    get_serializer,
    register_serializer,
    serializer_for,
)

try:
    import numpy as np
except ImportError:
    np = None
try:
    import pandas as pd
except ImportError:
    pd = None
try:
    import pyarrow
except ImportError:
    pyarrow = None

needs_numpy = pytest.mark.skipif(np is None, reason="numpy is not installed")
needs_pandas = pytest.mark.skipif(pd is None, reason="pandas is not installed")
needs_parquet = pytest.mark.skipif(pd is None or pyarrow is None, reason="needs pandas and pyarrow")

def round_trip(value):
    serializer = serializer_for(value)
    buf = io.BytesIO()
    serializer.dump(value, buf)
    buf.seek(0)
    out = get_serializer(serializer.name).load(buf)
    assert buf.read() == b"", "load must consume what dump wrote"
    return serializer.name, out


def typed(value):
    """A structure equal only if values *and* types match (1 == True == 1.0 otherwise)."""
    if isinstance(value, dict):
        return ("dict", type(value), [(k, typed(v)) for k, v in value.items()])
    if isinstance(value, list | tuple):
        return (type(value), [typed(v) for v in value])
    return (type(value), value)


@pytest.fixture
def registry():
    """Restore the serializer registry after a test that registers its own."""
    with serializers.restore_registrations():
        yield


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=30,
)


@settings(max_examples=300)
@given(json_values)
def test_json_values_round_trip_exactly(value):
    name, out = round_trip(value)
    assert name == ("str" if type(value) is str else "json")
    assert typed(out) == typed(value)


@pytest.mark.parametrize(
    "value",
    [
        (1, 2),
        {1: "a"},
        [1, (2, 3)],
        {"a": {1, 2}},
        math.nan,
        [math.inf],
        10**5000,
        Fraction(1, 3),
        frozenset({1}),
    ],
    ids=lambda v: type(v).__name__,
)
def test_values_json_would_change_are_pickled(value):
    name, out = round_trip(value)
    assert name == "pickle"
    if value == value:  # nan aside
        assert typed(out) == typed(value)
        assert type(out) is type(value)


def test_cycles_are_pickled():
    value = [1]
    value.append(value)
    name, out = round_trip(value)
    assert name == "pickle"
    assert out[1] is out


@pytest.mark.parametrize("value", ["", "héllo ✓", "\ud800 lone surrogate", "x" * 100_000])
def test_str(value):
    assert round_trip(value) == ("str", value)


@pytest.mark.parametrize("value", [b"", b"\x00\xff" * 1000, bytearray(b"abc")], ids=repr)
def test_bytes_and_bytearray_keep_their_type(value):
    name, out = round_trip(value)
    assert name == type(value).__name__
    assert type(out) is type(value) and out == value


class Recorder(io.RawIOBase):
    def __init__(self):
        self.writes = []

    def write(self, b):
        self.writes.append(b)
        return memoryview(b).nbytes


def test_bytes_are_written_without_copy():
    data, f = b"x" * 1000, Recorder()
    serializer_for(data).dump(data, f)
    assert len(f.writes) == 1 and isinstance(f.writes[0], memoryview) and f.writes[0].obj is data


def test_unknown_serializer_error_says_what_to_do():
    with pytest.raises(SerializerError, match="register_serializer") as info:
        get_serializer("myproject.torch")
    assert isinstance(info.value, DuctworkError)
    assert "json" in str(info.value) and "pickle" in str(info.value)


class Point:
    def __init__(self, x, y):
        self.x, self.y = x, y


class Point3(Point):
    pass


class PointSerializer:
    name = "tests.point"

    def dump(self, value, f):
        f.write(f"{type(value).__name__},{value.x},{value.y}".encode())

    def load(self, f):
        _, x, y = f.read().decode().split(",")
        return Point(int(x), int(y))


def test_register_serializer_dispatches_by_mro(registry):
    register_serializer(Point, PointSerializer())
    name, out = round_trip(Point(1, 2))
    assert name == "tests.point" and (out.x, out.y) == (1, 2)
    assert serializer_for(Point3(1, 2)).name == "tests.point"

    class Exact(PointSerializer):
        name = "tests.point3"

    register_serializer(Point3, Exact())  # the most specific class wins
    assert serializer_for(Point3(1, 2)).name == "tests.point3"
    assert serializer_for(Point(1, 2)).name == "tests.point"


def test_user_registration_beats_builtin_for_the_same_class(registry):
    class ListSerializer(PointSerializer):
        name = "tests.list"

    register_serializer(list, ListSerializer())
    assert serializer_for([1]).name == "tests.list"
    assert serializer_for(True).name == "json"  # bool's own built-in is more specific than object


@pytest.mark.parametrize(
    "type_, serializer, match",
    [
        ("notatype", PointSerializer(), "needs a class"),
        (Point, object(), "needs a `name`"),
        (Point, type("S", (), {"name": "has space", "dump": 1, "load": 1})(), "needs a `name`"),
        (Point, type("S", (), {"name": "ok"})(), "dump"),
        (Point, type("S", (PointSerializer,), {"name": "json"})(), "built in"),
    ],
)
def test_register_serializer_rejects_bad_registrations(registry, type_, serializer, match):
    with pytest.raises(SerializerError, match=match):
        register_serializer(type_, serializer)


@pytest.mark.slow
def test_import_does_not_load_heavy_libraries():
    code = (
        "import sys, ductwork.runtime.store.serializers as s; s.serializer_for([1, {'a': b''}]);"
        "heavy = ('numpy', 'pandas', 'pyarrow', 'cloudpickle');"
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.slow
def test_numpy_handler_registers_once_numpy_is_in_use():
    code = (
        "import ductwork.runtime.store.serializers as s, numpy as np, sys;"
        "print(s.serializer_for(np.zeros(2)).name, 'pandas' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["numpy", "False"]


# -- numpy ---------------------------------------------------------------------


NUMPY_CASES = {
    "bool": lambda: np.array([True, False]),
    "int8": lambda: np.arange(-5, 5, dtype=np.int8),
    "uint64": lambda: np.array([0, 2**64 - 1], dtype=np.uint64),
    "float16": lambda: np.linspace(0, 1, 7, dtype=np.float16),
    "float64-2d": lambda: np.arange(12.0).reshape(3, 4),
    "complex": lambda: np.array([1 + 2j, np.nan]),
    "big-endian": lambda: np.arange(6, dtype=">i4").reshape(2, 3),
    "unicode": lambda: np.array(["a", "héllo"]),
    "bytes": lambda: np.array([b"ab", b""]),
    "datetime": lambda: np.array(["2020-01-01T00:00:00.123456789", "NaT"], dtype="M8[ns]"),
    "timedelta": lambda: np.array([1, -2], dtype="m8[s]"),
    "structured": lambda: np.array(
        [(1, (2.0, 3.0)), (4, (5.0, 6.0))], dtype=[("a", "<i4"), ("b", "<f8", (2,))]
    ),
    "aligned-struct": lambda: np.zeros(3, dtype=np.dtype([("a", "u1"), ("b", "<i8")], align=True)),
    "0-d": lambda: np.array(3.5),
    "empty": lambda: np.zeros((0, 3)),
    "fortran": lambda: np.asfortranarray(np.arange(12.0).reshape(3, 4)),
    "non-contiguous": lambda: np.arange(20.0).reshape(4, 5)[::2, 1::2],
}


@needs_numpy
@pytest.mark.parametrize("make", NUMPY_CASES.values(), ids=NUMPY_CASES.keys())
def test_numpy_round_trip(make):
    array = make()
    name, out = round_trip(array)
    assert name == "numpy"
    assert type(out) is np.ndarray and out.dtype == array.dtype and out.shape == array.shape
    assert out.tobytes("A") == array.tobytes("A")
    assert out.flags.f_contiguous == array.flags.f_contiguous


@needs_numpy
@pytest.mark.parametrize("order", ["C", "F"])
def test_contiguous_arrays_are_written_without_copy(order):
    array, f = np.ones((300, 200), order=order), Recorder()
    serializer_for(array).dump(array, f)
    assert np.shares_memory(np.asarray(f.writes[-1]), array)


@needs_numpy
def test_numpy_bytes_match_np_save():
    array = np.arange(12.0).reshape(3, 4)
    buf, ours = io.BytesIO(), io.BytesIO()
    np.save(buf, array)
    serializer_for(array).dump(array, ours)
    assert ours.getvalue() == buf.getvalue()


@needs_numpy
@pytest.mark.parametrize(
    "make",
    [
        lambda: np.array([1, "a", None], dtype=object),
        lambda: np.ma.masked_array([1, 2], mask=[0, 1]),
        lambda: np.float64(1.5),
        lambda: np.int32(3),
        lambda: np.zeros(2, dtype=[("\u03b1", "<i4")]),  # would need .npy 3.0
    ],
    ids=["object", "masked", "float64-scalar", "int32-scalar", "non-latin1-field"],
)
def test_numpy_values_npy_cannot_hold_are_pickled(make):
    value = make()
    name, out = round_trip(value)
    assert name == "pickle"
    assert type(out) is type(value)
    np.testing.assert_array_equal(out, value)


@needs_numpy
def test_memmap_loads_as_array(tmp_path):
    mm = np.memmap(tmp_path / "m", dtype="<f4", mode="w+", shape=(4,))
    mm[:] = [1, 2, 3, 4]
    name, out = round_trip(mm)
    assert name == "numpy" and type(out) is np.ndarray
    np.testing.assert_array_equal(out, [1, 2, 3, 4])


@needs_numpy
def test_numpy_load_rejects_truncated_data():
    buf = io.BytesIO()
    array = np.arange(10.0)
    serializer_for(array).dump(array, buf)
    with pytest.raises(ValueError, match="truncated"):
        get_serializer("numpy").load(io.BytesIO(buf.getvalue()[:-3]))


# -- pandas --------------------------------------------------------------------


def frame(**columns):
    return pd.DataFrame(columns)


PARQUET_CASES = {
    "basic": lambda: frame(a=[1, 2, 3], b=[1.5, None, 3.0], c=["x", None, "z"]),
    "named-index": lambda: frame(a=[1, 2]).set_axis(pd.Index(["p", "q"], name="key")),
    "multi-index": lambda: frame(a=[1, 2, 3]).set_axis(
        pd.MultiIndex.from_tuples([("a", 1), ("a", 2), ("b", 1)], names=["k", "n"])
    ),
    "range-step": lambda: frame(a=[1, 2]).set_axis(pd.RangeIndex(5, 9, 2)),
    "categorical": lambda: frame(
        a=pd.Categorical(["x", "y", "x"], categories=["y", "x", "z"], ordered=True)
    ),
    "datetime": lambda: frame(a=pd.to_datetime(["2020-01-01", None, "2021-06-01"])),
    "datetime-tz": lambda: frame(a=pd.date_range("2020", periods=4, tz="Europe/Paris")),
    "nullable": lambda: frame(
        i=pd.array([1, None], dtype="Int64"),
        b=pd.array([True, None], dtype="boolean"),
        s=pd.array(["a", None], dtype="string"),
    ),
    "many-rows": lambda: frame(a=range(1000), b=[str(i) for i in range(1000)]),
    "no-rows": lambda: frame(a=pd.Series([], dtype="float64")),
}


@needs_parquet
@pytest.mark.parametrize("make", PARQUET_CASES.values(), ids=PARQUET_CASES.keys())
def test_pandas_round_trip_through_parquet(make):
    df = make()
    buf = io.BytesIO()
    serializer_for(df).dump(df, buf)
    assert buf.getvalue()[:4] == b"PAR1"
    name, out = round_trip(df)
    assert name == "pandas"
    pd.testing.assert_frame_equal(
        out, df, check_exact=True, check_index_type=True, check_column_type=True, check_freq=True
    )


PICKLED_FRAMES = {
    "int-column-names": lambda: pd.DataFrame({0: [1], 1: [2]}),
    "mixed-object-column": lambda: frame(a=pd.Series([1, "x", None], dtype=object)),
    "object-index": lambda: frame(a=[1, 2]).set_axis(pd.Index(["a", 1], dtype=object)),
    "index-with-freq": lambda: frame(a=[1, 2, 3]).set_axis(pd.date_range("2020", periods=3)),
    "int-index-name": lambda: frame(a=[1, 2]).set_axis(pd.Index([1, 2], name=5)),
    "int-categories": lambda: frame(a=pd.Categorical([1, 2, 1])),
    "datetime-seconds": lambda: frame(a=pd.to_datetime(["2020-01-01"]).astype("M8[s]")),
    "complex": lambda: frame(a=[1j, 2]),
    "duplicate-names": lambda: pd.DataFrame([[1, 2]], columns=["a", "a"]),
    "attrs": lambda: frame(a=[1]).pipe(lambda d: d.attrs.update(source="x") or d),
    "empty": lambda: pd.DataFrame(),
}


@needs_parquet
@pytest.mark.parametrize("make", PICKLED_FRAMES.values(), ids=PICKLED_FRAMES.keys())
def test_frames_parquet_would_change_are_pickled(make):
    df = make()
    name, out = round_trip(df)
    assert name == "pickle"
    pd.testing.assert_frame_equal(
        out, df, check_exact=True, check_index_type=True, check_column_type=True, check_freq=True
    )
    assert out.attrs == df.attrs


@needs_pandas
def test_series_is_pickled():
    s = pd.Series([1, 2], name="s")
    name, out = round_trip(s)
    assert name == "pickle"
    pd.testing.assert_series_equal(out, s)


@needs_numpy
@settings(max_examples=100)
@given(st.data())
def test_numpy_arrays_round_trip_bytes_exactly(data):
    from hypothesis.extra import numpy as hnp

    dtype = data.draw(hnp.scalar_dtypes() | hnp.byte_string_dtypes() | hnp.unicode_string_dtypes())
    array = data.draw(hnp.arrays(dtype, hnp.array_shapes(min_dims=0, min_side=0)))
    if data.draw(st.booleans()):
        array = np.asfortranarray(array)
    name, out = round_trip(array)
    assert name == "numpy"
    assert out.dtype == array.dtype and out.shape == array.shape
    assert out.tobytes("A") == array.tobytes("A")


DETERMINISM_CASES = {
    "json": lambda: {"b": [1, 2.5], "a": None},
    "pickle": lambda: {(1, 2): frozenset({"x"})},
    "numpy": lambda: np.arange(100.0).reshape(10, 10),
    "pandas": lambda: pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}),
}


@needs_parquet
@pytest.mark.parametrize("make", DETERMINISM_CASES.values(), ids=DETERMINISM_CASES.keys())
def test_equal_values_serialize_to_equal_bytes(make):
    """Early cutoff relies on it: a rerun that returns the same value stores the same digest."""
    dumps = []
    for _ in range(2):
        value, buf = make(), io.BytesIO()
        serializer_for(value).dump(value, buf)
        dumps.append(buf.getvalue())
    assert dumps[0] == dumps[1]


SET_CASES = {
    "str-set": "{'b', 'a', 'c', 'long string ' * 3}",
    "frozenset": "frozenset({'x', 'y', 'z', 'w'})",
    "mixed": "{1, 'a', (2, 'b'), b'c', 2.5, None}",
    "nested": "{'k': [frozenset({'p', 'q'}), {('a', 1), ('b', 2)}], 'n': set()}",
    "shared": "(lambda s: [s, s])({'a', 'b'})",
}


@pytest.mark.slow
@pytest.mark.parametrize("expr", SET_CASES.values(), ids=SET_CASES.keys())
def test_sets_serialize_the_same_under_every_hash_seed(expr):
    """Early cutoff across interpreters: str hashes, hence set order, depend on PYTHONHASHSEED."""
    code = (
        "import io, sys, hashlib; from ductwork.runtime.store.serializers import serializer_for;"
        f"v = {expr}; s = serializer_for(v); b = io.BytesIO(); s.dump(v, b);"
        "print(s.name, hashlib.sha256(b.getvalue()).hexdigest())"
    )
    outs = {
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout
        for seed in ("1", "2", "3")
    }
    assert len(outs) == 1 and outs.pop().startswith("pickle ")


@pytest.mark.parametrize("expr", SET_CASES.values(), ids=SET_CASES.keys())
def test_sets_round_trip(expr):
    value = eval(expr)
    name, out = round_trip(value)
    assert name == "pickle" and out == value and typed(out) == typed(value)


def test_shared_sets_stay_shared():
    s = {"a"}
    _, out = round_trip([s, s, frozenset({"x"})])
    assert out[0] is out[1]
