"""Binding a traced step call's arguments to its parameters without ``inspect``.

``inspect`` (with the ``ast``, ``dis`` and ``tokenize`` it imports) costs a process
~35M instructions, and ``inspect.Signature.bind`` plus ``apply_defaults`` is most
of the cost of recording a step call (~a third of tracing a warm 50-step chain).
So a step's or pipeline's parameters are read once from its function's code
object by ``parameters`` -- ``co_argcount``, ``co_posonlyargcount``,
``co_kwonlyargcount``, ``co_varnames`` and ``co_flags`` for ``*args`` and
``**kwargs``, ``__defaults__`` and ``__kwdefaults__``: exactly what
``inspect.signature`` reads for a plain function -- as a tuple of ``(name, kind,
default)`` in ``inspect``'s order, kinds numbered as ``inspect.Parameter``'s.
Anything else (a function with ``__wrapped__`` or ``__signature__``, a builtin,
a partial, a class, a callable object) is read through ``inspect.signature``.

Most steps have a plain signature -- positional-or-keyword parameters, some with
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
``call_arguments`` splits bound arguments back into ``(args, kwargs)`` as
``inspect.BoundArguments`` does.

The table is plain data, not a closure, so a step holding it still pickles.
"""

from __future__ import annotations

from types import FunctionType

TYPE_CHECKING = False
if TYPE_CHECKING:
    import inspect
    from collections.abc import Callable
    from typing import Any

    # (name, kind, default or EMPTY) per parameter, in inspect's order
    Params = tuple[tuple[str, int, Any], ...]
    # (parameter names, (name, default or EMPTY) per parameter, how many parameters)
    PlainTable = tuple[tuple[str, ...], tuple[tuple[str, Any], ...], int]

# inspect.Parameter's kinds, by their values
POSITIONAL_ONLY, POSITIONAL_OR_KEYWORD, VAR_POSITIONAL, KEYWORD_ONLY, VAR_KEYWORD = range(5)

_CO_VARARGS, _CO_VARKEYWORDS = 0x04, 0x08
# What makes inspect.signature read something else than the function's code object.
_SIGNATURE_HOOKS = ("__wrapped__", "__signature__", "__text_signature__", "_partialmethod",
                    "__partialmethod__")


class _Empty:
    """No default: ``inspect.Parameter.empty`` without importing inspect."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "EMPTY"

    def __reduce__(self) -> str:
        return "EMPTY"  # one object, also across pickling


EMPTY = _Empty()


def code_parameters(fn: Any) -> Params | None:
    """A plain function's parameters as ``inspect.signature`` lists them; else ``None``."""
    if type(fn) is not FunctionType or any(hasattr(fn, hook) for hook in _SIGNATURE_HOOKS):
        return None
    code = fn.__code__
    count, posonly, kwonly = code.co_argcount, code.co_posonlyargcount, code.co_kwonlyargcount
    names, flags = code.co_varnames, code.co_flags
    defaults = fn.__defaults__ or ()
    kwdefaults = fn.__kwdefaults__ or {}
    first_default = count - len(defaults)
    params: list[tuple[str, int, Any]] = [
        (name, POSITIONAL_ONLY if i < posonly else POSITIONAL_OR_KEYWORD,
         defaults[i - first_default] if i >= first_default else EMPTY)
        for i, name in enumerate(names[:count])
    ]
    index = count + kwonly
    if flags & _CO_VARARGS:
        params.append((names[index], VAR_POSITIONAL, EMPTY))
        index += 1
    params += [(name, KEYWORD_ONLY, kwdefaults.get(name, EMPTY))
               for name in names[count:count + kwonly]]
    if flags & _CO_VARKEYWORDS:
        params.append((names[index], VAR_KEYWORD, EMPTY))
    return tuple(params)


def parameters(fn: Callable[..., Any]) -> Params:
    """``fn``'s parameters as ``(name, kind, default or EMPTY)``, in ``inspect``'s order."""
    params = code_parameters(fn)
    if params is not None:
        return params
    import inspect  # anything but a plain function: inspect knows them all

    return tuple((p.name, int(p.kind), EMPTY if p.default is p.empty else p.default)
                 for p in inspect.signature(fn).parameters.values())


def plain_table(params: Params) -> PlainTable | None:
    """Return the binding table of a plain signature, or ``None`` if it has other kinds."""
    if any(kind != POSITIONAL_OR_KEYWORD for _, kind, _ in params):
        return None
    return (tuple(name for name, _, _ in params),
            tuple((name, default) for name, _, default in params), len(params))


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
        elif default is EMPTY:
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


def call_arguments(params: Params, arguments: dict[str, Any]) -> tuple[tuple[Any, ...],
                                                                       dict[str, Any]]:
    """Bound ``arguments`` as the ``(args, kwargs)`` of ``inspect.BoundArguments``."""
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    positional = True  # until a keyword-only parameter, **kwargs or a missing argument
    for name, kind, _ in params:
        if name not in arguments:
            positional = False  # a missing argument: the rest go by keyword
            continue
        if kind >= KEYWORD_ONLY:
            positional = False
        value = arguments[name]
        if positional:
            if kind == VAR_POSITIONAL:
                args.extend(value)
            else:
                args.append(value)
        elif kind == VAR_KEYWORD:
            kwargs.update(value)
        else:
            kwargs[name] = value
    return tuple(args), kwargs
