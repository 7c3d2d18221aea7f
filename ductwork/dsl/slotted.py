"""Small value classes without attrs or dataclasses: the fields are the ``__slots__``.

A class lists its fields in ``__slots__`` and writes its own ``__init__`` (a real
signature; defaults and conversions where a reader sees them): one ``fill`` call, or,
for a record made once per step or more often, ``setter`` field by field. ``Record``
adds what attrs would generate -- field-wise ``==``, a readable repr, pickling,
``replace`` -- as ordinary inherited methods, and ``Frozen`` refuses assignment and
hashes by its fields. Nothing is generated: creating such a class costs what a plain
class does (~0.05M instructions), where an attrs class costs ~2.7M and a frozen
dataclass ~3.5M, both compiling their methods with ``exec`` (docs/design.md).

A field whose name starts with ``_`` is private: its ``__init__`` keyword has no
underscore (as attrs spells it; ``as_dict`` and ``replace`` use those names), and it
is left out of the repr.
"""

from __future__ import annotations

from collections.abc import Callable
from operator import attrgetter

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, ClassVar, TypeVar

    R = TypeVar("R", bound="Record")

__all__ = ["Frozen", "Record", "as_dict", "field_names", "fill", "setter", "thawed"]

_set = object.__setattr__


def field_names(cls: type) -> tuple[str, ...]:
    """The fields of a record class, in order: its slots (and its bases' first)."""
    return cls._record_fields  # type: ignore[attr-defined, no-any-return]


def fill(obj: Any, *values: Any) -> None:
    """Set each field of ``obj``, in ``__slots__`` order: a record's ``__init__`` body."""
    for name, value in zip(obj._record_fields, values, strict=True):
        _set(obj, name, value)


def setter(obj: Any) -> Callable[[str, Any], None]:
    """``set_(name, value)`` for a frozen record's ``__init__``, past its ``__setattr__``.

    Field by field, as attrs does: for a record made once per step or more often,
    ``fill``'s loop would cost a microsecond more.
    """
    return _set.__get__(obj)  # type: ignore[attr-defined, no-any-return]


def as_dict(obj: Any) -> dict[str, Any]:
    """A record's fields by ``__init__`` keyword, not recursing: ``type(obj)(**as_dict(obj))``."""
    return {name[1:] if name[0] == "_" else name: getattr(obj, name)
            for name in obj._record_fields}


class Record:
    """A mutable record: ``==`` by its fields, a repr, pickling and ``replace``."""

    __slots__ = ()
    #: Fields left out of ``==`` (and out of a frozen record's hash).
    _no_eq: ClassVar[tuple[str, ...]] = ()
    #: Fields left out of the repr, besides the private ones.
    _no_repr: ClassVar[tuple[str, ...]] = ()
    #: Set on each subclass when it is made: its fields, and what ``==`` compares of them
    #: (``operator.attrgetter``: C, not a loop, since refs are compared and hashed often).
    _record_fields: ClassVar[tuple[str, ...]] = ()
    _record_key: ClassVar[Callable[[Any], Any]] = staticmethod(lambda obj: ())

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        names = tuple(name for klass in reversed(cls.__mro__)
                      for name in vars(klass).get("__slots__", ()))
        compared = [name for name in names if name not in cls._no_eq]
        cls._record_fields = names
        if compared:
            cls._record_key = staticmethod(attrgetter(*compared))

    def replace(self: R, **changes: Any) -> R:
        """Return a copy with ``changes`` applied (through ``__init__``, so checked again)."""
        return type(self)(**{**as_dict(self), **changes})

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        key = self._record_key
        return bool(key(self) == key(other))

    __hash__ = None  # type: ignore[assignment]  # mutable and compared by value

    def __repr__(self) -> str:
        cls = type(self)
        shown = ", ".join(f"{name}={getattr(self, name, None)!r}" for name in cls._record_fields
                          if name[0] != "_" and name not in cls._no_repr)
        return f"{cls.__qualname__}({shown})"

    def __getstate__(self) -> dict[str, Any]:
        # A dict by field name, as attrs pickles: a value pickled by an earlier ductwork
        # (a published snapshot's step options) still loads.
        return {name: getattr(self, name) for name in self._record_fields
                if hasattr(self, name)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        for name, value in state.items():
            _set(self, name, value)


def thawed(cls: type[R]) -> type[R]:
    """A subclass of frozen ``cls`` whose instances take plain assignment, to fill one fast.

    For a record made several times per step call (the trace's ``Link``, ``Invocation``):
    ``obj = Thawed(); obj.field = value ...; obj.__class__ = cls``. A plain store to a
    slot is a fifth of what ``object.__setattr__`` costs per field, there is no
    ``__init__`` frame, and CPython allows the class change because the two classes
    have the same slots. What comes out is exactly a ``cls``, immutable as any other.
    """
    return type(f"Thawed{cls.__name__}", (cls,), {
        "__slots__": (), "__init__": object.__init__, "__setattr__": object.__setattr__,
        "__delattr__": object.__delattr__, "__module__": cls.__module__})


class Frozen(Record):
    """An immutable record: assignment raises, and it hashes by its fields."""

    __slots__ = ()

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable: cannot set {name!r}; "
                             f"use .replace({name}=...) for a changed copy")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable: cannot delete {name!r}")

    def __hash__(self) -> int:
        return hash(self._record_key(self))
