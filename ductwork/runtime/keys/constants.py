"""The digests of constants that step code reads (module globals, defaults, closures).

A constant is hashed once per object -- it is a constant -- and remembered by id
with the object itself held, so the id cannot be reused while remembered (the
memo is a bounded cache: an evicted constant is hashed again). A lazy input (a
dataset) is the exception: its content changes while the object stays, so it is
hashed afresh every time and its errors propagate. So do the errors of a
``__ductwork_hash__`` that raises: such a value has a hash, just not one we know,
and counting it by its type's name would give different values one key.
"""

from __future__ import annotations

import reprlib

from ductwork.dsl.lazy import holds_lazy
from ductwork.runtime import caches
from ductwork.runtime.keys.errors import CacheKeyError, HashHookError, UnhashableValue
from ductwork.runtime.keys.hashing import hash_value

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["constant_digest", "constant_error", "value_digest"]

# id(value) -> (value, digest): the value is held so that its id is not reused meanwhile.
_VALUES = caches.cache("keys.constant_digests", maxsize=4096)


def value_digest(value: Any) -> str | None:
    """Hash a value once per object (it is a constant); None if it cannot be hashed."""
    return constant_digest(value)[0]


def constant_digest(value: Any) -> tuple[str | None, bool]:
    """Return ``(digest, lazy)``: a value is hashed once per object, since it is a constant
    -- except a lazy input (a dataset, also inside lists, tuples and dicts), whose content
    changes while the object stays: it is hashed afresh every time, and its errors propagate
    (a missing file must fail the key, not drop out of it). A failing ``__ductwork_hash__``
    raises ``HashHookError`` in both cases."""
    hit = _VALUES.get(id(value))
    if hit is not None and hit[0] is value:
        return hit[1], False
    if holds_lazy(value):
        try:
            return hash_value(value), True
        except HashHookError:
            raise
        except UnhashableValue:
            if getattr(type(value), "__ductwork_materialize__", None) is not None:
                raise
            return None, True  # a list of a dataset and a function: walked by element
    try:
        digest: str | None = hash_value(value)
    except HashHookError:
        raise
    except Exception:  # no handler (a logger, a client): counted by its source instead
        digest = None
    _VALUES.put(id(value), (value, digest))
    return digest, False


def constant_error(label: str, value: Any, exc: Exception) -> CacheKeyError:
    """The error for a constant that could not be fingerprinted, naming where it is read."""
    what = "the dataset there" if not isinstance(exc, HashHookError) else "that value"
    cause = str(exc) if isinstance(exc, HashHookError) else f"{type(exc).__name__}: {exc}"
    return CacheKeyError(
        f"The step's code reads {label.partition(':')[2] or label} "
        f"({reprlib.repr(value)}); the content of {what} is part of the step's "
        f"code fingerprint, and it could not be fingerprinted: {cause}"
    )
