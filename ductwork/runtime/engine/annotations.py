"""Checking a step's return value against its return annotation.

The check is shallow by design -- ``list[float]`` checks for a list, not each
element -- so it costs microseconds and never walks a large value. Annotations
it cannot judge (type variables, unresolvable forward references, protocols)
pass.

Before that, a value that is a live handle rather than data -- an open file, a
generator -- is refused: a text file would be pickled as its content, so the
first run would return the file and every cached run a ``StringIO``. The check
runs where the step returned, before values travel or are stored, so every
backend refuses it the same way.
"""

from __future__ import annotations

import io
import types

from ductwork.dsl.hints import NO_HINT, arguments, origin, return_hint
from ductwork.runtime import caches

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

#: Resolved return hints by function id (the function is kept with it, so a new function
#: that reuses a collected one's id is never given its hint).
_HINTS = caches.cache("engine.return_hints", 4096)


def _return_hint(fn: Any) -> Any:
    cached = _HINTS.get(id(fn))
    if cached is not None and cached[0] is fn:
        return cached[1]
    hint = return_hint(fn)  # NO_HINT also for an annotation we cannot resolve, so cannot check
    _HINTS.put(id(fn), (fn, hint))
    return hint


def conforms(value: Any, hint: Any) -> bool:
    """Whether ``value`` fits ``hint`` at its outermost level."""
    if hint is NO_HINT or hint is object:
        return True
    if hint is None or hint is type(None):
        return value is None
    if type(hint) is type and hint.__module__ != "typing":  # a class: no typing needed
        if getattr(hint, "_is_protocol", False):
            return True
        return _is_instance(value, hint)
    if type(hint) is types.UnionType:
        return any(conforms(value, arg) for arg in hint.__args__)
    if type(hint) is types.GenericAlias:
        return not isinstance(hint.__origin__, type) or isinstance(value, hint.__origin__)
    import typing  # a typing construct (Any, Union, Literal, ...): typing is loaded already

    if hint is typing.Any:
        return True
    origin = typing.get_origin(hint)
    if origin is typing.Union or origin is types.UnionType:
        return any(conforms(value, arg) for arg in typing.get_args(hint))
    if origin is typing.Literal:
        return value in typing.get_args(hint)
    if origin is typing.Annotated:
        return conforms(value, typing.get_args(hint)[0])
    if origin is not None:
        return not isinstance(origin, type) or isinstance(value, origin)
    if isinstance(hint, typing.NewType):
        return conforms(value, hint.__supertype__)
    if not isinstance(hint, type) or getattr(hint, "_is_protocol", False):
        return True
    return _is_instance(value, hint)


def _is_instance(value: Any, hint: type) -> bool:
    if hint is float:  # PEP 484: an int is acceptable where a float is expected
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is complex:
        return isinstance(value, int | float | complex) and not isinstance(value, bool)
    return isinstance(value, hint)


def _name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or repr(hint).replace("typing.", "")


def _handle(value: Any) -> tuple[str, str] | None:
    """(what it is, what to return instead) if ``value`` is a live handle, not data."""
    if isinstance(value, io.IOBase) and not isinstance(value, io.BytesIO | io.StringIO):
        return f"an open file ({type(value).__name__})", "Return its content or its path instead"
    if isinstance(value, types.GeneratorType | types.AsyncGeneratorType):
        return "a generator", "Return a list instead: list(...)"
    if isinstance(value, types.CoroutineType):
        return "a coroutine (an async call not awaited)", "Await it inside the step"
    return None


def check_outputs(step: Any, outputs: dict[str, Any]) -> None:
    """Raise TypeError naming the step and output if an output is a live handle (an open
    file, a generator) or does not fit the return annotation."""
    for name, value in outputs.items():
        handle = _handle(value)
        if handle is not None:
            raise TypeError(
                f"Step '{step.name}' returned {handle[0]} for output '{name}': it is a handle "
                f"on this process, not a value, so it cannot be stored or served from the "
                f"cache. {handle[1]}."
            )
    hint = _return_hint(step.fn)
    if hint is NO_HINT:
        return
    if not step.options.multiple:
        value = outputs[step.options.outputs[0]]
        if not conforms(value, hint):
            raise TypeError(
                f"Step '{step.name}' returned {type(value).__name__}, but its return annotation "
                f"says {_name(hint)}. Return a {_name(hint)}, or correct the annotation."
            )
        return
    fields = getattr(hint, "__annotations__", None) if hasattr(hint, "_fields") else None
    if fields is not None:
        per_output = [fields.get(name, object) for name in step.options.outputs]
    elif origin(hint) is tuple:
        per_output = list(arguments(hint))
    else:
        return
    if len(per_output) != len(step.options.outputs):
        return
    for name, expected in zip(step.options.outputs, per_output, strict=True):
        if isinstance(expected, str):  # a NamedTuple field left as a forward reference
            continue
        if not conforms(outputs[name], expected):
            raise TypeError(
                f"Step '{step.name}' returned {type(outputs[name]).__name__} for output "
                f"'{name}', but its return annotation says {_name(expected)}. Return a "
                f"{_name(expected)} there, or correct the annotation."
            )
