"""The ``@pipeline`` decorator: parameters, tracing, nesting, and the way to run.

A pipeline is a function whose parameters are the pipeline's parameters.
Tracing calls it with their values under an active trace; steps called in its
body record invocations. A pipeline called inside another one is inlined: its
steps are recorded in the caller's trace under ids prefixed with its own
(``prep/clean``). Called with no trace active it is a plain function call, in
which its steps are plain calls too.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from ductwork.dsl.binding import (
    EMPTY,
    POSITIONAL_ONLY,
    VAR_KEYWORD,
    VAR_POSITIONAL,
    bind_call,
    bind_plain,
    code_parameters,
    parameters,
    plain_table,
)
from ductwork.dsl.core import (
    DefinitionError,
    ParameterError,
    TraceError,
    user_location,
)
from ductwork.dsl.trace import Plan, Trace, current_trace, find_outputs, tracing

TYPE_CHECKING = False
if TYPE_CHECKING:
    import inspect
    from typing import Any, overload

    import networkx

RUN_OPTIONS = (
    "backend", "store", "max_workers", "regenerate", "progress", "address", "shared_filesystem",
)


class Pipeline:
    """A function marked with ``@pipeline``; ``.fn`` is the plain function."""

    def __init__(self, fn: Callable[..., Any], name: str | None = None) -> None:
        self.fn = fn
        self.name = name or fn.__name__
        code = code_parameters(fn)
        params = parameters(fn) if code is None else code
        for param, kind, _ in params:
            if kind in (VAR_POSITIONAL, VAR_KEYWORD):
                raise DefinitionError(
                    f"@pipeline '{self.name}': parameter '{param}' is *args or **kwargs; "
                    "pipeline parameters must be named so runs can set them by name."
                )
            if kind == POSITIONAL_ONLY:
                raise DefinitionError(
                    f"@pipeline '{self.name}': parameter '{param}' is positional-only; "
                    "pipeline parameters are given by name. Remove the '/'."
                )
            if param in RUN_OPTIONS:
                raise DefinitionError(
                    f"@pipeline '{self.name}': parameter '{param}' has the name of a run "
                    f"option ({', '.join(RUN_OPTIONS)}); rename it."
                )
        # Parameter names and defaults (EMPTY if none), and the binding table of a nested
        # call: what a run reads, made without inspect.
        self._defaults = {param: default for param, _, default in params}
        # (Only for a plain function: a wrapper may take its arguments otherwise.)
        self._table = None if code is None else plain_table(code)
        functools.update_wrapper(self, fn)

    @functools.cached_property
    def signature(self) -> inspect.Signature:
        """The function's ``inspect.Signature``, made when first asked for."""
        import inspect  # not at decoration: inspect costs a process ~35M instructions

        return inspect.signature(self.fn)

    def _known(self) -> dict[str, Any]:
        known = self.__dict__.get("_defaults")
        if known is None:  # a pipeline pickled before pipelines kept them
            known = self._defaults = {p: d for p, _, d in parameters(self.fn)}
        return known

    def __repr__(self) -> str:
        return f"<pipeline {self.name}{self.signature}>"

    def _repr_html_(self) -> str:
        from ductwork.dsl.svg import pipeline_html

        return pipeline_html(self)

    @property
    def parameters(self) -> dict[str, Any]:
        """Parameter names mapped to their defaults (``inspect.Parameter.empty`` if none)."""
        import inspect  # for its ``empty``, which callers compare with

        return {name: inspect.Parameter.empty if default is EMPTY else default
                for name, default in self._known().items()}

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        trace = current_trace()
        if trace is None:
            return self.fn(*args, **kwargs)
        location = user_location()
        with trace.entering(self, self.name, location):
            table = self.__dict__.get("_table")
            plain = None if table is None else bind_plain(table, args, kwargs)
            if plain is not None:  # a plain function: every parameter can be passed by name
                with trace.scope(self.name, location):
                    return self.fn(**plain)
            bound = bind_call("Pipeline", self.name, self.signature, args, kwargs, location)
            with trace.scope(self.name, location):
                return self.fn(*bound.args, **bound.kwargs)

    def bind(self, params: dict[str, Any]) -> dict[str, Any]:
        """Check ``params`` against the signature and fill in defaults."""
        known = self._known()
        for name in params:
            if name not in known:
                import difflib  # only for this error's suggestion

                close = difflib.get_close_matches(name, [*known, *RUN_OPTIONS], n=1)
                hint = f" Did you mean '{close[0]}'?" if close else ""
                listed = ", ".join(known) or "none"
                raise ParameterError(
                    f"Pipeline '{self.name}' has no parameter '{name}'.{hint} "
                    f"Its parameters: {listed}; run options: {', '.join(RUN_OPTIONS)}."
                )
        values = {}
        for name, default in known.items():
            if name in params:
                values[name] = params[name]
            elif default is EMPTY:
                raise ParameterError(
                    f"Pipeline '{self.name}' needs a value for parameter '{name}', which has "
                    f"no default: pass {self.name}.run({name}=...)."
                )
            else:
                values[name] = default
        return values

    def trace(self, **params: Any) -> Plan:
        """Trace the body with these parameters into a ``Plan``; no step code runs."""
        values = self.bind(params)
        trace = Trace(self.name)
        with tracing(trace), trace.entering(self, self.name, user_location()):
            result = self.fn(**values)
        for out, path in find_outputs(result, "result", f"Pipeline '{self.name}'",
                                      "its return value"):
            if trace.invocations.get(out.node) is None:
                raise TraceError(
                    f"Pipeline '{self.name}' returns ({path}) the output of step "
                    f"'{out.node}', which was not called in this pipeline."
                )
        return Plan(self.name, values, trace.invocations, result)

    def graph(self, **params: Any) -> networkx.DiGraph:
        """Return the step graph for these parameters as a ``networkx.DiGraph``."""
        from ductwork.dsl.graph import build_graph

        return build_graph(self.trace(**params))

    def to_mermaid(self, **params: Any) -> str:
        """Render the step graph as a Mermaid flowchart."""
        from ductwork.dsl.graph import to_mermaid

        return to_mermaid(self.trace(**params))

    def to_dot(self, **params: Any) -> str:
        """Render the step graph in Graphviz dot."""
        from ductwork.dsl.graph import to_dot

        return to_dot(self.trace(**params))

    def run(self, **kwargs: Any) -> Any:
        """Run the pipeline: parameters and run options as keywords; returns a ``Run``.

        A failed step raises ``ductwork.PipelineFailed`` (its ``.run`` is the Run)
        after the steps that do not depend on it have finished. Run options:

        backend : str, default "inline"
            Where steps run: ``"inline"`` (this process), ``"process"`` (a local
            pool), ``"docker"`` (a container per step), ``"dask"`` (a cluster), or
            a backend registered under the ``ductwork.backends`` entry points.
            A step's ``compute=`` overrides it for that step.
        store : str or path, default ./.ductwork (or $DUCTWORK_STORE)
            The artifact store: a local path, ``"memory://"``, ``"az://..."`` or
            any fsspec URL. Run history lives beside a local store.
        max_workers : int, default None (the backend's own)
            How many steps may run at once.
        regenerate : bool or list of str, default False
            ``True`` runs every step whatever the cache holds; a list of call
            ids (``["fit", "fit-2", "evaluate_tree"]``) reruns those steps and
            every step after them.
        progress : bool, default None (shown on a terminal or in Jupyter)
            Whether progress is shown while the run goes.
        address : str, default None (a local cluster)
            With ``backend="dask"``: the scheduler, like ``"tcp://host:8786"``.
        shared_filesystem : bool, default False
            With ``backend="dask"``: a local ``store`` path is the same on every
            worker, so the cluster may use it.
        """
        # The one place the DSL reaches up into the runtime, and only when called.
        from ductwork.runtime.runner import run_pipeline

        options = {k: kwargs.pop(k) for k in RUN_OPTIONS if k in kwargs}
        return run_pipeline(self, kwargs, **options)

    def plan(self, **kwargs: Any) -> dict[str, Any]:
        """Without running step code: ``{step id: ("cached" | "run" | "pending", why)}``
        for these parameters and run options (see ``runtime/engine/plan.py``).

        It takes the options of ``Pipeline.run``; ``progress`` is accepted and
        ignored, as nothing runs.
        """
        from ductwork.runtime.runner import plan_pipeline

        options = {k: kwargs.pop(k) for k in RUN_OPTIONS if k in kwargs}
        return plan_pipeline(self, kwargs, **options)

    def publish(self, name: str | None = None, *, description: str = "", store: Any = None
                ) -> Any:
        """Snapshot this pipeline's code into the store as a new version; returns a
        ``PublishedPipeline`` (identical code returns its existing version)."""
        # Reached lazily, like the runner: publishing is runtime work.
        from ductwork.runtime.publish import publish

        return publish(self, name, description=description, store=store)


if TYPE_CHECKING:  # typing costs a run ~12M instructions: overloads are for checkers
    @overload
    def pipeline(fn: Callable[..., Any], /) -> Pipeline: ...
    @overload
    def pipeline(*, name: str | None = None) -> Callable[[Callable[..., Any]], Pipeline]: ...


def pipeline(fn: Callable[..., Any] | None = None, /, *, name: str | None = None) -> Any:
    """Mark a function as a pipeline: ``@pipeline`` or ``@pipeline(name=...)``.

    The function's parameters are the pipeline's parameters (named, with
    defaults where wanted; run options' names are reserved); its body calls
    steps, and what it returns -- an output, a tuple or a dict of them -- is what
    ``run.outputs`` gives back, filled with values. The body is traced, not run:
    step calls are recorded and return placeholders. A pipeline called in another
    one is inlined, its call ids prefixed with its own (``prep/clean``). Called
    outside a pipeline it is the plain function, its steps plain calls.

    What a pipeline offers: ``.run(**params, backend=..., ...)`` (the run options
    are listed in ``help(Pipeline.run)``), ``.plan(...)`` (which steps would run,
    and why, running nothing), ``.graph()`` / ``.to_mermaid()`` / ``.to_dot()``,
    ``.trace()`` and ``.publish(name)``.

    Options:

    name : str, default the function's name
        The pipeline's name, a Python identifier: what its runs are recorded
        under (``ductwork runs``, ``why`` compares runs of the same name) and the
        prefix of its steps' ids when it is called inside another pipeline.
    """
    if fn is None:
        return lambda f: pipeline(f, name=name)
    if not callable(fn) or isinstance(fn, Pipeline):
        raise DefinitionError(f"@pipeline decorates a plain function, got {fn!r}.")
    if name is not None and (not isinstance(name, str) or not name.isidentifier()):
        raise DefinitionError(f"@pipeline name= must be a Python identifier, got {name!r}.")
    return Pipeline(fn, name)
