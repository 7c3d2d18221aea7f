"""The backend Protocols, and the registry of backends by name.

A backend decides where a job runs. The engine talks to it only through the
members declared here -- nothing is probed with ``getattr`` -- so a third party
can write one from these Protocols alone (the conformance suite runs one that
is: ``tests/backends/threads_backend.py``).

- ``Backend``: takes single jobs from the engine's loop (``loop.py``) --
  ``submit(job)`` returns a future of its ``JobResult`` (a job run inside
  ``submit`` may return a finished ``futures.Done``). Abilities some backends
  lack are declared, with their neutral value: ``reads_store = False`` (jobs
  carry values, not refs), ``environment(step) -> None`` (nothing beyond the
  step's declared ``Environment`` goes into its key), ``cancel()`` doing nothing.
- ``GraphBackend``: a backend that schedules the graph itself (Dask) says so with
  ``schedules_graph = True`` and gets the whole plan (``driver.py``): ``call`` and
  ``call_many`` submit tasks whose arguments may hold other tasks' handles (its
  dependencies), ``share`` sends one object for many tasks, ``completions()``
  yields ``(handle, result)`` as tasks finish, and ``restart(where)`` stops a
  worker stuck in a step that overran its timeout. A task that returned nothing
  (its workers kept dying, it was cancelled) is reported as a ``TaskLost``.

Built-in backends are named here by dotted path with an install hint, and
imported only when asked for (the fsspec registry idea). Third parties add
one through the entry-point group ``ductwork.backends``, which is read only
when a name is not built in.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator

from ductwork.dsl.binding import (
    KEYWORD_ONLY,
    POSITIONAL_OR_KEYWORD,
    VAR_KEYWORD,
    code_parameters,
)
from ductwork.dsl.core import DuctworkError
from ductwork.dsl.protocol import protocol_members
from ductwork.runtime.engine.job import Job, JobResult

TYPE_CHECKING = False
if TYPE_CHECKING:
    from concurrent.futures import Future
    from typing import Any, ClassVar, Protocol, runtime_checkable

    from ductwork.dsl.binding import Params
    from ductwork.runtime.engine.futures import Done
else:  # typing costs a run ~12M instructions: its Protocol's runtime part, without it
    from ductwork.dsl.protocol import Protocol, runtime_checkable

ENTRY_POINT_GROUP = "ductwork.backends"

BUILTIN: dict[str, tuple[str, str | None]] = {
    # name: (module:attribute, install hint when its imports fail)
    "inline": ("ductwork.backends.inline:InlineBackend", None),
    "process": ("ductwork.backends.process:ProcessBackend", None),
    "docker": ("ductwork.backends.docker:DockerBackend", "pip install 'ductwork[docker]'"),
    "dask": ("ductwork.backends.dask:DaskBackend", "pip install 'ductwork[dask]'"),
    "spark": ("ductwork.backends.spark:SparkBackend", "pip install 'ductwork[spark]'"),
}


class BackendError(DuctworkError):
    """A backend cannot be found, loaded or started."""


@runtime_checkable
class Backend(Protocol):
    """Where jobs run: the engine's loop submits them one at a time."""

    name: ClassVar[str]
    #: How many jobs the loop may have in flight at once.
    capacity: int
    #: Its workers read inputs from the artifact store themselves, so jobs carry refs.
    reads_store: bool
    #: False: jobs come through ``submit``. True: see ``GraphBackend``.
    schedules_graph: ClassVar[bool]

    def __init__(self, store: Any, **options: Any) -> None:
        """Made once per run with the run's store and its settings (``max_workers``,
        ``address``, a compute target's table, ...). A compute target's settings are checked
        against these keyword parameters first (``check_settings``); run options a backend
        does not name are not passed to it. One taking ``**options`` checks its own."""
        ...

    def submit(self, job: Job) -> Future[JobResult] | Done[JobResult]:
        """Start ``job``; the future resolves to its result (user errors included). A job
        run inside ``submit`` returns a ``futures.Done``, which imports nothing."""
        ...

    def environment(self, step: Any) -> str | None:
        """What the step's cache key names as its environment beyond its declared
        ``Environment`` (for containers, the image digest), or None."""
        ...

    def cancel(self) -> None:
        """Stop work still running (Ctrl-C); the run is recorded afterwards."""
        ...

    def close(self) -> None:
        """Release workers, clients and temporary files (the run is over)."""
        ...


class Completions(Protocol):
    """Finished tasks as they come, as ``(handle, result)``; ``add`` watches one more."""

    def add(self, handle: Any) -> None:
        """Watch one more task."""
        ...

    def __iter__(self) -> Iterator[tuple[Any, Any]]:
        """Yield ``(handle, result)``, blocking until one finishes, until none is left."""
        ...


@runtime_checkable
class GraphBackend(Backend, Protocol):
    """A backend that schedules the graph itself: the engine hands it every node as a
    task depending on its upstream tasks (``driver.py``)."""

    def call(self, fn: Callable[..., Any], *args: Any, key: str) -> Any:
        """Submit ``fn(*args)`` as a task named ``key``; handles in ``args`` are its
        dependencies (replaced by their results when it runs). Returns its handle."""
        ...

    def call_many(self, fn: Callable[..., Any], calls: list[tuple[Any, ...]],
                  keys: list[str]) -> list[Any]:
        """Submit ``fn(*args)`` for each of ``calls`` at once; their handles, in order."""
        ...

    def share(self, obj: Any) -> Any:
        """Send ``obj`` once for many tasks to take as an argument; a handle to it."""
        ...

    def completions(self) -> Completions:
        """An iterator of finished tasks; results are a task's return or a ``TaskLost``."""
        ...

    def restart(self, where: str) -> None:
        """Stop a step that overran its timeout on worker ``where`` (or say why not)."""
        ...


class TaskLost(Exception):
    """A task that returned no result: its workers kept dying, it was cancelled, or the
    cluster went away. ``describe(step_id)`` is the step's error."""

    def __init__(self, describe: Callable[[str], str]) -> None:
        super().__init__()
        self._describe = describe

    def describe(self, sid: str) -> str:
        """The error text for step ``sid``."""
        return self._describe(sid)


def _load(target: str) -> Any:
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def backend_class(name: str) -> type[Backend]:
    """Return the backend class registered under ``name``."""
    if name in BUILTIN:
        target, hint = BUILTIN[name]
        try:
            return _load(target)
        except ImportError as exc:
            raise BackendError(
                f"Backend '{name}' needs packages that are not installed ({exc}). {hint or ''}"
            ) from exc
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == name:
            return ep.load()
    known = sorted({*BUILTIN, *(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))})
    raise BackendError(
        f"Unknown backend '{name}'. Known backends: {', '.join(known)}. Third-party backends "
        f"register under the entry-point group '{ENTRY_POINT_GROUP}'."
    )


def get_backend(name: str, **options: Any) -> Backend:
    """Create the backend registered under ``name`` with its options, checking that it
    implements the protocol the engine will use it through."""
    backend = backend_class(name)(**options)
    protocol = GraphBackend if backend.schedules_graph else Backend
    missing = [member for member in _members(protocol) if not hasattr(backend, member)]
    if missing:
        raise BackendError(
            f"Backend '{name}' ({type(backend).__module__}.{type(backend).__qualname__}) does "
            f"not implement {', '.join(missing)} of the {protocol.__name__} protocol "
            "(ductwork.runtime.engine.backend). Add them; the protocol's docstrings say what "
            "each must do."
        )
    return backend


def open_backends(plan: Any, name: str, store: Any, **options: Any) -> dict[str | None, Backend]:
    """A run's backends: its own under None (``name`` with ``options``), and one per compute
    target its steps name (``[tool.ductwork.compute.<target>]``); all closed if one fails."""
    # Run options are the same for every backend: one that has no use for one ignores it.
    options = {k: v for k, v in options.items() if _takes(backend_class(name), k)}
    backends: dict[str | None, Backend] = {None: get_backend(name, store=store, **options)}
    try:
        targets = sorted({inv.step.options.compute for inv in plan.invocations.values()} - {None})
        chosen: dict[str, dict[str, Any]] = {}
        if targets:  # the configuration is read (and its module loaded) only when named
            from ductwork.runtime.config import compute_target

            chosen = {target: compute_target(target) for target in targets}
        for target, settings in chosen.items():  # every table checked before one is made
            check_settings(target, settings)
        for target, settings in chosen.items():
            kind = settings.pop("backend")
            backends[target] = get_backend(kind, store=store, **settings)
    except BaseException:
        for made in backends.values():
            made.close()
        raise
    return backends


def _parameters(cls: type) -> tuple[list[str], bool]:
    """The keyword settings ``cls(store, ...)`` takes, and whether it takes any (``**``)."""
    params = _init_parameters(cls)
    if params is None:
        import inspect  # a class made otherwise: inspect knows them all

        params = tuple((p.name, int(p.kind), p.default)
                       for p in inspect.signature(cls).parameters.values())
    named = [name for name, kind, _ in params[1:] if kind in (POSITIONAL_OR_KEYWORD, KEYWORD_ONLY)]
    return named, any(kind == VAR_KEYWORD for _, kind, _ in params)


def _init_parameters(cls: type) -> Params | None:
    """``inspect.signature(cls)``'s parameters read from a plain ``__init__``'s code, as
    for a class without ``__new__``, ``__signature__`` or a metaclass ``__call__``; else None."""
    if hasattr(cls, "__signature__") or type(cls).__call__ is not type.__call__:
        return None
    for base in cls.__mro__:
        if base is not object and "__new__" in base.__dict__:
            return None
        if "__init__" in base.__dict__:
            params = code_parameters(base.__dict__["__init__"])
            if not params or params[0][1] > POSITIONAL_OR_KEYWORD:
                return None  # object's own, or not a method taking self
            return params[1:]
    return None


def _takes(cls: type, setting: str) -> bool:
    named, anything = _parameters(cls)
    return anything or setting in named


def check_settings(target: str, settings: dict[str, Any]) -> None:
    """Refuse a compute target's setting its backend does not take, naming the ones it does
    (a backend whose ``__init__`` takes ``**options`` checks its own)."""
    from ductwork.runtime.config import ConfigError

    kind = settings["backend"]
    named, anything = _parameters(backend_class(kind))
    unknown = [k for k in settings if k != "backend" and (k == "store" or not (
        anything or k in named))]
    if unknown:
        which, many = ", ".join(f"'{k}'" for k in unknown), len(unknown) > 1
        raise ConfigError(
            f"Compute target '{target}' (backend \"{kind}\"): unknown setting{'s' * many} "
            f"{which}. The {kind} backend takes: {', '.join(named) or 'none'}. Fix or remove "
            f"{'them' if many else 'it'} in [tool.ductwork.compute.{target}]."
        )


def _members(protocol: type) -> list[str]:
    return [name for name in protocol_members(protocol) if not name.startswith("_")]
