"""Serializers: how a value becomes bytes in the artifact store, chosen by its type.

A serializer is a named ``dump(value, f)`` / ``load(f)`` pair that streams into
and out of a binary file. The store records the serializer's *name* next to the
artifact's digest, so a value is loaded by whatever is registered under that
name in the loading process.

Dispatch (``serializer_for``) walks the value's MRO, most specific class first.
At each class a user registration (``register_serializer``) beats a built-in
one; a built-in may decline a value it cannot round-trip exactly (an ``accepts``
method), and dispatch then continues up the MRO. Anything unclaimed is
cloudpickled. The built-ins, and the exactness rule each one applies, are in
``builtin_serializers``.

Both tables are ``registry.TypeRegistry``s. The numpy and pandas entries are
lazy registrations, as in the value hasher: they are made only when a value
whose MRO comes from those packages is dispatched, which implies the package is
already imported. Importing this module imports neither them, nor pyarrow, nor
cloudpickle. Tests undo their registrations with ``restore_registrations()``.
"""

from __future__ import annotations

import _thread  # threading's locks, without threading (~2.6M instructions and an exit hook)
import importlib
from collections.abc import Iterator
from contextlib import contextmanager

from ductwork.dsl.core import DuctworkError
from ductwork.runtime.registry import TypeRegistry
from ductwork.runtime.store.builtin_serializers import (
    BYTEARRAY,
    BYTES,
    JSON,
    NUMPY,
    PANDAS,
    PICKLE,
    STR,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, BinaryIO, Protocol, runtime_checkable
else:  # typing costs a run ~12M instructions: its Protocol's runtime part, without it
    from ductwork.dsl.protocol import Protocol, runtime_checkable

__all__ = [
    "Serializer",
    "SerializerError",
    "get_serializer",
    "register_serializer",
    "restore_registrations",
    "serializer_for",
    "user_registrations",
]

# A serializer's name: 1-100 of these (checked as a regular expression did, without
# compiling one at import).
_NAME_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:-")


class SerializerError(DuctworkError):
    """A serializer is unknown in this process or cannot be registered."""


@runtime_checkable
class Serializer(Protocol):
    """Streams one kind of value into a binary file and back.

    Optional: ``round_trips = False`` on a serializer whose ``load`` gives another type
    than ``dump`` was given (a Spark DataFrame loads as pandas): the engine then never
    hands the in-memory value to the steps downstream, only what loading gives.
    """

    name: str

    def dump(self, value: Any, f: BinaryIO) -> None:
        """Write ``value`` to ``f``."""

    def load(self, f: BinaryIO) -> Any:
        """Read one value from ``f``."""


_BUILTINS: dict[str, Serializer] = {
    s.name: s for s in (JSON, STR, BYTES, BYTEARRAY, NUMPY, PANDAS, PICKLE)
}
_by_name: dict[str, Serializer] = dict(_BUILTINS)
_BUILTIN_TYPES: dict[type, Serializer] = {
    type(None): JSON, bool: JSON, int: JSON, float: JSON, list: JSON, dict: JSON,
    str: STR, bytes: BYTES, bytearray: BYTEARRAY,
}  # fmt: skip
_builtin_types: TypeRegistry[Serializer] = TypeRegistry("builtin serializers", _BUILTIN_TYPES)
_user_types: TypeRegistry[Serializer] = TypeRegistry("user serializers")
_lock = _thread.allocate_lock()  # _by_name and _user_types change together


def _register_numpy() -> None:
    import numpy as np

    _builtin_types.register(np.ndarray, NUMPY)


def _register_pandas() -> None:
    import pandas as pd

    _builtin_types.register(pd.DataFrame, PANDAS)


#: Serializers of ductwork's optional parts, imported on first need by the name an artifact
#: records (a process that never stored one loads it) or by a value's package (a Spark
#: DataFrame any step returns): ``import ductwork`` stays light. ``register()`` registers.
_OPTIONAL = {"spark": "ductwork.backends.spark_frames",
             "spark.arrow": "ductwork.backends.spark_frames"}


def _optional(name: str) -> Serializer | None:
    if name not in _OPTIONAL:
        return None
    importlib.import_module(_OPTIONAL[name]).register()
    return _by_name.get(name)


def _register_pyspark() -> None:
    from pyspark.sql.dataframe import DataFrame  # classic and Connect frames derive from it

    _builtin_types.register(DataFrame, _optional("spark"))  # type: ignore[arg-type]


_builtin_types.register_lazy("numpy", _register_numpy)
_builtin_types.register_lazy("pandas", _register_pandas)
_builtin_types.register_lazy("pyspark", _register_pyspark)


def register_serializer(type_: type, serializer: Serializer) -> None:
    """Use ``serializer`` for instances of ``type_`` and its subclasses, in this process."""
    if not isinstance(type_, type):
        raise SerializerError(f"register_serializer needs a class, got {type_!r}")
    name = getattr(serializer, "name", None)
    if not isinstance(name, str) or not (
            0 < len(name) <= 100 and _NAME_CHARS.issuperset(name)):
        raise SerializerError(
            f"serializer {serializer!r} needs a `name`: 1-100 characters of letters, digits "
            "and '_.:-' (it is stored with each artifact to find the serializer again)"
        )
    if not all(callable(getattr(serializer, m, None)) for m in ("dump", "load")):
        raise SerializerError(f"serializer {name!r} needs `dump(value, f)` and `load(f)` methods")
    if name in _BUILTINS and serializer is not _BUILTINS[name]:
        raise SerializerError(
            f"serializer name {name!r} is built in; name yours differently, e.g. 'myproject.{name}'"
        )
    with _lock:
        _by_name[name] = serializer
        _user_types.register(type_, serializer)


def user_registrations() -> list[tuple[type, Serializer]]:
    """The serializers registered by user code in this process (to register in workers)."""
    return _user_types.items()


@contextmanager
def restore_registrations() -> Iterator[None]:
    """Undo, on leaving the block, every ``register_serializer`` made inside it (for tests)."""
    with _lock:
        saved = _user_types.snapshot(), dict(_by_name)
    try:
        yield
    finally:
        with _lock:
            _user_types.restore(saved[0])
            _by_name.clear()
            _by_name.update(saved[1])


def serializer_for(value: Any) -> Serializer:
    """Return the serializer that stores ``value``: the most specific registration in its MRO."""
    cls = type(value)
    builtin = _BUILTIN_TYPES.get(cls)
    # A builtin type (a step's usual output) with no user registration of its own: its
    # built-in is the first in its MRO. No lazy registration concerns a builtin; declined,
    # the walk below goes on up the MRO, where a user's registration for a base may take it.
    if builtin is not None and _user_types.get(cls) is None \
            and builtin.accepts(value):  # type: ignore[attr-defined]
        return builtin
    mro = cls.__mro__
    _builtin_types.load(mro[0])
    for cls in mro:
        serializer = _user_types.get(cls)
        if serializer is not None:
            return serializer
        serializer = _builtin_types.get(cls)
        if serializer is not None and serializer.accepts(value):  # type: ignore[attr-defined]
            return serializer
    return PICKLE


def get_serializer(name: str) -> Serializer:
    """Return the serializer registered under ``name`` (to load an artifact)."""
    serializer = _by_name.get(name) or _optional(name)
    if serializer is None:
        known = ", ".join(sorted(_by_name))
        raise SerializerError(
            f"no serializer named {name!r} in this process (known: {known}). If it is your "
            f"own, call register_serializer(YourType, serializer) before loading, e.g. in the "
            f"module that defines the step, so that workers register it too."
        )
    return serializer
