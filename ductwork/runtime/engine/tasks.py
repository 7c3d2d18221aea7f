"""One node of a plan as a self-contained task, for backends that schedule the graph.

A backend like Dask receives the whole graph: each node is a task that depends on
its upstream tasks, and the cluster's scheduler decides what runs when. So the
work the one-loop scheduler does before dispatching -- finishing the cache key
from the input digests, looking it up, skipping a node whose upstream failed --
happens here, in the task, on the worker. The driver sends what only it can
compute (the code fingerprint and the other input-independent key components,
see ``cache.key_basis``); the task gets its upstream tasks' ``NodeResult``s,
which carry refs, never values: data moves through the artifact store.

A task never raises for a user's error: it returns a failed result, and a task
whose upstream failed returns ``skipped`` at once, so the cluster's scheduler
sees only successful tasks and the driver reads every outcome from results.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time

from ductwork.dsl.slotted import Frozen, fill, setter
from ductwork.dsl.trace import substitute
from ductwork.runtime import caches
from ductwork.runtime.engine.node import (
    FORCED_NOTE,
    CacheKeyError,
    element_id,
    gathered,
    key_of,
    list_length,
    lookup,
    may_retry,
    node_of,
    skipped_because,
)
from ductwork.runtime.status import Status

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

#: An input failed verification: the producer must be recomputed (see ``GraphDriver``).
CORRUPT = "corrupt"
#: An upstream was corrupt: this node waits for the next pass.
BLOCKED = "blocked"


class NodeSpec(Frozen):
    """What a worker needs to run one node (or each element of one ``map`` node).

    ``arguments``: the invocation's, with ``Output`` placeholders for upstream outputs.
    ``basis``: ``cache.key_basis`` of the step; None when the step is not cached.
    ``lengths``: output names a downstream ``map`` iterates over: report their lengths.
    """

    __slots__ = ("sid", "step", "arguments", "run_id", "store", "map_over", "basis", "forced",
                 "lengths")
    sid: str
    step: Any
    arguments: dict[str, Any]
    run_id: str
    store: dict[str, Any]
    map_over: str | None
    basis: tuple[dict[str, str], dict[str, str]] | None
    forced: bool
    lengths: tuple[str, ...]

    def __init__(self, sid: str, step: Any, arguments: dict[str, Any], run_id: str,
                 store: dict[str, Any], map_over: str | None = None,
                 basis: tuple[dict[str, str], dict[str, str]] | None = None,
                 forced: bool = False, lengths: tuple[str, ...] = ()) -> None:
        fill(self, sid, step, arguments, run_id, store, map_over, basis, forced, lengths)


class NodeResult(Frozen):
    """How one node (or map element) ended; small, so it travels through the scheduler.

    ``lengths``: of the outputs named in ``NodeSpec.lengths`` (-1: not a list).
    ``cause``: for ``skipped``, the failed node; for ``corrupt``, the digest that failed.
    ``where``: where it ran (a worker's address), so a stuck worker can be restarted.
    ``timed_out``: an attempt overran its timeout; its thread may still run on the worker.
    """

    __slots__ = ("sid", "status", "refs", "cached", "key", "components", "error", "logs", "metrics",
                 "started", "finished", "attempts", "lengths", "cause", "note", "where",
                 "timed_out")
    sid: str
    status: str
    refs: dict[str, Any] | None
    cached: bool
    key: str | None
    components: dict[str, str] | None
    error: str | None
    logs: str
    metrics: dict[str, Any]
    started: float | None
    finished: float | None
    attempts: int
    lengths: dict[str, int]
    cause: str | None
    note: str | None
    where: str | None
    timed_out: bool

    def __init__(self, sid: str, status: str, refs: dict[str, Any] | None = None,
                 cached: bool = False, key: str | None = None,
                 components: dict[str, str] | None = None, error: str | None = None,
                 logs: str = "", metrics: dict[str, Any] | None = None,
                 started: float | None = None, finished: float | None = None,
                 attempts: int = 0, lengths: dict[str, int] | None = None,
                 cause: str | None = None, note: str | None = None, where: str | None = None,
                 timed_out: bool = False) -> None:
        set_ = setter(self)
        set_("sid", sid)
        set_("status", status)
        set_("refs", refs)
        set_("cached", cached)
        set_("key", key)
        set_("components", components)
        set_("error", error)
        set_("logs", logs)
        set_("metrics", {} if metrics is None else metrics)
        set_("started", started)
        set_("finished", finished)
        set_("attempts", attempts)
        set_("lengths", {} if lengths is None else lengths)
        set_("cause", cause)
        set_("note", note)
        set_("where", where)
        set_("timed_out", timed_out)


# -- worker-side caches -------------------------------------------------------------------

_LOCK = threading.Lock()
#: Stores opened on this worker, by config: not closed when dropped (another thread of
#: the worker may be using one; its connections go when it is collected).
_STORES = caches.cache("engine.worker_stores", 8)
#: Unpickled node specs, by token (a run and a node).
_SPECS = caches.cache("engine.worker_node_specs", 256)
#: Values read on this worker for one run, so a map's list is read once, not per element.
_MEMO = caches.cache("engine.worker_run_values", 1)
_MEMO_KEPT = 32


def open_store(config: dict[str, Any]) -> Any:
    """The store a config names, opened once per worker process."""
    from ductwork.runtime.store.artifacts import ArtifactStore

    token = json.dumps(config, sort_keys=True)
    with _LOCK:
        store = _STORES.get(token)
        if store is None:
            store = _STORES.put(token, ArtifactStore(config["url"], **config.get("options", {})))
        return store


def load_spec(token: str, payload: bytes) -> NodeSpec:
    """Unpickle a spec (with the user's serializers) once per worker process."""
    spec = _SPECS.get(token)
    if spec is None:
        from ductwork.runtime.engine.shipping import unpickle

        spec = _SPECS.put(token, unpickle(payload))
    return spec


def _memo_for(run_id: str) -> dict[str, Any]:
    with _LOCK:
        memo = _MEMO.get(run_id)
        if memo is None or len(memo) > _MEMO_KEPT:
            # Inputs are shared within a run, not kept across runs.
            memo = _MEMO.put(run_id, {})
        return memo


# -- the task -----------------------------------------------------------------------------

def upstream_refs(upstream: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each upstream node's output refs; a map node's are its elements', gathered."""
    refs = {}
    for nid, result in upstream.items():
        if isinstance(result, list):
            refs[nid] = {"output": gathered(r.refs["output"] for r in result)}
        else:
            refs[nid] = result.refs
    return refs


def _blocker(upstream: dict[str, Any]) -> NodeResult | None:
    """The first upstream result that stops this node from running, if any."""
    found = None
    for result in upstream.values():
        for r in result if isinstance(result, list) else (result,):
            if r.status in (Status.FAILED, Status.SKIPPED):
                return r
            if r.status in (CORRUPT, BLOCKED):
                found = r
    return found


def run_node(token: str, payload: bytes, upstream: dict[str, Any],
             index: int | None = None) -> NodeResult:
    """Run one node (``index``: one element of a map node) on this worker."""
    spec = load_spec(token, payload)
    sid = spec.sid if index is None else element_id(spec.sid, index)
    blocker = _blocker(upstream)
    if blocker is not None:
        if blocker.status in (CORRUPT, BLOCKED):
            return NodeResult(sid, BLOCKED)
        failed = blocker.cause if blocker.status == Status.SKIPPED else node_of(blocker.sid)
        return NodeResult(sid, Status.SKIPPED, error=skipped_because(failed or ""), cause=failed)
    from ductwork.runtime.context import run_store

    try:
        with run_store(open_store(spec.store)):  # the key may read datasets
            return _run(spec, sid, upstream, index)
    except Exception:  # a fault of ours must fail the step, not the task
        import traceback

        return NodeResult(sid, Status.FAILED, error=traceback.format_exc(), finished=time.time())


def _run(spec: NodeSpec, sid: str, upstream: dict[str, Any], index: int | None) -> NodeResult:
    from ductwork.runtime.store.artifacts import CorruptArtifact

    store = open_store(spec.store)
    memo = _memo_for(spec.run_id)
    refs = upstream_refs(upstream)
    # With no upstream there is no placeholder to replace (and a constant list to map
    # over would be walked once per element for nothing).
    arguments = substitute(spec.arguments, lambda out: refs[out.node][out.name]) \
        if upstream else spec.arguments
    started = time.time()
    if index is not None:
        try:
            item = _pick(arguments[spec.map_over], index, store, memo)
        except CorruptArtifact as exc:
            return NodeResult(sid, CORRUPT, cause=exc.digest, error=f"{exc}\n")
        arguments = {**arguments, spec.map_over: item}
    key = components = None
    if spec.basis is not None:
        try:
            key, components = key_of(spec.basis, spec.step, arguments)
        except CacheKeyError as exc:
            return NodeResult(sid, Status.FAILED, error=f"{exc}\n", started=started,
                              finished=time.time())
        hit = lookup(store, key, spec.forced, step=spec.step, whole=index is not None)
        if hit is not None:
            try:
                lengths = _lengths(spec, hit, None, store, memo)
            except CorruptArtifact as exc:
                return NodeResult(sid, CORRUPT, cause=exc.digest, error=f"{exc}\n")
            return NodeResult(sid, Status.SUCCEEDED, refs=hit, cached=True, key=key,
                              components=components, started=started, finished=time.time(),
                              lengths=lengths)
    return _execute(spec, sid, arguments, index, key, components, store, memo)


def _execute(spec: NodeSpec, sid: str, arguments: dict[str, Any], index: int | None,
             key: str | None, components: dict[str, str] | None, store: Any,
             memo: dict[str, Any]) -> NodeResult:
    from ductwork.runtime.engine.job import Job

    step = spec.step
    args, kwargs = step.call_arguments(arguments)
    logs, started = "", time.time()
    note = FORCED_NOTE if spec.forced else None
    stuck = False
    attempt = 0
    while True:
        attempt += 1
        job = Job(sid, step, args, kwargs, attempt, key, whole=index is not None,
                  run_id=spec.run_id)
        result, timed_out = run_with_timeout(job, store, memo, step.options.timeout)
        stuck = stuck or timed_out  # a stuck thread stays until its worker restarts
        logs += result.logs
        common = dict(key=key, components=components, logs=logs, metrics=result.metrics,
                      started=started, finished=time.time(), attempts=attempt, note=note,
                      timed_out=stuck)
        if result.corrupt is not None:
            return NodeResult(sid, CORRUPT, cause=result.corrupt, error=result.error, **common)
        if result.error is None:
            lengths = _lengths(spec, result.refs, result.values, store, memo)
            return NodeResult(sid, Status.SUCCEEDED, refs=result.refs, lengths=lengths, **common)
        if not may_retry(step, attempt):
            return NodeResult(sid, Status.FAILED, error=result.error, **common)


def run_with_timeout(job: Any, store: Any, memo: dict[str, Any], timeout: float | None,
                     capture: str = "thread", resolve: bool = True) -> tuple[Any, bool]:
    """Execute ``job`` here; with a timeout, in a helper thread: ``(result, timed_out)``.

    A thread cannot be killed. One that overruns is interrupted at its next Python
    instruction (an exception raised in it: best effort -- a call blocked in C
    finishes first, and the error says which of the two happened); on Dask its
    worker may also be restarted. It must not index the key, so the helper thread
    runs the job without it, and this thread writes the index only for a job that
    finished in time.
    """
    from ductwork.runtime.engine.job import JobResult, execute

    if timeout is None:
        return execute(job, store, capture=capture, memo=memo, resolve=resolve), False
    box: list[Any] = []
    unindexed = job.replace(key=None)

    def target() -> None:
        with contextlib.suppress(StepTimedOut):
            box.append(execute(unindexed, store, capture=capture, memo=memo, resolve=resolve))

    runner = threading.Thread(target=target, daemon=True, name=f"ductwork-{job.step_id}")
    runner.start()
    runner.join(timeout)
    if box:
        result = box[0]
        if job.key is not None and result.error is None and store is not None:
            store.put_key(job.key, result.refs)
        return result, False
    stopped = _interrupt(runner)
    return JobResult(job.step_id, time.time(), time.time(),
                     error=_timed_out(job.step.name, timeout, stopped)), True


#: How long an interrupted step's thread is given to end before it is said to run on.
STOP_GRACE = 0.5


def _timed_out(name: str, timeout: float, stopped: bool) -> str:
    """The error of a step that overran ``timeout``: stopped, or still running in C."""
    if stopped:
        return (f"Step '{name}' timed out after {timeout:g} s and was stopped (timeout="
                f"{timeout:g}). Raise the timeout, or make the step faster.\n")
    return (f"Step '{name}' timed out after {timeout:g} s; it is blocked in code ductwork "
            "cannot interrupt (a call in C, e.g. time.sleep or a native library), so it keeps "
            "running in the background until that call returns; its result will be discarded "
            f"and not cached (timeout={timeout:g}). Use backend='process' to have it killed at "
            "the timeout, raise the timeout, or make the step faster.\n")


class StepTimedOut(BaseException):
    """Raised inside a step's thread when it overran its timeout.

    A BaseException, so the step's own ``except Exception`` does not swallow it.
    """


def _interrupt(thread: threading.Thread, grace: float = STOP_GRACE) -> bool:
    """Raise ``StepTimedOut`` in ``thread``; say whether it ended within ``grace`` seconds."""
    import ctypes

    if thread.ident is not None:
        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread.ident),
                                                   ctypes.py_object(StepTimedOut))
    # The exception lands at the thread's next Python instruction: a call blocked in C
    # must return first, so only a thread seen to end was stopped.
    thread.join(grace)
    return not thread.is_alive()


def _pick(value: Any, index: int, store: Any, memo: dict[str, Any]) -> Any:
    """Element ``index`` of the list a map iterates over, as a value."""
    from ductwork.runtime.engine.job import resolve_refs
    from ductwork.runtime.store.refs import GatherRef

    if isinstance(value, GatherRef):
        return resolve_refs(value.parts[index], store, memo)
    if isinstance(value, list | tuple):
        return resolve_refs(value[index], store, memo)
    return resolve_refs(value, store, memo)[index]


def _lengths(spec: NodeSpec, refs: dict[str, Any], values: dict[str, Any] | None, store: Any,
             memo: dict[str, Any]) -> dict[str, int]:
    from ductwork.runtime.engine.job import resolve_refs

    lengths = {}
    for name in spec.lengths:
        value = values[name] if values is not None else resolve_refs(refs[name], store, memo)
        lengths[name] = list_length(value)
    return lengths
