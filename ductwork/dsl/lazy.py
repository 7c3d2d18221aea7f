"""Lazy inputs: arguments a step receives in another form (a dataset becomes paths).

A value is *lazy* when its type has a ``__ductwork_materialize__`` method.
``materialize(value, read)`` replaces every lazy value in an argument -- also
inside lists, tuples and dicts, as deep as they go -- by ``read(lazy)``, and
copies only the containers that change. It is the one walker behind both ways
a step gets its arguments: ``execute`` in a run (``read`` calls the hook with
the step's context) and a step called as a plain function (``read`` calls the
value's public ``materialize()``), so the step receives the same thing either
way.

Most arguments hold nothing lazy, so ``holds_lazy`` asks first, by type alone
and a level at a time: a level's items are flattened with ``itertools.chain``
and their types gathered with ``set(map(type, ...))``, both at C speed (a short
level, such as a call's arguments, is split value by value first, so a list of
tuples and a list of dicts each keep their fast path). A list of a million
tuples or dicts of numbers costs two such passes, not a Python call per
element; only an argument that does hold a lazy value is walked. Past 64
levels (or in a container that holds itself) it searches value by value,
visiting each container once.

This module imports nothing from ductwork: the DSL layer cannot see the runtime.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import chain

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["holds_lazy", "is_lazy", "materialize"]

HOOK = "__ductwork_materialize__"
#: Types that are never lazy and hold nothing: a container of only these is skipped.
LEAVES = frozenset({int, float, complex, str, bytes, bool, type(None)})
_SEQUENCES = frozenset({list, tuple})
_MAX_DEPTH = 64  # deeper (or a container holding itself): search value by value
_FEW = 32  # a mixed level this short is split by value, so each keeps its fast path


def is_lazy(value: Any) -> bool:
    """Whether ``value`` is a lazy input (its type has ``__ductwork_materialize__``)."""
    return getattr(type(value), HOOK, None) is not None


def holds_lazy(value: Any) -> bool:
    """Whether ``value`` is, or holds inside lists, tuples and dicts, a lazy input."""
    todo: list[tuple[Any, int]] = [((value,), 0)]  # (a level's items, its depth)
    while todo:
        level, depth = todo.pop()
        types = set(map(type, level))
        if types <= LEAVES:
            continue
        if any(getattr(t, HOOK, None) is not None for t in types):
            return True
        if not any(issubclass(t, list | tuple | dict) for t in types):
            continue  # no container: nothing lazy below (a list of arrays, say)
        if depth >= _MAX_DEPTH:
            return _search(value)
        if len(level) <= _FEW:  # a few values (a call's arguments): each its own level
            todo += [(v.values() if isinstance(v, dict) else v, depth + 1)
                     for v in level if isinstance(v, list | tuple | dict)]
        elif types <= _SEQUENCES:
            todo.append((list(chain.from_iterable(level)), depth + 1))
        elif types <= {dict}:
            todo.append((list(chain.from_iterable(map(dict.values, level))), depth + 1))
        else:  # many mixed values: keep the containers (subclasses too), drop the rest
            seqs = [v for v in level if isinstance(v, list | tuple)]
            maps = [v.values() for v in level if isinstance(v, dict)]
            todo.append((list(chain(chain.from_iterable(seqs), chain.from_iterable(maps))),
                         depth + 1))
    return False


def _search(value: Any) -> bool:
    """``holds_lazy`` one value at a time, visiting each container once (cycles end)."""
    todo, seen = [value], set()
    while todo:
        item = todo.pop()
        if is_lazy(item):
            return True
        if isinstance(item, list | tuple | dict) and id(item) not in seen:
            seen.add(id(item))
            todo.extend(item.values() if isinstance(item, dict) else item)
    return False


def materialize(value: Any, read: Callable[[Any], Any]) -> Any:
    """Replace each lazy value in ``value`` by ``read(lazy)``; copy only what changes."""
    return _walk(value, read, set()) if holds_lazy(value) else value


def _walk(value: Any, read: Callable[[Any], Any], inside: set[int]) -> Any:
    if is_lazy(value):
        return read(value)
    if not isinstance(value, list | tuple | dict) or id(value) in inside:
        return value  # not a container, or one that holds itself: left as it is
    inside.add(id(value))
    try:
        if isinstance(value, dict):
            if set(map(type, value.values())) <= LEAVES:
                return value
            new = {k: _walk(v, read, inside) for k, v in value.items()}
            if all(new[k] is value[k] for k in value):
                return value
            return new if type(value) is dict else type(value)(new)
        if set(map(type, value)) <= LEAVES:
            return value
        items = [_walk(v, read, inside) for v in value]
        if all(a is b for a, b in zip(items, value, strict=True)):
            return value
        if isinstance(value, list):
            return items
        return type(value)._make(items) if hasattr(value, "_make") else type(value)(items)
    finally:
        inside.discard(id(value))
