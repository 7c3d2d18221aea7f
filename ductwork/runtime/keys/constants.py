"""The digests of constants that step code reads (module globals, defaults, closures).

A constant is hashed once per object -- it is a constant -- and remembered by id
with the object itself held, so the id cannot be reused while remembered. A
lazy input (a dataset) is the exception: its content changes while the object
stays, so it is hashed afresh every time and its errors propagate.
"""

from __future__ import annotations

import reprlib
from typing import Any

from ductwork.dsl.lazy import holds_lazy

MEMO_LIMIT = 4096
_VALUES: dict[int, tuple[Any, str | None]] = {}


def value_digest(value: Any) -> str | None:
    """Hash a value once per object (it is a constant); None if it cannot be hashed."""
    return constant_digest(value)[0]


def constant_digest(value: Any) -> tuple[str | None, bool]:
    """Return ``(digest, lazy)``: a value is hashed once per object, since it is a constant
    -- except a lazy input (a dataset, also inside lists, tuples and dicts), whose content
    changes while the object stays: it is hashed afresh every time, and its errors propagate
    (a missing file must fail the key, not drop out of it)."""
    from ductwork.runtime.keys.hashing import UnhashableValue, hash_value

    hit = _VALUES.get(id(value))
    if hit is not None and hit[0] is value:
        return hit[1], False
    if holds_lazy(value):
        try:
            return hash_value(value), True
        except UnhashableValue:
            if getattr(type(value), "__ductwork_materialize__", None) is not None:
                raise
            return None, True  # a list of a dataset and a function: walked by element
    try:
        digest: str | None = hash_value(value)
    except Exception:  # UnhashableValue, or a broken __ductwork_hash__: never crash here
        digest = None
    if len(_VALUES) >= MEMO_LIMIT:
        _VALUES.clear()
    _VALUES[id(value)] = (value, digest)
    return digest, False


def lazy_error(label: str, value: Any, exc: Exception) -> Exception:
    """The error for a dataset constant that could not be fingerprinted, naming where."""
    from ductwork.runtime.keys.cache_key import CacheKeyError

    return CacheKeyError(
        f"The step's code reads {label.partition(':')[2] or label} "
        f"({reprlib.repr(value)}); the content of the dataset there is part of the step's "
        f"code fingerprint, and it could not be fingerprinted: {type(exc).__name__}: {exc}"
    )
