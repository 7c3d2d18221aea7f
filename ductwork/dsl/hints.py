"""A step's return annotation as ``typing.get_type_hints`` resolves it, without ``typing``.

Importing ``typing`` costs a process ~12M instructions, and most annotations need
none of it: a class, ``None``, ``tuple[int, str]`` or ``int | None`` is returned by
``get_type_hints`` as it is, and an annotation written as a string (``from
__future__ import annotations``) is resolved by evaluating it in the function's
module, as ``get_type_hints`` does. ``return_hint`` does that for a plain function
whose annotations are all of those kinds, and gives everything else -- a
``typing`` construct, a string that evaluates to another string or to something
that is not a class, a class, a partial -- to ``get_type_hints`` itself, so the
answer is always the one it gives. As there, one annotation that cannot be
resolved makes the whole answer ``NO_HINT``.

``origin`` and ``arguments`` are ``typing.get_origin`` and ``typing.get_args``,
importing ``typing`` only for a hint that is not a class or a builtin generic.
"""

from __future__ import annotations

from types import FunctionType, GenericAlias, UnionType

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

#: No return annotation, or an annotation of the function that cannot be resolved.
NO_HINT: Any = object()
_TYPING = object()  # what the hint needs typing for


def return_hint(fn: Any) -> Any:
    """``typing.get_type_hints(fn).get("return", NO_HINT)``, ``NO_HINT`` if that raises."""
    hint = _plain_return_hint(fn)
    if hint is not _TYPING:
        return hint
    import typing

    try:
        return typing.get_type_hints(fn).get("return", NO_HINT)
    except Exception:  # unresolvable forward references: nothing to learn from them
        return NO_HINT


def _plain_return_hint(fn: Any) -> Any:
    """The return hint of a function whose annotations need no typing; else ``_TYPING``."""
    if type(fn) is not FunctionType:
        return _TYPING
    annotations = fn.__annotations__
    if not annotations:
        return NO_HINT
    namespace = None
    hints = {}
    for name, value in annotations.items():
        # A string is evaluated, and a string it gives too (``-> "int"`` under ``from
        # __future__ import annotations``), as typing does; deeper, typing decides.
        for _ in range(2):
            if not isinstance(value, str):
                break
            if value.startswith("*"):  # an unpacked type variable tuple: typing's
                return _TYPING
            if namespace is None:
                namespace = _namespace(fn)
            try:
                value = eval(value, namespace, namespace)
            except Exception:  # what get_type_hints raises too: no hints at all
                return NO_HINT
        if value is None:
            value = type(None)
        elif not _plain(value):
            return _TYPING
        hints[name] = value
    return hints.get("return", NO_HINT)


def _namespace(fn: Any) -> dict[str, Any]:
    """The globals ``get_type_hints`` evaluates ``fn``'s string annotations in."""
    inner = fn
    while hasattr(inner, "__wrapped__"):
        inner = inner.__wrapped__
    return getattr(inner, "__globals__", {})


def _plain(value: Any) -> bool:
    """Whether ``get_type_hints`` returns ``value`` unchanged and cannot fail on it."""
    if isinstance(value, type):
        # typing's own classes (Generic, Protocol, Any) are checked by typing.
        return getattr(value, "__module__", None) != "typing"
    if type(value) is GenericAlias or type(value) is UnionType:
        return all(arg is Ellipsis or (arg is not None and _plain(arg))
                   for arg in value.__args__)
    return False


def origin(hint: Any) -> Any:
    """``typing.get_origin(hint)``."""
    if type(hint) is GenericAlias:
        return hint.__origin__
    if type(hint) is UnionType:
        return UnionType
    if type(hint) is type and hint.__module__ != "typing":
        return None
    import typing

    return typing.get_origin(hint)


def arguments(hint: Any) -> tuple[Any, ...]:
    """``typing.get_args(hint)``."""
    if (type(hint) is GenericAlias and hint.__origin__ is tuple) or type(hint) is UnionType:
        return hint.__args__  # type: ignore[no-any-return]
    if type(hint) is type and hint.__module__ != "typing":
        return ()
    import typing

    return typing.get_args(hint)
