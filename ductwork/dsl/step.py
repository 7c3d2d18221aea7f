"""The ``@step`` decorator.

A ``Step`` wraps a plain function and does one of two documented things when
called: with no active trace it calls the function and returns its result (so
unit tests and notebook cells need nothing from ductwork; a dataset argument is
read first, at any depth, as in a run); inside a pipeline trace it records an
invocation and returns ``Output`` placeholders.

``step.named("id")`` is the same step under an id the caller chose, for one
call: ``evaluate.named("evaluate_tree")(rows)``. The id is checked when
``named`` is called; clashes with other calls' ids are found by the trace.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from types import FunctionType

from ductwork.dsl.binding import (
    KEYWORD_ONLY,
    POSITIONAL_OR_KEYWORD,
    VAR_KEYWORD,
    bind_call,
    bind_plain,
    call_arguments,
    parameters,
    plain_table,
)
from ductwork.dsl.core import (
    DefinitionError,
    DuctworkError,
    Output,
    Outputs,
    TraceError,
    format_location,
    new_output,
    user_location,
)
from ductwork.dsl.ids import check_call_id
from ductwork.dsl.lazy import LEAVES, materialize
from ductwork.dsl.options import SINGLE_OUTPUT, StepOptions, make_options
from ductwork.dsl.trace import (
    _ACTIVE,
    Invocation,
    Link,
    current_trace,
    find_outputs,
    links_for,
    new_invocation,
    raise_foreign,
    step_links,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    import inspect
    from typing import Any, overload

    from ductwork.dsl.binding import Params, PlainTable

_MAPPED = object()  # stands for the mapped element while a map call is checked


class Step:
    """A function marked with ``@step``; ``.fn`` is the plain function."""

    # What every traced call of this step needs and none changes (_Made). A class
    # default, so a step unpickled from before it existed makes it at its first call.
    _made: _Made | None = None
    # The function's parameters (binding.parameters), likewise.
    _params: Params | None = None

    def __init__(self, fn: Callable[..., Any], options: StepOptions) -> None:
        self.fn = fn
        self.options = options
        self._params = params = parameters(fn)
        self._var_keyword = next((name for name, kind, _ in params if kind == VAR_KEYWORD), None)
        self._made = _made(options, params)
        functools.update_wrapper(self, fn)

    @functools.cached_property
    def signature(self) -> inspect.Signature:
        """The function's ``inspect.Signature``, made when first asked for."""
        import inspect  # not at decoration: inspect costs a process ~35M instructions

        return inspect.signature(self.fn)

    def __setstate__(self, state: dict[str, Any]) -> None:
        if "_params" not in state:
            # Pickled by a version that read parameters with inspect: its binding table
            # marks a missing default with inspect's ``empty``. Made again at the first call.
            state.pop("_made", None)
        self.__dict__.update(state)

    def call_arguments(self, arguments: dict[str, Any]) -> tuple[tuple[Any, ...],
                                                                 dict[str, Any]]:
        """Bound ``arguments`` as ``(args, kwargs)`` to call the function with."""
        return call_arguments(self._parameters(), arguments)

    def _parameters(self) -> Params:
        params = self._params
        if params is None:  # a step pickled before steps kept them
            params = self._params = parameters(self.fn)
        return params

    @property
    def name(self) -> str:
        """The step's name: the function name unless ``@step(name=...)`` says otherwise."""
        return self.options.name

    def __repr__(self) -> str:
        return f"<step {self.name}{self.signature}>"

    def __get__(self, obj: Any, objtype: Any = None) -> Any:
        # Steps are plain functions of their arguments; as class attributes they bind
        # like functions would, so a method can be a step.
        if obj is None:
            return self
        return functools.partial(self, obj)

    def named(self, call_id: str) -> NamedCall:
        """This step under the id ``call_id`` for one call: ``evaluate.named("tree")(rows)``.

        In a pipeline the call is recorded as ``call_id`` (``prep/call_id`` inside a
        nested pipeline ``prep``) instead of ``evaluate-2``, so ``run.steps``,
        ``regenerate=``, ``plan``, ``why`` and ``logs`` name it whatever the call
        order. Plain calls are numbered without counting named ones; an id another
        call of the pipeline has is a ``TraceError`` naming both. The id is not part
        of the cache key: renaming a call reuses what it computed. Outside a pipeline
        the call is a plain function call, as for the step itself.
        """
        return NamedCall(self, check_call_id(self.name, call_id))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._call(None, args, kwargs)

    def _call(self, call_id: str | None, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        # Every run traces every step call: what is the same for all calls of the step is
        # in _made, and the common case goes through here without helper calls.
        trace = _ACTIVE.get()
        if trace is None:
            if not set(map(type, (*args, *kwargs.values()))) <= LEAVES:
                args, kwargs = _materialized(args, kwargs)
            return self.fn(*args, **kwargs)
        location = user_location(3)  # past this frame and __call__'s: both ductwork's
        made = self._made
        if made is None or made[0] is not self.options:
            made = self._ready()
        _, name, plain, ignored, outputs = made
        bound = None if plain is None else bind_plain(plain, args, kwargs)
        if bound is None:
            bound = dict(bind_call("Step", name, self.signature, args, kwargs, location).arguments)
        links = step_links(name, bound, location, self._var_keyword)
        if ignored:
            self._check_ignored(bound, location)
        ids = trace.ids
        node = (ids.positional(name, location, "step") if call_id is None
                else ids.named(call_id, name, location))
        invocations = trace.invocations  # Trace.record, inline
        for link in links:
            if link.source not in invocations:
                raise_foreign(link.source, node)
        invocations[node] = new_invocation(node, self, bound, links, location)
        if outputs is None:
            return new_output(node, SINGLE_OUTPUT)
        return Outputs(tuple([new_output(node, output) for output in outputs]))

    def map(self, items: Iterable[Any] | Output, /, **fixed: Any) -> Any:
        """Call the step once per element of ``items`` with the ``fixed`` keyword arguments.

        Outside a pipeline this returns the list of results at once. Inside one
        it returns an ``Output`` holding that list; ``items`` may be an
        ``Output`` whose length is known only when the pipeline runs, and each
        element is run (and cached) on its own.
        """
        return self._map(None, items, fixed)

    def _new_id(self, trace: Any, call_id: str | None, location: tuple[str, int]) -> str:
        # Straight to the trace's CallIds (what Trace.new_id / named_id call): once per call.
        if call_id is None:
            return trace.ids.positional(self.options.name, location, "step")
        return trace.ids.named(call_id, self.options.name, location)

    def _map(self, call_id: str | None, items: Iterable[Any] | Output,
             fixed: dict[str, Any]) -> Any:
        mapped = self._mapped_parameter(fixed)
        trace = current_trace()
        if trace is None:
            items, fixed = _materialized(tuple(items), fixed)
            return [self.fn(**{mapped: item}, **fixed) for item in items]
        location = user_location()
        if isinstance(items, Outputs):
            items = list(items)
        elif not isinstance(items, Output):
            if isinstance(items, str | bytes | dict) or not isinstance(items, Iterable):
                raise TraceError(
                    f"{self.name}.map at {format_location(location)} needs a list of items "
                    f"(or the Output of a step returning one), got {type(items).__name__}."
                )
            items = list(items)
        # The mapped argument's items are set after the check, so its edges (and any
        # misplaced placeholder among the items) are found by links_for.
        arguments = self._bind((), {mapped: _MAPPED, **fixed}, location)[0]
        arguments[mapped] = items
        node = self._new_id(trace, call_id, location)
        links = links_for(arguments, self._var_keyword)
        trace.record(Invocation(node, self, arguments, links, location, map_over=mapped))
        return Output(node, "output")

    def _mapped_parameter(self, fixed: dict[str, Any]) -> str:
        for name, kind, _ in self._parameters():
            if kind in (POSITIONAL_OR_KEYWORD, KEYWORD_ONLY) and name not in fixed:
                return name
        raise TraceError(
            f"{self.name}.map: no argument is left to map over -- the step takes "
            f"{self.signature} and every named argument was given a fixed value. Pass the "
            "items first: step.map(items, other=value)."
        )

    def _bind(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], location: tuple[str, int]
    ) -> tuple[dict[str, Any], tuple[Link, ...]]:
        # A plain signature binds from its table; any other call (or a misfit, so the
        # error is inspect's own) goes through inspect.Signature.bind.
        plain = self._ready()[2]
        bound = None if plain is None else bind_plain(plain, args, kwargs)
        if bound is None:
            bound = dict(
                bind_call("Step", self.name, self.signature, args, kwargs, location).arguments
            )
        links = step_links(self.options.name, bound, location, self._var_keyword)
        self._check_ignored(bound, location)
        return bound, links

    def _ready(self) -> _Made:
        """This step's _Made, made again if its options were replaced since."""
        made = self._made
        if made is None or made[0] is not self.options:
            made = self._made = _made(self.options, self._parameters())
        return made

    def _check_ignored(self, bound: dict[str, Any], location: tuple[str, int]) -> None:
        for name in self.options.ignore_inputs:
            for out, _ in find_outputs(bound.get(name), name):
                raise TraceError(
                    f"Step '{self.name}' at {format_location(location)}: argument '{name}' is "
                    f"in ignore_inputs but receives the output of step '{out.node}'. An ignored "
                    "argument cannot carry data between steps; remove it from ignore_inputs."
                )


if TYPE_CHECKING:
    # (the options it was made from, the step's name, its binding table or None, whether
    # it ignores inputs, its output names or None for one output)
    _Made = tuple[StepOptions, str, PlainTable | None, bool, tuple[str, ...] | None]


def _made(options: StepOptions, params: Params) -> _Made:
    """What every traced call of a step reads, made once per step."""
    return (options, options.name, plain_table(params), bool(options.ignore_inputs),
            options.outputs if options.multiple else None)


class NamedCall:
    """A step under a call id of the caller's choosing (``Step.named``): call it or ``.map``."""

    __slots__ = ("id", "step")

    def __init__(self, step: Step, call_id: str) -> None:
        self.step = step
        self.id = call_id

    def __repr__(self) -> str:
        return f"<step {self.step.name} named {self.id!r}>"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.step._call(self.id, args, kwargs)

    def map(self, items: Iterable[Any] | Output, /, **fixed: Any) -> Any:
        """``Step.map`` recorded under this call's id."""
        return self.step._map(self.id, items, fixed)


if TYPE_CHECKING:  # typing costs a run ~12M instructions: overloads are for checkers
    @overload
    def step(fn: Callable[..., Any], /) -> Step: ...
    @overload
    def step(**options: Any) -> Callable[[Callable[..., Any]], Step]: ...


def step(fn: Callable[..., Any] | None = None, /, **options: Any) -> Any:
    """Mark a function as a pipeline step: ``@step`` or ``@step(cache=False, ...)``.

    The step keeps the function's name, docstring, signature and ``__wrapped__``;
    ``.fn`` is the plain function. Called outside a pipeline it *is* the plain
    function: ``load("x.csv")`` in a test or a notebook runs it at once and writes
    nothing. Called in a ``@pipeline`` body it records a call and returns an
    ``Output`` placeholder (or several); passing a placeholder to another step,
    also inside a list, tuple or dict, is what makes an edge of the graph.

    Calls and their ids: the calls of a step in one pipeline are numbered in call
    order -- ``fit``, ``fit-2``, ``fit-3`` -- and that id is what ``run.steps[...]``,
    ``regenerate=[...]``, ``plan``, ``ductwork why`` and ``ductwork logs`` take.
    ``fit.named("fit_small")(...)`` gives one call its own id instead, so it does
    not depend on call order (see ``Step.named``). ``score.map(items, model=m)``
    runs the step once per element, each cached on its own (see ``Step.map``).

    Options (keywords; each is checked when the decorator runs, and a bad value
    is a ``DefinitionError`` naming the step and the option). Those that change
    what a step returns are part of its cache key; ``retries``, ``timeout`` and
    ``compute`` change only how it runs, so they are not (docs/caching.md):

    name : str, default the function's name
        The step's name, a Python identifier: the base of its call ids and what
        history, ``why`` and the studio show.
    outputs : tuple of str, default one output (or the return annotation's)
        Names of several outputs, like ``("train", "test")``: the step returns a
        tuple of that length, and a call can be unpacked (``a, b = split(...)``)
        or picked from (``res.train``, ``res[0]``). A ``tuple[A, B]`` or
        ``NamedTuple`` return annotation declares them too. In the cache key.
    cache : bool, default True
        ``False`` runs the step every time, never reusing a stored result (its
        outputs are still stored, and the steps after it may still hit).
    cache_version : str or int, default None
        Any label; changing it reruns the step on purpose, e.g. after a change the
        fingerprint cannot see. In the cache key.
    retries : int, default 0
        How many more times a failing step is run before it fails the run.
    timeout : float, default None (no limit)
        Seconds an attempt may take; past that it is stopped and the attempt
        fails.
    compute : str, default None (the run's backend)
        The name of a compute target, ``[tool.ductwork.compute.<name>]`` in
        pyproject.toml or ``[compute.<name>]`` in ductwork.toml: a backend and
        its settings (image, cpus, memory, dask address, ...) for this step.
    env : ductwork.Environment, default None (the current interpreter)
        What the step needs installed (base image, pip and apt packages, Python
        version, variables); the docker backend builds an image of it. In the
        cache key (on containers, by the image's digest).
    ignore_inputs : list of str, default ()
        Arguments kept out of the cache key (a logger, a progress callback). An
        ignored argument cannot receive another step's output.
    hash_paths : list of str or paths, default ()
        Files or directories the step reads by path; their content goes into the
        cache key. Relative paths are taken from the working directory.
    env_vars : list of str, default ()
        Environment variables whose values (or absence) go into the cache key,
        as digests. Do not name a secret here.
    """
    if fn is None:
        return lambda f: step(f, **options)
    if isinstance(fn, Step):
        raise DefinitionError(f"'{fn.name}' is already a step; apply @step once.")
    if not callable(fn):
        raise TypeError(
            f"@step decorates a function, got {fn!r}. Write @step or @step(option=...), "
            "with options as keywords."
        )
    if _async_or_generator(fn):
        raise DefinitionError(
            f"@step '{fn.__name__}': steps must be plain functions returning their result; "
            "async functions and generators are not supported. Return a list instead of "
            "yielding."
        )
    return Step(fn, make_options(fn, options))


def _async_or_generator(fn: Any) -> bool:
    """``inspect.iscoroutinefunction(fn) or inspect.isgeneratorfunction(fn)``."""
    if type(fn) is FunctionType and not hasattr(fn, "_is_coroutine_marker"):
        return bool(fn.__code__.co_flags & (_CO_COROUTINE | _CO_GENERATOR))
    import inspect  # a partial, a method, a callable object, a marked coroutine function

    return inspect.iscoroutinefunction(fn) or inspect.isgeneratorfunction(fn)


_CO_GENERATOR, _CO_COROUTINE = 0x20, 0x80


def _materialized(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[tuple[Any, ...],
                                                                            dict[str, Any]]:
    """Arguments with lazy inputs (datasets) read, as a running step would receive them.

    So a step called as a plain function -- in a unit test, a notebook -- gets the
    same paths or DataFrame it gets in a run, not the dataset object, also inside
    lists, tuples and dicts. The DSL cannot make a step context, so each lazy value
    is read through its public ``materialize()`` method.
    """
    return materialize(args, _read), materialize(kwargs, _read)


def _read(value: Any) -> Any:
    read = getattr(value, "materialize", None)
    if not callable(read):
        raise DuctworkError(
            f"{type(value).__name__} has __ductwork_materialize__ but no materialize() method, "
            "so a step called outside a pipeline cannot read it. Give the class a "
            "materialize() that returns what the step should receive, or run the step in a "
            "pipeline."
        )
    return read()
