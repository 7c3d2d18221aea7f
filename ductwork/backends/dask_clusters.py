"""Dask clusters a compute target makes itself, and keeps until the process exits.

::

    [tool.ductwork.compute.autoscale]
    backend = "dask"
    cluster = "dask.distributed:LocalCluster"   # or dask_kubernetes.operator:KubeCluster, ...
    cluster_options = { threads_per_worker = 1 }  # keyword arguments of that class
    min_workers = 0                                # with max_workers: cluster.adapt(...)
    max_workers = 4

The class is imported when the backend is made -- before any step runs -- so
a misspelt class or a package that is not installed fails the run at once,
naming the ``pip install`` to do. The cluster itself is made on first use (the
first run of this process that needs the target), kept for later runs with the
same settings, and closed when the process exits. With ``min_workers`` it is
adaptive (``cluster.adapt(minimum=min_workers, maximum=max_workers)``: Dask
adds workers while tasks wait and retires idle ones down to the minimum);
without, ``max_workers`` (if given) is a fixed size (``cluster.scale``).
"""

from __future__ import annotations

import atexit
import importlib
import inspect
import json
import logging
import threading

import attrs

from ductwork.runtime.engine.backend import BackendError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

#: Where the cluster managers Dask's ecosystem offers come from (top-level module: install).
INSTALL_HINTS = {
    "dask": "pip install 'ductwork[dask]'",
    "distributed": "pip install 'ductwork[dask]'",
    "dask_kubernetes": "pip install dask-kubernetes",
    "dask_cloudprovider": "pip install 'dask-cloudprovider[azure]'",
    "dask_jobqueue": "pip install dask-jobqueue",
    "dask_gateway": "pip install dask-gateway",
    "dask_yarn": "pip install dask-yarn",
}

_LOCK = threading.Lock()
_KEPT: dict[ClusterSpec, tuple[Any, Any]] = {}


@attrs.frozen
class ClusterSpec:
    """What a compute target asks for: the class, its keyword settings (as JSON), the bounds."""

    path: str
    options_json: str
    min_workers: int | None
    max_workers: int | None

    @property
    def options(self) -> dict[str, Any]:
        """The keyword arguments the cluster class is called with."""
        return json.loads(self.options_json)

    @property
    def local(self) -> bool:
        """Whether its workers run on this machine (a ``LocalCluster``): local paths work."""
        from distributed import LocalCluster

        cls = cluster_class(self.path)
        return isinstance(cls, type) and issubclass(cls, LocalCluster)

    @property
    def in_process(self) -> bool:
        """Whether its workers are threads of this process (a ``memory://`` store works)."""
        return self.local and self.options.get("processes") is False


def cluster_class(path: str) -> Any:
    """Import the class named ``module:Class``, or say what to install or fix."""
    module, _, name = path.partition(":")
    if not module or not name or not name.isidentifier():
        raise BackendError(
            f"cluster = {path!r} is not 'module:Class'; write e.g. "
            "cluster = \"dask.distributed:LocalCluster\"."
        )
    top = module.split(".")[0]
    try:
        found = importlib.import_module(module)
    except ImportError as exc:
        hint = INSTALL_HINTS.get(top, f"pip install the package that provides '{top}'")
        raise BackendError(
            f"cluster = {path!r}: module '{module}' cannot be imported ({exc}). Install it "
            f"where the pipeline runs: {hint}."
        ) from None
    cls = getattr(found, name, None)
    if not callable(cls):  # a class, or a function making one (distributed's SSHCluster)
        offered = sorted(n for n in dir(found) if n.endswith("Cluster"))
        raise BackendError(
            f"cluster = {path!r}: module '{module}' has no class '{name}'"
            f"{' (it has: ' + ', '.join(offered) + ')' if offered else ''}. Fix the name."
        )
    return cls


def cluster_spec(path: str, options: dict[str, Any] | None, min_workers: int | None,
                 max_workers: int | None) -> ClusterSpec:
    """Check a compute target's cluster settings (importing the class); its spec."""
    cls = cluster_class(path)
    options = dict(options or {})
    if not all(isinstance(k, str) for k in options):
        raise BackendError(f"cluster_options of {path} must be a table of keyword settings.")
    params = inspect.signature(cls).parameters.values()
    if not any(p.kind is p.VAR_KEYWORD for p in params):
        takes = [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        unknown = sorted(set(options) - set(takes))
        if unknown:
            raise BackendError(
                f"cluster_options of {path}: {', '.join(unknown)} not taken by {cls.__name__}; "
                f"it takes: {', '.join(takes)}."
            )
    for name, value in (("min_workers", min_workers), ("max_workers", max_workers)):
        if value is not None and (type(value) is not int or value < 0):
            raise BackendError(f"{name} must be a whole number >= 0, got {value!r}.")
    if min_workers is not None and (max_workers is None or max_workers < max(min_workers, 1)):
        raise BackendError(
            f"min_workers = {min_workers} makes the cluster adaptive, which needs max_workers "
            f">= {max(min_workers, 1)} (got {max_workers!r}): add max_workers = N."
        )
    try:
        options_json = json.dumps(options, sort_keys=True)
    except TypeError as exc:
        raise BackendError(f"cluster_options of {path}: {exc}") from None
    return ClusterSpec(path, options_json, min_workers, max_workers)


def client_for(spec: ClusterSpec) -> Any:
    """A client of the cluster ``spec`` describes: made on first use, then kept."""
    with _LOCK:
        kept = _KEPT.get(spec)
        if kept is not None and kept[0].status == "running":
            return kept[0]
        _KEPT.pop(spec, None)
    if kept is not None:
        _close(*kept)
    from distributed import Client

    cluster = _make(spec)
    client = Client(cluster, set_as_default=False)
    with _LOCK:
        _KEPT[spec] = (client, cluster)
    # Registered now, after distributed's own exit handlers: ours runs before theirs.
    atexit.unregister(shutdown_clusters)
    atexit.register(shutdown_clusters)
    return client


def _make(spec: ClusterSpec) -> Any:
    cls, options = cluster_class(spec.path), spec.options
    if spec.local:  # quiet, no fixed dashboard port, and no workers beyond what is asked
        options.setdefault("dashboard_address", ":0")
        options.setdefault("silence_logs", logging.ERROR)
        if "n_workers" not in options:
            options["n_workers"] = spec.min_workers if spec.min_workers is not None else (
                spec.max_workers)
    try:
        cluster = cls(**options)
    except Exception as exc:
        raise BackendError(
            f"Dask could not start the cluster {spec.path} with {options}: "
            f"{type(exc).__name__}: {exc}. Check its settings (cluster_options) and its "
            "credentials; a LocalCluster with processes starts new interpreters that import "
            "your main script again: run the pipeline under `if __name__ == \"__main__\":`."
        ) from None
    try:
        if spec.min_workers is not None:
            cluster.adapt(minimum=spec.min_workers, maximum=spec.max_workers)
        elif spec.max_workers is not None and not spec.local:
            cluster.scale(spec.max_workers)
    except Exception:
        cluster.close()
        raise
    return cluster


def clusters() -> dict[ClusterSpec, Any]:
    """The clusters this process made for compute targets, by spec (open ones)."""
    with _LOCK:
        return {spec: cluster for spec, (_, cluster) in _KEPT.items()}


def shutdown_clusters() -> None:
    """Close every cluster made for a compute target (at exit, or when a test is done)."""
    with _LOCK:
        kept = list(_KEPT.values())
        _KEPT.clear()
    for client, cluster in kept:
        _close(client, cluster)


def _close(client: Any, cluster: Any) -> None:
    try:
        client.close(timeout=5)
        cluster.close(timeout=10)
    except Exception:  # a cluster that is already gone is fine
        pass

