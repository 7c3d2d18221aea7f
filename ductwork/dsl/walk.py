"""Finding the placeholders inside a value: the edges a step call's arguments make.

``find_outputs`` walks lists, tuples and dicts (as values) iteratively, so deep nesting
cannot exhaust the stack, and refuses what would silently make no edge or cannot be
stored: a value that contains itself, and a placeholder used as a dict key, in a set,
or inside a dataclass or attrs instance. Paths (``rows[0]['a']``) are built lazily, only
for what is reported.
"""

from __future__ import annotations

from collections.abc import Iterator

from ductwork.dsl.core import Output

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, NoReturn


def find_outputs(value: Any, path: str, owner: str | None = None,
                 what: str | None = None) -> Iterator[tuple[Output, str]]:
    """Yield every placeholder inside ``value`` with a path like ``rows[0]['a']``.

    Placeholders make edges inside lists, tuples and dicts (as values). The walk
    is iterative, so deep nesting cannot exhaust the stack, and it refuses, naming
    ``owner`` (``"Step 'fit' at f.py:3"``), ``what`` holds the value (default: the
    argument the path starts with) and the path: a value that contains itself,
    and a placeholder used as a dict key, in a set, or inside a dataclass or attrs
    instance, where it would silently make no edge.
    """
    # Paths are built only when one is reported: ("[", parent, key) or (".", parent, name).
    frames: list[Iterator[tuple[Any, Any, str]]] = [iter(((value, path, ""),))]
    walking: list[int] = []  # ids of the containers frames[1:] walk: a repeat is a cycle
    open_ids: set[int] = set()
    while frames:
        for item, where, inside in frames[-1]:
            if isinstance(item, Output):
                if inside:
                    where = _render(where)
                    _refuse_placement(item, where, inside, _subject(owner, what, where))
                yield item, _render(where)
                continue
            children = _children(item, where, inside)
            if children is None:
                continue
            if id(item) in open_ids:
                where = _render(where)
                _refuse_cycle(item, where, _subject(owner, what, where))
            open_ids.add(id(item))
            walking.append(id(item))
            frames.append(children)
            break
        else:
            frames.pop()
            if walking:
                open_ids.discard(walking.pop())


# Types whose values hold no placeholder: not walked.
SCALARS = frozenset({int, float, str, bytes, bool, type(None)})


def _children(value: Any, path: Any, inside: str) -> Iterator[tuple[Any, Any, str]] | None:
    """The parts of a container, each with its path and what holds it; None for a leaf."""
    cls = type(value)
    if cls in SCALARS:
        return None
    if isinstance(value, list | tuple):
        return ((v, ("[", path, i), inside) for i, v in enumerate(value))
    if isinstance(value, dict):
        # A key's path is the dict's own: the message says it is in a key of that dict.
        return _dict_parts(value, path, inside)
    if isinstance(value, set | frozenset):
        return ((v, path, "set") for v in value)
    attributes = getattr(cls, "__attrs_attrs__", None)
    if attributes is not None or hasattr(cls, "__dataclass_fields__"):
        # The marks attrs and dataclasses set on a class: neither library is imported
        # here (an attrs class's ``__attrs_attrs__`` lists its fields, in order).
        if attributes is not None:
            names = [a.name for a in attributes]
        else:
            import dataclasses

            names = [f.name for f in dataclasses.fields(value)]
        held = f"{cls.__name__} instance"
        return ((getattr(value, name, None), (".", path, name), held) for name in names)
    return None


def _dict_parts(value: dict[Any, Any], path: Any, inside: str) -> Iterator[tuple[Any, Any, str]]:
    """A dict's values, and its keys other than plain strings and numbers."""
    for key, item in value.items():
        if type(key) not in SCALARS:
            yield key, path, "key"
        yield item, ("[", path, key), inside


def _render(path: Any) -> str:
    """Spell a lazily built path: ``rows[0]['a'].value``."""
    parts = []
    while isinstance(path, tuple):
        how, path, key = path
        parts.append(f"[{key!r}]" if how == "[" else f".{key}")
    return path + "".join(reversed(parts))


def _subject(owner: str | None, what: str | None, path: str) -> str:
    """``"Step 'fit' at f.py:3: argument 'x'"``: who holds the value, for an error."""
    if owner is None:
        from ductwork.dsl.core import format_location, user_location

        owner = f"At {format_location(user_location())}"
    argument = path.split("[", 1)[0].split(".", 1)[0]
    return f"{owner}: {what or f'argument {argument!r}'}"


def _refuse_placement(out: Output, path: str, inside: str, subject: str) -> NoReturn:
    """Refuse a placeholder that would make no edge where it is."""
    from ductwork.dsl.core import TraceError

    head = f"{subject} puts the output of step '{out.node}'"
    if inside == "key":
        raise TraceError(
            f"{head} in a key of the dict at {path}. Outputs can be dict values, not keys: a "
            "key must be known when the pipeline is traced. Use a constant key, "
            "{'name': output}, or build the dict inside a step."
        )
    if inside == "set":
        raise TraceError(
            f"{subject} puts step outputs in a set ({path}, the output of step '{out.node}'); "
            "sets are unordered, so their values cannot be placed. Use a list or tuple."
        )
    raise TraceError(
        f"{head} inside a {inside} ({path}). Outputs are found in lists, tuples and dicts "
        "only, so this one would reach the step as a placeholder, not a value. Pass the output "
        "as its own argument, or build the object inside a step."
    )


def _refuse_cycle(value: Any, path: str, subject: str) -> NoReturn:
    """Refuse a value that contains itself: it cannot be hashed, stored or walked."""
    from ductwork.dsl.core import TraceError

    raise TraceError(
        f"{subject} contains itself: {path} refers back to a {type(value).__name__} that "
        "holds it. A value with a reference cycle cannot be hashed or stored; pass one "
        "without cycles, or build it inside a step."
    )
