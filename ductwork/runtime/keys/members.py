"""A class's members as the code walk sees them: the code they hold, and their data.

``callables`` finds the functions behind a member (methods, properties, static
and class methods, nested classes, ``cached_property``, ``partialmethod``), which
the walk follows like any helper; what holds no code is data. A class without
source (a namedtuple, an exec'd class) counts by ``data_attributes``: the values
of its data members, since no file holds them.
"""

from __future__ import annotations

from types import FunctionType

from ductwork.dsl.step import Step
from ductwork.runtime.keys.constants import value_digest

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def callables(cls: type, member: Any) -> list[Any]:
    """The functions and nested classes behind one member of ``cls``."""
    if isinstance(member, staticmethod | classmethod):
        return [member.__func__]
    if isinstance(member, property):
        return [f for f in (member.fget, member.fset, member.fdel) if f is not None]
    if isinstance(member, type):  # a nested class, not an attribute naming another class
        return [member] if member.__qualname__.startswith(f"{cls.__qualname__}.") else []
    if isinstance(member, FunctionType | Step) or hasattr(member, "__wrapped__"):
        return [member]
    inner = getattr(member, "func", None)  # functools.cached_property, partialmethod
    return [inner] if isinstance(inner, FunctionType) else []


def data_attributes(cls: type, qualname: Any) -> list[tuple[str, str]]:
    """Each data member's value digest (or its type's name), for classes without source."""
    out = []
    for name, value in sorted(vars(cls).items()):
        if name != "__doc__" and not callables(cls, value):
            out.append((name, value_digest(value) or qualname(type(value))))
    return out
