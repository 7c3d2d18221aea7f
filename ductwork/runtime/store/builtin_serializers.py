"""The built-in serializers, and the exactness rule each one applies.

Dispatch (in ``serializers``) offers a value to the built-in registered for its
class; a built-in with an ``accepts`` method may decline a value it cannot
round-trip exactly, and anything unclaimed is cloudpickled:

- ``json``: ``None``/``bool``/``int``/finite ``float``/``list``/``dict`` with
  ``str`` keys, recursively and of exactly those types (a tuple, a dict subclass,
  ``nan`` or a cycle would come back different, so they are pickled).
- ``str`` (UTF-8) and ``bytes``/``bytearray`` (raw): written in one
  ``f.write(memoryview)``, no copy.
- ``numpy``: ``.npy`` without pickle; a contiguous array's buffer is written in
  place. Object and non-legacy dtypes, and ndarray subclasses other than memmap,
  are pickled.
- ``pandas``: a DataFrame as parquet through pyarrow, when pyarrow is installed,
  the frame has no object-dtype columns or index levels, unique ``str`` column
  names and no ``attrs``, and a parquet round trip of its first rows is exact
  (dtypes, index class and ``freq``, names). Otherwise it is pickled.
- ``pickle``: cloudpickle, the fallback for everything else. Builtin data that
  holds sets (up to 10k objects) is pickled by the pure-Python pickler with set
  elements sorted, so that equal values give equal bytes in every interpreter
  (str hashes, hence set order, change with PYTHONHASHSEED).

Each serializer imports the library it needs (numpy, pandas, pyarrow,
cloudpickle) when it is used: importing this module imports none of them.
"""

from __future__ import annotations

import functools
import io
import json

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, BinaryIO

# ints beyond Python's default int->str digit limit (4300) cannot be JSON-encoded
_MAX_JSON_INT_BITS = 14_000
_INF = float("inf")  # -_INF < x < _INF: x is finite (nan compares false), without math
_NPY_MAX_HEADER = 1 << 20
_PANDAS_PROBE_ROWS = 3


def _read_exact(f: BinaryIO, buf: memoryview) -> None:
    """Fill ``buf`` from ``f`` or raise if the stream ends first."""
    pos, n = 0, buf.nbytes
    while pos < n:
        k = f.readinto(buf[pos:])
        if not k:
            raise ValueError(f"truncated stream: expected {n} bytes, got {pos}")
        pos += k


def _json_exact(value: Any, active: set[int]) -> bool:
    t = type(value)
    if value is None or t is bool or t is str:
        return True
    if t is int:
        return value.bit_length() <= _MAX_JSON_INT_BITS
    if t is float:
        return -_INF < value < _INF
    if t is not list and t is not dict:
        return False
    if id(value) in active:  # a cycle: JSON cannot express it
        return False
    active.add(id(value))
    try:
        if t is list:
            return all(_json_exact(v, active) for v in value)
        return all(type(k) is str and _json_exact(v, active) for k, v in value.items())
    finally:
        active.discard(id(value))


# ensure_ascii keeps lone surrogates representable; compact separators. One encoder, made
# once: json.dumps with options builds a new JSONEncoder per call (a cold step stores one).
_ENCODE_JSON = json.JSONEncoder(allow_nan=False, separators=(",", ":")).encode
_JSON_CONSTANTS: dict[type, dict[Any, bytes]] = {
    bool: {True: b"true", False: b"false"}, type(None): {None: b"null"}}


class _Json:
    name = "json"

    def accepts(self, value: Any) -> bool:
        try:
            return _json_exact(value, set())
        except RecursionError:
            return False

    def dumps(self, value: Any) -> bytes:
        """The bytes ``dump`` writes, made in memory (they are, either way)."""
        kind = type(value)
        if kind is int or kind is float:  # a step's usual output: one number
            # json's C encoder spells both by their repr (finite floats only reach here)
            return repr(value).encode("ascii")
        scalar = _JSON_CONSTANTS.get(kind)
        if scalar is not None:
            return scalar[value]
        return _ENCODE_JSON(value).encode("ascii")

    def dump(self, value: Any, f: BinaryIO) -> None:
        f.write(self.dumps(value))

    def load(self, f: BinaryIO) -> Any:
        return json.loads(f.read())


class _Str:
    name = "str"

    def accepts(self, value: Any) -> bool:
        return type(value) is str

    def dumps(self, value: str) -> bytes:
        """The bytes ``dump`` writes, made in memory (they are, either way)."""
        return value.encode("utf-8", "surrogatepass")

    def dump(self, value: str, f: BinaryIO) -> None:
        f.write(self.dumps(value))

    def load(self, f: BinaryIO) -> str:
        return f.read().decode("utf-8", "surrogatepass")


class _Bytes:
    def __init__(self, name: str, type_: type) -> None:
        self.name, self._type = name, type_

    def accepts(self, value: Any) -> bool:
        return type(value) is self._type

    def dump(self, value: bytes | bytearray, f: BinaryIO) -> None:
        f.write(memoryview(value))

    def load(self, f: BinaryIO) -> bytes | bytearray:
        data = f.read()
        return data if self._type is bytes else bytearray(data)


_PLAIN_SCALARS = frozenset({type(None), bool, int, float, complex, str, bytes})
_PLAIN_CONTAINERS = frozenset({tuple, list, dict, set, frozenset})
_CANONICAL_MAX_OBJECTS = 10_000  # bounds the walk; the pure-Python pickler is ~10x slower


def _plain_data_with_sets(value: Any) -> bool:
    """Whether ``value`` is builtin data holding a set (whose pickle follows hash order)."""
    stack, seen, found = [value], set(), False
    for _ in range(_CANONICAL_MAX_OBJECTS):
        if not stack:
            return found
        v = stack.pop()
        t = type(v)
        if t in _PLAIN_SCALARS:
            continue
        if t not in _PLAIN_CONTAINERS or len(v) > _CANONICAL_MAX_OBJECTS:
            return False
        if id(v) in seen:
            continue
        seen.add(id(v))
        found = found or t is set or t is frozenset
        stack.extend((*v.keys(), *v.values()) if t is dict else v)
    return False  # too big to pickle in pure Python: left to cloudpickle, in hash order


def _canonical_order(items: set | frozenset) -> list:
    kinds = {type(x) for x in items}
    if len(kinds) <= 1 and kinds <= {str, int, bytes}:
        return sorted(items)
    return sorted(items, key=_canonical_bytes)  # mixed types: order by their own pickles


def _canonical_bytes(value: Any) -> bytes:
    import pickle

    buf = io.BytesIO()
    _canonical_pickler()(buf, protocol=pickle.HIGHEST_PROTOCOL).dump(value)
    return buf.getvalue()


@functools.cache  # made on first use: a run whose values are all JSON never imports pickle
def _canonical_pickler() -> type:
    import pickle

    class _CanonicalPickler(pickle._Pickler):
        """The pure-Python pickler, writing set elements sorted rather than in hash order.

        The C pickler offers no hook for exact sets, and str hashes change with
        PYTHONHASHSEED: an equal set recomputed in another interpreter would get
        other bytes, another digest, and lose early cutoff downstream.
        """

        dispatch = pickle._Pickler.dispatch.copy()

        def save_set(self, obj: set) -> None:
            self.write(pickle.EMPTY_SET)
            self.memoize(obj)
            items = _canonical_order(obj)
            for i in range(0, len(items), self._BATCHSIZE):
                self.write(pickle.MARK)
                for item in items[i : i + self._BATCHSIZE]:
                    self.save(item)
                self.write(pickle.ADDITEMS)

        def save_frozenset(self, obj: frozenset) -> None:
            # plain data cannot make a frozenset contain itself: no recursion check needed
            self.write(pickle.MARK)
            for item in _canonical_order(obj):
                self.save(item)
            self.write(pickle.FROZENSET)
            self.memoize(obj)

        dispatch[set] = save_set
        dispatch[frozenset] = save_frozenset

    return _CanonicalPickler


class _Pickle:
    name = "pickle"

    def dump(self, value: Any, f: BinaryIO) -> None:
        import pickle

        if _plain_data_with_sets(value):
            _canonical_pickler()(f, protocol=pickle.HIGHEST_PROTOCOL).dump(value)
            return
        import cloudpickle

        cloudpickle.dump(value, f, protocol=pickle.HIGHEST_PROTOCOL)

    def load(self, f: BinaryIO) -> Any:
        import pickle

        # plain pickle loads cloudpickle output (it imports cloudpickle on demand)
        return pickle.load(f)


class _Numpy:
    name = "numpy"

    def accepts(self, value: Any) -> bool:
        import numpy as np
        from numpy.lib import format as npf

        dtype = value.dtype
        # memmap loads back as a plain array: the data is what matters
        if type(value) not in (np.ndarray, np.memmap) or dtype.hasobject:
            return False
        if not getattr(type(dtype), "_legacy", True):  # e.g. StringDType: .npy pickles it
            return False
        try:  # non-latin-1 field names need .npy 3.0, which numpy warns about on every save
            repr(npf.header_data_from_array_1_0(value)).encode("latin-1")
        except UnicodeEncodeError:
            return False
        return True

    def dump(self, value: Any, f: BinaryIO) -> None:
        import numpy as np
        from numpy.lib import format as npf

        if value.flags.c_contiguous or value.flags.f_contiguous:
            header = npf.header_data_from_array_1_0(value)
            try:
                npf.write_array_header_1_0(f, header)
            except ValueError:  # header too long for 1.0 (raised before writing)
                npf.write_array_header_2_0(f, header)
            if value.nbytes:
                flat = value.T if header["fortran_order"] else value
                # a uint8 view of the buffer: written in place, never copied
                f.write(memoryview(flat.reshape(-1).view(np.uint8)))
        else:
            npf.write_array(f, value, allow_pickle=False)  # copies in 16 MiB chunks

    def load(self, f: BinaryIO) -> Any:
        import numpy as np
        from numpy.lib import format as npf

        version = npf.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = npf.read_array_header_1_0(f, _NPY_MAX_HEADER)
        elif version == (2, 0):
            shape, fortran, dtype = npf.read_array_header_2_0(f, _NPY_MAX_HEADER)
        else:
            raise ValueError(f".npy format {version} is not one this serializer writes")
        # ndarray, not empty(): it also handles zero-width dtypes
        array = np.ndarray(shape[::-1] if fortran else shape, dtype=dtype)
        if array.nbytes:
            _read_exact(f, memoryview(array.reshape(-1).view(np.uint8)))
        return array.T if fortran else array


@functools.cache
def _pyarrow_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("pyarrow") is not None


class _Pandas:
    name = "pandas"

    def accepts(self, value: Any) -> bool:
        import pandas as pd
        from pandas.api.types import is_object_dtype

        if type(value) is not pd.DataFrame or value.attrs or not _pyarrow_installed():
            return False
        cols, index = value.columns, value.index
        if not cols.is_unique or not all(type(c) is str for c in cols):
            return False
        if not all(n is None or type(n) is str for n in [cols.name, *index.names]):
            return False  # parquet stringifies names (and warns)
        levels = index.levels if isinstance(index, pd.MultiIndex) else [index]
        # object columns may mix types, which parquet coerces or rejects; the
        # probe below only sees the first rows, so they are refused up front
        if any(is_object_dtype(d) for d in [*value.dtypes, *(lv.dtype for lv in levels)]):
            return False
        return self._round_trips(value.iloc[:_PANDAS_PROBE_ROWS])

    def _round_trips(self, frame: Any) -> bool:
        from pandas.testing import assert_frame_equal

        try:
            buf = io.BytesIO()
            self.dump(frame, buf)
            buf.seek(0)
            assert_frame_equal(
                frame, self.load(buf), check_exact=True, check_index_type=True,
                check_column_type=True, check_freq=True, check_flags=True,
            )
        except Exception:  # pyarrow raises many types; any failure means "not exact"
            return False
        return True

    def dump(self, value: Any, f: BinaryIO) -> None:
        value.to_parquet(f, engine="pyarrow", index=None)

    def load(self, f: BinaryIO) -> Any:
        import pandas as pd

        # parquet needs random access (the footer comes last): read it whole
        return pd.read_parquet(io.BytesIO(f.read()), engine="pyarrow")


JSON, STR, PICKLE = _Json(), _Str(), _Pickle()
BYTES, BYTEARRAY = _Bytes("bytes", bytes), _Bytes("bytearray", bytearray)
NUMPY, PANDAS = _Numpy(), _Pandas()


def dumps_whole(serializer: Any, value: Any) -> bytes | None:
    """The bytes ``serializer.dump(value, f)`` writes, when a built-in makes them whole in
    memory anyway (JSON data, a ``str``, ``bytes``); None for every other serializer.

    The store hashes and inlines a small output from them without a spool or a hashing
    writer; they are the same bytes, so the digest (and every key) is the same.
    """
    if serializer is JSON or serializer is STR:
        return serializer.dumps(value)
    if serializer is BYTES:
        return value  # immutable: the value is its own bytes
    return None
