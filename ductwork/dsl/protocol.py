"""``Protocol`` and ``runtime_checkable`` as ductwork's Protocols need them, without ``typing``.

Importing ``typing`` costs a process ~12M instructions, and a run uses a Protocol only
to list its members (``engine/backend.get_backend``) and, for a backend that schedules
the graph itself, one ``isinstance``. A class listing ``Protocol`` among its bases is
a protocol, as in ``typing``: its members are the names it defines or annotates (its
protocol bases' too, typing's internal names left out), and ``isinstance`` with a
``runtime_checkable`` one is true for an object that has every member -- a method
member not set to ``None`` -- or whose class derives from it; with any other protocol it
raises ``TypeError``. The metaclass derives from ``ABCMeta``, as typing's does, so a
class may derive from a protocol and an ABC at once. Modules import these names under
``if not TYPE_CHECKING``, so type checkers see typing's own.
"""

from __future__ import annotations

from abc import ABCMeta

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["Protocol", "protocol_members", "runtime_checkable"]

# What typing (3.11) does not count as a protocol's member.
_NOT_MEMBERS = frozenset({
    "__parameters__", "__orig_bases__", "__orig_class__", "_is_protocol",
    "_is_runtime_protocol", "__abstractmethods__", "__annotations__", "__dict__", "__doc__",
    "__init__", "__module__", "__new__", "__slots__", "__subclasshook__", "__weakref__",
    "__class_getitem__", "_MutableMapping__marker", "__qualname__", "__init_subclass__",
})


class _ProtocolMeta(ABCMeta):
    def __instancecheck__(cls, instance: Any) -> bool:
        if cls.__dict__.get("_is_protocol"):
            if not cls.__dict__.get("_is_runtime_protocol"):
                raise TypeError("Instance and class checks can only be used with "
                                "@runtime_checkable protocols")
            if all(hasattr(instance, attr) and (
                    not callable(getattr(cls, attr, None)) or getattr(instance, attr) is not None)
                   for attr in protocol_members(cls)):
                return True
        return super().__instancecheck__(instance)


class Protocol(metaclass=_ProtocolMeta):
    """Base class of a protocol class (``typing.Protocol``'s runtime part)."""

    __slots__ = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._is_protocol = Protocol in cls.__bases__


def runtime_checkable(cls: type) -> type:
    """Let ``isinstance`` check ``cls``'s members (``typing.runtime_checkable``)."""
    if not cls.__dict__.get("_is_protocol"):
        raise TypeError(f"@runtime_checkable can be only applied to protocol classes, got {cls!r}")
    cls._is_runtime_protocol = True  # type: ignore[attr-defined]
    return cls


def protocol_members(cls: type) -> list[str]:
    """The members of protocol ``cls``, its protocol bases' first (as typing counts them)."""
    names: list[str] = []
    for klass in reversed(cls.__mro__):
        if klass.__dict__.get("_is_protocol"):
            # What inspect.get_annotations gives for a class, without importing inspect.
            declared = [*klass.__dict__, *klass.__dict__.get("__annotations__", {})]  # noqa: RUF063
            names += [n for n in declared
                      if n not in _NOT_MEMBERS and not n.startswith("_abc_") and n not in names]
    return names
