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

from ductwork.dsl.core import Output, Outputs
from ductwork.dsl.ids import CallIds
from ductwork.dsl.slotted import Frozen, fill, setter, thawed
from ductwork.dsl.walk import SCALARS, find_outputs

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "Invocation", "Link", "Plan", "Trace", "current_trace", "find_outputs", "links_for",
    "new_invocation", "raise_foreign", "step_links", "substitute", "tracing",
]

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


_ThawedLink = thawed(Link)
_ThawedInvocation = thawed(Invocation)


def new_invocation(id: str, step: Any, arguments: dict[str, Any], links: tuple[Link, ...],
                   location: tuple[str, int]) -> Invocation:
    """``Invocation(...)`` of a plain step call, made as a trace makes one per call."""
    invocation = _ThawedInvocation()
    invocation.id = id
    invocation.step = step
    invocation.arguments = arguments
    invocation.links = links
    invocation.location = location
    invocation.map_over = None
    invocation.__class__ = Invocation
    return invocation


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


def links_for(arguments: dict[str, Any], var_keyword: str | None = None) -> tuple[Link, ...]:
    """Return the data edges made by bound arguments (a ``**kwargs`` dict counts per key)."""
    links = []
    for name, value in arguments.items():
        kind = type(value)
        if kind is Output:  # the common edge, without the walk's set-up
            links.append(Link(value.node, value.name, name))
            continue
        if kind in SCALARS:
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
        if kind is Output:  # the common edge, without the walk's set-up (thawed)
            link = _ThawedLink()
            link.source = value.node
            link.output = value.name
            link.argument = argument
            link.__class__ = Link
            links += (link,)
            continue
        if kind in SCALARS:
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
            if kind in SCALARS:
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
