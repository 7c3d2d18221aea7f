"""The backend protocol and the registry of backends by name.

A backend only decides where a job runs: ``submit(job)`` returns a future of
its ``JobResult``; ``close()`` releases what it holds. The scheduling loop is
the same for all of them (``scheduler.py``).

Built-in backends are named here by dotted path with an install hint, and
imported only when asked for (the fsspec registry idea). Third parties add
one through the entry-point group ``ductwork.backends``, which is read only
when a name is not built in.
"""

from __future__ import annotations

import importlib
from concurrent.futures import Future
from typing import Any, Protocol, runtime_checkable

from ductwork.dsl.core import DuctworkError
from ductwork.runtime.engine.job import Job, JobResult

ENTRY_POINT_GROUP = "ductwork.backends"

BUILTIN: dict[str, tuple[str, str | None]] = {
    # name: (module:attribute, install hint when its imports fail)
    "inline": ("ductwork.backends.inline:InlineBackend", None),
    "process": ("ductwork.backends.process:ProcessBackend", None),
    "docker": ("ductwork.backends.docker:DockerBackend", "pip install 'ductwork[docker]'"),
    "dask": ("ductwork.backends.dask:DaskBackend", "pip install 'ductwork[dask]'"),
}


class BackendError(DuctworkError):
    """A backend cannot be found, loaded or started."""


@runtime_checkable
class Backend(Protocol):
    """Where jobs run."""

    name: str
    #: How many jobs the scheduler may have in flight at once.
    capacity: int

    def submit(self, job: Job) -> Future[JobResult]:
        """Start ``job``; the future resolves to its result (user errors included)."""
        ...

    def close(self) -> None:
        """Release workers, clients and temporary files."""
        ...


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
    """Create the backend registered under ``name`` with its options."""
    return backend_class(name)(**options)
