"""Recording step calls while a pipeline body runs.

Tracing is running the pipeline function with an active ``Trace`` in a
``ContextVar``. Each step call records an ``Invocation`` and hands back
``Output`` placeholders. The dependencies of an invocation are found once, when
it is recorded, by scanning its arguments for placeholders, also inside lists,
tuples and dicts (the dask ``_task_spec`` idea: a node finds its own
dependencies). Invocations are recorded in call order, and a call can only use
placeholders that already exist, so that order is a topological order.

Each call's id comes from ``ids.CallIds``: ``fit``, ``fit-2``, ... in call order, or
the id given by ``step.named(...)``, prefixed inside nested pipelines (``prep/clean``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any, NoReturn

from ductwork.dsl.core import Output, Outputs
from ductwork.dsl.ids import CallIds
from ductwork.dsl.slotted import Frozen, fill, setter

_ACTIVE: ContextVar[Trace | None] = ContextVar("ductwork_trace", default=None)


class Link(Frozen):
    """One data edge: output ``output`` of node ``source`` feeds ``argument``."""

    __slots__ = ("source", "output", "argument")
    source: str
    output: str
    argument: str

    def __init__(self, source: str, output: str, argument: str) -> None:
        set_ = setter(self)
        set_("source", source)
        set_("output", output)
        set_("argument", argument)


class Invocation(Frozen):
    """One recorded step call (or one ``step.map`` call) in a traced pipeline."""

    __slots__ = ("id", "step", "arguments", "links", "location", "map_over")
    id: str
    step: Any
    arguments: dict[str, Any]
    links: tuple[Link, ...]
    location: tuple[str, int]
    map_over: str | None

    def __init__(self, id: str, step: Any, arguments: dict[str, Any], links: tuple[Link, ...],
                 location: tuple[str, int], map_over: str | None = None) -> None:
        set_ = setter(self)
        set_("id", id)
        set_("step", step)
        set_("arguments", arguments)
        set_("links", links)
        set_("location", location)
        set_("map_over", map_over)

    @property
    def deps(self) -> tuple[str, ...]:
        """The ids of the invocations this one reads from, each once, in order."""
        links = self.links
        if len(links) < 2:  # most calls: read often by the engine, so without a dict
            return (links[0].source,) if links else ()
        return tuple(dict.fromkeys([link.source for link in links]))

    @property
    def is_map(self) -> bool:
        """Whether this invocation fans out over a list known only at run time."""
        return self.map_over is not None


class Plan(Frozen):
    """A traced pipeline: its parameters, invocations in call order, and return structure."""

    __slots__ = ("name", "params", "invocations", "result")
    name: str
    params: dict[str, Any]
    invocations: dict[str, Invocation]
    result: Any

    def __init__(self, name: str, params: dict[str, Any], invocations: dict[str, Invocation],
                 result: Any) -> None:
        fill(self, name, params, invocations, result)


class Trace:
    """The invocations recorded while one pipeline body runs."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.invocations: dict[str, Invocation] = {}
        self.ids = CallIds()
        # The pipelines whose bodies are running, outermost first: one entered again
        # is recursion, refused at once instead of running out of stack.
        self._pipelines: list[tuple[object, str]] = []

    def new_id(self, name: str, location: tuple[str, int] | None = None,
               kind: str = "step") -> str:
        """Return the first free id of ``name``, ``name-2``, ... (prefixed inside a scope)."""
        return self.ids.positional(name, location, kind)

    def named_id(self, name: str, step: str, location: tuple[str, int]) -> str:
        """Return the id a ``step.named(name)`` call asked for, refusing one already given."""
        return self.ids.named(name, step, location)

    @contextlib.contextmanager
    def scope(self, name: str, location: tuple[str, int] | None = None) -> Iterator[str]:
        """Prefix the ids recorded inside a nested pipeline call with its own id."""
        scope_id = self.new_id(name, location, kind="pipeline")
        self.ids.prefix.append(scope_id.rsplit("/", 1)[-1])
        try:
            yield scope_id
        finally:
            self.ids.prefix.pop()

    @contextlib.contextmanager
    def entering(self, pipeline: object, name: str, location: tuple[str, int]) -> Iterator[None]:
        """Mark ``pipeline``'s body as running; refuse it if it already is (recursion)."""
        for i, (running, _) in enumerate(self._pipelines):
            if running is pipeline:
                from ductwork.dsl.core import TraceError, format_location

                chain = " -> ".join([n for _, n in self._pipelines[i:]] + [name])
                raise TraceError(
                    f"Pipeline '{name}' calls itself: {chain} (at {format_location(location)}). "
                    "A pipeline is inlined where it is called, so pipelines cannot recurse. "
                    "Repeat steps with a loop over plain values in the body, or fan out "
                    "with `step.map`."
                )
        self._pipelines.append((pipeline, name))
        try:
            yield
        finally:
            self._pipelines.pop()

    def record(self, invocation: Invocation) -> None:
        """Add an invocation whose id came from ``new_id``."""
        for link in invocation.links:
            if link.source not in self.invocations:
                raise_foreign(link.source, invocation.id)
        self.invocations[invocation.id] = invocation


def raise_foreign(source: str, consumer: str) -> None:
    """Refuse a placeholder that belongs to another (or a finished) trace."""
    from ductwork.dsl.core import TraceError, format_location, user_location

    raise TraceError(
        f"Step '{consumer}' at {format_location(user_location())} receives the output of "
        f"step '{source}', which was not called in this pipeline. Outputs can only be passed "
        "to steps inside the pipeline body that produced them."
    )


def current_trace() -> Trace | None:
    """Return the trace being recorded in this context, if any."""
    return _ACTIVE.get()


@contextlib.contextmanager
def tracing(trace: Trace) -> Iterator[Trace]:
    """Make ``trace`` the active trace for the duration of the block."""
    token = _ACTIVE.set(trace)
    try:
        yield trace
    finally:
        _ACTIVE.reset(token)


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


_LEAVES = frozenset({int, float, str, bytes, bool, type(None)})


def _children(value: Any, path: Any, inside: str) -> Iterator[tuple[Any, Any, str]] | None:
    """The parts of a container, each with its path and what holds it; None for a leaf."""
    cls = type(value)
    if cls in _LEAVES:
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
        if type(key) not in _LEAVES:
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


def links_for(arguments: dict[str, Any], var_keyword: str | None = None) -> tuple[Link, ...]:
    """Return the data edges made by bound arguments (a ``**kwargs`` dict counts per key)."""
    links = []
    for name, value in arguments.items():
        kind = type(value)
        if kind is Output:  # the common edge, without the walk's set-up
            links.append(Link(value.node, value.name, name))
            continue
        if kind in _LEAVES:
            continue
        if name == var_keyword and isinstance(value, dict):
            found = [o for key, v in value.items() for o in find_outputs(v, key)]
        else:
            found = list(find_outputs(value, name))
        for out, path in found:
            links.append(Link(out.node, out.name, _argument_name(path)))
    return tuple(links)


def step_links(name: str, arguments: dict[str, Any], location: tuple[str, int],
               var_keyword: str | None = None) -> tuple[Link, ...]:
    """Check a step call's bound arguments and return its data edges, in one pass.

    A value that contains itself or hides an output is refused here, where the step
    and the user's line are known (``find_outputs`` names them); the same walk yields
    the edges ``links_for`` would find, so an argument is looked at once, not twice.
    """
    # A tuple grown by concatenation: most calls have one edge or none, and () + (link,)
    # is (link,) itself, with no list to make and convert.
    links: tuple[Link, ...] = ()
    owner = None
    for argument, value in arguments.items():
        kind = type(value)
        if kind is Output:  # the common edge, without the walk's set-up
            links += (Link(value.node, value.name, argument),)
            continue
        if kind in _LEAVES:
            continue
        if owner is None:
            from ductwork.dsl.core import format_location

            owner = f"Step '{name}' at {format_location(location)}"
        found = list(find_outputs(value, argument, owner))
        if argument == var_keyword and isinstance(value, dict):
            # A **kwargs dict makes an edge per key, named by the key (as in links_for).
            found = [o for key, v in value.items() for o in find_outputs(v, key)]
        links += tuple([Link(out.node, out.name, _argument_name(path)) for out, path in found])
    return links


def _argument_name(path: str) -> str:
    # An edge names the argument; where inside the argument is detail for the path.
    return path.split("[", 1)[0] if "[" in path else path


def substitute(value: Any, lookup: Callable[[Output], Any]) -> Any:
    """Replace every placeholder in ``value`` by ``lookup(placeholder)``.

    Containers are copied only where they hold a placeholder, so a large
    constant list passes through untouched.
    """
    if isinstance(value, Output):
        return lookup(value)
    if type(value) is dict:
        # A call's arguments, once per step and run: placeholders and scalars are handled
        # here, not by a call each, and the dict is copied at the first value that changes.
        new = None
        for key, item in value.items():
            kind = type(item)
            if kind in _LEAVES:
                continue
            changed = lookup(item) if kind is Output else substitute(item, lookup)
            if changed is not item:
                if new is None:
                    new = dict(value)
                new[key] = changed
        return value if new is None else new
    if isinstance(value, list | tuple):
        items = [substitute(v, lookup) for v in value]
        if all(a is b for a, b in zip(items, value, strict=True)) and type(value) is not Outputs:
            return value
        if isinstance(value, list):
            return items
        if type(value) is Outputs or type(value) is tuple:
            return tuple(items)
        if hasattr(value, "_make"):  # a namedtuple
            return type(value)._make(items)
        return type(value)(items)
    if isinstance(value, dict):
        new = {k: substitute(v, lookup) for k, v in value.items()}
        if all(new[k] is value[k] for k in value):
            return value
        return type(value)(new) if type(value) is not dict else new
    return value
