"""Binding a traced step call's arguments to its parameters without ``inspect``.

``inspect.Signature.bind`` plus ``apply_defaults`` is most of the cost of
recording a step call (~a third of tracing a warm 50-step chain). Most steps
have a plain signature -- positional-or-keyword parameters, some with
defaults, no ``*args``, ``**kwargs``, keyword-only or positional-only ones --
and for those a table of names and defaults, made once per step by
``plain_table``, binds a call with a dict and a loop. ``bind_plain`` gives the
dict ``bind`` + ``apply_defaults`` would (every parameter, in parameter order)
or ``None`` for any call that does not fit, so the caller falls back to
``inspect``, which raises its usual ``TypeError`` (the messages users see stay
inspect's). A signature that is not plain gets no table at all.

``bind_call`` is the general path (any signature, steps and nested pipelines):
inspect's binding, its ``TypeError`` rewritten to name the callee and the line.
What is inside the bound values is checked by ``trace.step_links``.

The table is plain data, not a closure, so a step holding it still pickles.
"""

from __future__ import annotations

import inspect
from typing import Any

# (parameter names, (name, default or _EMPTY) per parameter, how many parameters)
PlainTable = tuple[tuple[str, ...], tuple[tuple[str, Any], ...], int]

_EMPTY = inspect.Parameter.empty


def plain_table(signature: inspect.Signature) -> PlainTable | None:
    """Return the binding table of a plain signature, or ``None`` if it has other kinds."""
    params = list(signature.parameters.values())
    if any(p.kind is not p.POSITIONAL_OR_KEYWORD for p in params):
        return None
    return (tuple(p.name for p in params), tuple((p.name, p.default) for p in params),
            len(params))


def bind_plain(table: PlainTable, args: tuple[Any, ...],
               kwargs: dict[str, Any]) -> dict[str, Any] | None:
    """Bind a call as ``bind`` + ``apply_defaults`` would; ``None`` if it does not fit."""
    names, params, count = table
    given = len(args)
    if given > count:
        return None  # too many positional arguments: inspect's error
    # The positional arguments by name: dict displays for the usual one or two, each a
    # fifth of what dict(zip(...)) costs.
    if given == 1:
        bound = {names[0]: args[0]}
    elif given == 2:
        bound = {names[0]: args[0], names[1]: args[1]}
    else:
        bound = dict(zip(names, args, strict=False))  # names outnumber args, or as many
    if given == count:
        # All positional, the common case: any keyword now duplicates a positional one.
        return None if kwargs else bound
    used = 0
    for name, default in params[given:]:
        if name in kwargs:
            bound[name] = kwargs[name]
            used += 1
        elif default is _EMPTY:
            return None  # a missing argument: inspect's error
        else:
            bound[name] = default
    # A keyword left over is unknown or duplicates a positional one: inspect's error.
    return bound if used == len(kwargs) else None


def bind_call(kind: str, name: str, signature: inspect.Signature, args: tuple[Any, ...],
              kwargs: dict[str, Any], location: tuple[str, int]) -> inspect.BoundArguments:
    """Bind a traced call's arguments, defaults applied; a misfit names the callee and line."""
    try:
        bound = signature.bind(*args, **kwargs)
    except TypeError as exc:
        from ductwork.dsl.core import TraceError, format_location

        raise TraceError(
            f"{kind} '{name}' called with arguments that do not fit {name}{signature} at "
            f"{format_location(location)}: {exc}."
        ) from None
    bound.apply_defaults()
    return bound
