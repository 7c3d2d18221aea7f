"""Hash handlers for numpy and pandas values, registered on first sight of one.

``hashing`` names these registrations with ``register_lazy("numpy", ...)`` and
``register_lazy("pandas", ...)``; the first value whose type comes from one of
those packages imports this module and runs its ``register_*`` once, so
importing ``hashing`` (or ductwork) imports neither library. This module uses
the dispatcher (``tokens``) only, never ``hashing``: no import cycle.

- numpy: an array is ``["ndarray", dtype, shape, order, data]`` where the data is
  its C-order bytes as one flat ``memoryview`` (no copy when already contiguous),
  streamed to the hasher whole. The dtype is its ``str``, or its ``descr`` for
  records and sub-arrays, whose ``str`` hides the field layout -- both in
  little-endian byte order, the data converted to match: ``<i8`` and ``>i8``
  arrays of equal values are one value (code sees values, not byte order), the
  same on every machine. ``order`` is the memory order code can observe
  (``ravel("K")``, ``tobytes("A")``, ``np.copy``): ``"C"``, ``"F"``, or for a
  strided view whose axes are in neither order, the axes from the largest
  stride to the smallest; a view whose axes are in C order counts as ``"C"``,
  like its contiguous copy. Object and
  StringDType arrays hold pointers, so their elements are hashed instead; an
  all-text array as a table of sizes plus one blob of UTF-8. Scalars, dtypes
  and masked arrays (data and mask) have their own tags; a subclass of
  ``ndarray`` is tagged with its class.
- pandas: a frame is its columns index, its row index and each column's
  values; a column of a numpy dtype goes through the numpy handler, an
  extension array (nullable, string, arrow, tz-aware) is hashed element by
  element under its dtype's name, a categorical as categories, order flag and
  codes. Not ``pd.util.hash_pandas_object``: 64 bits a row, and ``1`` collides
  with ``"1"``. Indexes keep their names; ``RangeIndex`` is a range.
"""

from __future__ import annotations

from collections.abc import Callable

from ductwork.runtime.keys.encoding import Token
from ductwork.runtime.keys.tokens import _at_key, _subclass, _walk, normalize

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["register_numpy", "register_pandas"]


def register_numpy() -> None:
    """Register the numpy handlers: arrays by dtype, shape, memory order and C-order bytes."""
    import numpy as np

    def dtype_token(dtype: np.dtype) -> Token:
        # dtype.str says "|V16" for every 16-byte record; the field layout is in descr.
        if dtype.fields is None and dtype.subdtype is None:
            return dtype.str
        return normalize(dtype.descr)

    def order(value: np.ndarray) -> Token:
        if value.flags.c_contiguous:
            return "C"
        if value.flags.f_contiguous:
            return "F"
        # Strided: the axes in the order ravel("K") walks them (a stable sort by stride).
        axes = sorted(range(value.ndim), key=lambda i: -abs(value.strides[i]))
        sized = [i for i in axes if value.shape[i] > 1]  # axes of length 1 have no order
        if sized == sorted(sized):
            return "C"
        return "F" if sized == sorted(sized, reverse=True) else ["axes", *sized]

    def array(value: np.ndarray) -> Token:
        if not value.dtype.hasobject:  # records and sub-arrays too: their fields have one
            little = value.dtype.newbyteorder("<")
            if little != value.dtype:
                value = value.astype(little)  # keeps the memory order (order="K")
        head = ["ndarray", dtype_token(value.dtype), list(value.shape), order(value)]
        if value.dtype.hasobject or value.dtype.kind == "T":
            # The bytes of object and StringDType arrays are pointers: hash the elements.
            items = value.ravel().tolist()
            if all(type(x) is str or x is None for x in items):
                # Text columns, the common case: a table of sizes (-1: None) and one blob,
                # about ten times faster than a token per cell.
                data = [b"" if x is None else x.encode("utf-8", "surrogatepass") for x in items]
                sizes = [-1 if x is None else len(d) for x, d in zip(items, data, strict=True)]
                text = memoryview(np.array(sizes, dtype="<i8").view(np.uint8))
                return [*head, "text", text, b"".join(data)]
            return [*head, *_walk(value, [(".flat", items)], str)]
        if value.dtype.itemsize == 0:
            return [*head, b""]
        # ascontiguousarray copies only if it must; view(uint8) is what memoryview accepts.
        flat = np.ascontiguousarray(value).reshape(-1).view(np.uint8)
        return [*head, memoryview(flat)]

    def ndarray(value: np.ndarray) -> Token:
        exact = type(value) is np.ndarray or type(value) is np.memmap
        return array(value) if exact else _subclass(value, array, ndarray)

    normalize.register(np.ndarray, ndarray)
    normalize.register(np.generic, lambda x: ["numpy.scalar", dtype_token(x.dtype), x.tobytes()])
    normalize.register(np.dtype, lambda d: ["numpy.dtype", dtype_token(d)])
    normalize.register(
        np.ma.MaskedArray,
        lambda a: ["numpy.ma", array(np.asarray(a.data)), array(np.ma.getmaskarray(a))],
    )


def register_pandas() -> None:
    """Register the pandas handlers: frames by schema, index and column values."""
    import numpy as np
    import pandas as pd

    # Not pd.util.hash_pandas_object: 64 bits a row, and it hashes object columns through
    # str(), so 1 and "1" collide. Column arrays go through the numpy handler instead.
    def values(obj: pd.Series | pd.Index) -> Token:
        if isinstance(obj.array, pd.Categorical):
            return normalize(obj.array)
        if isinstance(obj.dtype, np.dtype):
            return normalize(obj.to_numpy())
        # Extension arrays (nullable, string, arrow, tz-aware) have no public buffer:
        # hash their elements, missing ones as None, under the dtype's name.
        elements = obj.array.to_numpy(dtype=object, na_value=None)
        return ["pandas.ext", str(obj.dtype), normalize(elements)]

    def frame(df: pd.DataFrame) -> Token:
        columns = _walk(df, df.items(), _at_key, values)
        return ["pandas.DataFrame", normalize(df.columns), normalize(df.index), columns]

    def timestamp(ts: pd.Timestamp) -> Token:
        return ["pandas.Timestamp", int(ts.value), ts.unit, None if ts.tz is None else str(ts.tz)]

    def multi(m: pd.MultiIndex) -> Token:
        return ["pandas.MultiIndex", *(normalize(list(x)) for x in (m.names, m.levels, m.codes))]

    def ranged(r: pd.RangeIndex) -> Token:
        return ["pandas.RangeIndex", normalize(r.name), normalize(range(r.start, r.stop, r.step))]

    def categorical(c: pd.Categorical) -> Token:
        return ["pandas.Categorical", normalize(c.categories), int(c.ordered), normalize(c.codes)]

    handlers: dict[type, Callable[[Any], Token]] = {
        pd.Index: lambda i: ["pandas.Index", normalize(list(i.names)), values(i)],
        pd.RangeIndex: ranged,
        pd.MultiIndex: multi,
        pd.Series: lambda s: ["pandas.Series", normalize(s.name), normalize(s.index), values(s)],
        pd.DataFrame: frame,
        pd.Categorical: categorical,
        pd.Timestamp: timestamp,
        pd.Timedelta: lambda td: ["pandas.Timedelta", int(td.value), td.unit],
        type(pd.NaT): lambda _: ["pandas.NaT"],
        type(pd.NA): lambda _: ["pandas.NA"],
    }
    for cls, handler in handlers.items():
        normalize.register(cls, handler)
