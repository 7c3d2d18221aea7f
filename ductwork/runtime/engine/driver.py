"""Running a plan on a backend that schedules the graph itself (Dask).

The driver turns each node into a task (``tasks.run_node``) whose arguments
include its upstream nodes' task handles, so the backend's scheduler runs a
node when its inputs are ready -- dependencies are not re-implemented here. A
``map`` node becomes one task per element, created when the length of its list
is known: at once for a list written in the pipeline, or when the task that
produces the list reports it.

Before that, the driver serves from the cache what it can (``hits.py``), so a
cached rerun sends nothing. Then it only watches results come back, fills in
``run.steps`` and the progress display, and expands maps. One case needs a new
pass: an input that failed verification (``corrupt``) removes its producer's
object from the store, so the producer and what follows are submitted again and
recompute it.

The backend is a ``GraphBackend`` (``backend.py``). Every decision about a node
-- its key, a hit, a retry, a skip, a map's expansion -- is taken by the
functions of ``node.py``, here, in the tasks and in ``hits.py``; the books
(records, progress, skipped descendants, the result) are ``state.RunState``'s.
Nothing here recurses along the graph: freed nodes go through a ready queue.
"""

from __future__ import annotations

import time
import warnings
from collections import defaultdict, deque

from ductwork.dsl.core import Output
from ductwork.dsl.trace import Invocation, Plan
from ductwork.runtime.engine.backend import GraphBackend, TaskLost
from ductwork.runtime.engine.node import (
    RECOMPUTED_NOTE,
    RERUN_NOTE,
    CacheKeyError,
    basis_of,
    corrupt_message,
    downstream,
    element_failed,
    element_id,
    not_a_list,
    producers_of,
    skipped_because,
)
from ductwork.runtime.engine.state import RunState
from ductwork.runtime.engine.tasks import (
    BLOCKED,
    CORRUPT,
    NodeResult,
    NodeSpec,
    run_node,
    upstream_refs,
)
from ductwork.runtime.records.run import Run, StepRun
from ductwork.runtime.status import Status

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class GraphDriver:
    """Runs one plan on a graph-scheduling backend, filling in ``run.steps`` and the result."""

    def __init__(self, plan: Plan, backend: GraphBackend, run: Run, store: Any,
                 force: frozenset[str] = frozenset(), progress: Any = None) -> None:
        self.state = RunState(plan, run, store, force, progress)
        self.plan, self.backend, self.run, self.store = plan, backend, run, store
        self.force = force
        self._dependents = self.state.dependents
        #: The outputs a downstream map iterates over, by producing node: tasks report
        #: their lengths.
        self._lengths: dict[str, set[str]] = defaultdict(set)
        for inv in plan.invocations.values():
            source = inv.arguments[inv.map_over] if inv.is_map else None
            if isinstance(source, Output):
                self._lengths[source.node].add(source.name)
        self._specs = self._make_specs()
        self._payloads: dict[str, bytes] = {}
        #: Finished nodes: a NodeResult, or a map node's list of element results.
        self.done: dict[str, Any] = {}

    # -- passes ---------------------------------------------------------------------------

    def execute(self) -> None:
        """Run the plan; leave its result in the run."""
        from ductwork.runtime.engine.hits import serve_hits

        skip = set(self.force) | set(self._broken)
        try:
            for nid, served in serve_hits(self.plan, self.store, self._bases, self._lengths,
                                          skip, self.state.load).items():
                self._serve(nid, served)
            for _ in range(len(self.plan.invocations) + 1):
                corrupt = self._pass()
                if not corrupt:
                    break
                self._forget_producers(corrupt)
            else:
                raise RuntimeError("stored artifacts keep failing verification; check the "
                                   "store")
            self.state.resolve_result(upstream_refs(self.done))
        finally:
            self.state.name_producers()

    def _serve(self, nid: str, served: Any) -> None:
        """Record a node the driver served from the cache (``hits.serve_hits``)."""
        self.done[nid] = served
        if not isinstance(served, list):
            self._fill(self.run.steps[nid], served)
            return
        for i, result in enumerate(served):
            self._fill(self.state.element(nid, i, result.sid), result)
        record = self.run.steps[nid]
        record.started = record.finished = time.time()
        self.state.finish_map(nid, [r.refs["output"] for r in served], cached=bool(served))

    def _pass(self) -> set[str]:
        self._handles: dict[str, Any] = dict(self.done)
        self._owner: dict[Any, tuple[str, int | None]] = {}
        self._results: dict[str, list[Any]] = {}
        self._left: dict[str, int] = {}
        self._closed: set[str] = set(self.done)
        self._corrupt: set[str] = set()
        self._ready: deque[str] = deque(self.plan.invocations)
        self._completions = self.backend.completions()
        self._pickle([nid for nid in self._specs if nid not in self.done])
        try:
            self.state.flush_leases()  # the hits served before the pass
            self._submit_ready()
            for handle, result in self._completions:
                nid, index = self._owner.pop(handle)
                self._collect(nid, index, self._as_result(nid, index, result))
                self.state.flush_leases()
                self._submit_ready()
        finally:
            # Holding a future keeps its result on the cluster: let go of them all.
            self._handles, self._owner, self._completions = {}, {}, None
        return self._corrupt

    def _submit_ready(self) -> None:
        while self._ready:
            self._submit_if_ready(self._ready.popleft())

    def _submit_if_ready(self, nid: str) -> None:
        if nid in self._handles or nid in self._closed:
            return
        inv = self.plan.invocations[nid]
        if not all(dep in self._handles for dep in inv.deps):
            return
        upstream = {dep: self._handles[dep] for dep in inv.deps}
        if nid in self._broken:
            self.run.steps[nid].error = self._broken[nid]
            self._fail(nid)
            return
        if not inv.is_map:
            self.state.set(self.run.steps[nid], Status.RUNNING)
            self._handles[nid] = self._call(nid, upstream)
            return
        count = self._map_length(nid, inv)
        if count is None:
            return  # the list is not known yet: its producer reports its length
        record = self.run.steps[nid]
        self.state.set(record, Status.RUNNING)
        record.started = record.started or time.time()
        payload = self.backend.share(self._payloads[nid]) if count > 1 else self._payloads[nid]
        for i in range(count):
            sid = element_id(nid, i)
            if sid not in self.run.steps:
                self.state.element(nid, i, sid)
            self.state.set(self.run.steps[sid], Status.RUNNING)
        token = f"{self.run.id}/{nid}"
        stamp = time.time_ns()
        handles = self.backend.call_many(
            run_node, [(token, payload, upstream, i) for i in range(count)],
            keys=[f"ductwork-{element_id(nid, i)}-{self.run.id}-{stamp}" for i in range(count)])
        for i, handle in enumerate(handles):
            self._owner[handle] = (nid, i)
            self._completions.add(handle)
        self._handles[nid] = handles
        self._results[nid] = [None] * count
        self._left[nid] = count
        if count == 0:
            self._close(nid)

    def _map_length(self, nid: str, inv: Invocation) -> int | None:
        source = inv.arguments[inv.map_over]
        if not isinstance(source, Output):
            return len(source)
        produced = self.done.get(source.node)
        if produced is None:
            return None
        if isinstance(produced, list):
            return len(produced)
        length = produced.lengths.get(source.name, -1)
        if length < 0:
            self.run.steps[nid].error = not_a_list(
                inv.step, f"its input (output '{source.name}' of step '{source.node}')",
                "not a list")
            self._fail(nid)
            return None
        return length

    def _call(self, nid: str, upstream: dict[str, Any]) -> Any:
        token = f"{self.run.id}/{nid}"
        key = f"ductwork-{nid}-{self.run.id}-{time.time_ns()}"
        handle = self.backend.call(run_node, token, self._payloads[nid], upstream, None, key=key)
        self._owner[handle] = (nid, None)
        self._completions.add(handle)
        return handle

    def _make_specs(self) -> dict[str, NodeSpec]:
        config = store_config(self.store)
        self._broken: dict[str, str] = {}
        self._bases: dict[str, Any] = {}
        specs = {}
        for nid, inv in self.plan.invocations.items():
            step = inv.step
            try:
                basis = basis_of(step, inv.is_map,
                                 self.backend.environment(step) if step.options.cache else None)
            except CacheKeyError as exc:
                self._broken[nid] = f"{exc}\n"
                continue
            if basis is not None:
                self._bases[nid] = basis
            specs[nid] = NodeSpec(nid, step, inv.arguments, self.run.id, config, inv.map_over,
                                  basis, nid in self.force,
                                  tuple(sorted(self._lengths.get(nid, ()))))
        return specs

    def _pickle(self, nids: list[str]) -> None:
        """Pickle the specs of nodes about to be submitted (served ones never are)."""
        from ductwork.runtime.engine.shipping import pickle_many

        todo = [nid for nid in nids if nid not in self._payloads]
        if todo:
            payloads = pickle_many([self._specs[nid] for nid in todo])
            self._payloads.update(zip(todo, payloads, strict=True))

    # -- results --------------------------------------------------------------------------

    def _as_result(self, nid: str, index: int | None, result: Any) -> NodeResult:
        sid = nid if index is None else element_id(nid, index)
        if isinstance(result, NodeResult):
            return result
        if isinstance(result, TaskLost):
            return NodeResult(sid, Status.FAILED, error=result.describe(sid))
        return NodeResult(sid, Status.FAILED, error=(
            f"Step '{sid}' could not be run: {type(result).__name__}: {result}\n"))

    def _collect(self, nid: str, index: int | None, result: NodeResult) -> None:
        record = self.run.steps[result.sid]
        if result.timed_out and result.where:
            self.backend.restart(result.where)
        if result.status == BLOCKED:
            return  # waits for the next pass
        if result.status == CORRUPT:
            self._corrupt.add(result.cause or "")
            record.note = RERUN_NOTE
            return
        self._fill(record, result)
        if index is None:
            if result.status == Status.SUCCEEDED:
                self.done[nid] = result
                self._close(nid)
            elif result.status == Status.SKIPPED:
                self._skip(nid, result.cause or "")
            else:
                self._fail(nid)
            return
        self._results[nid][index] = result
        if result.status == Status.FAILED:
            parent = self.run.steps[nid]
            parent.error = parent.error or element_failed(index, result.error)
        self._left[nid] -= 1
        if self._left[nid] == 0:
            self._finish_map(nid)

    def _fill(self, record: StepRun, result: NodeResult) -> None:
        record.key, record.components = result.key, result.components
        record.cached = result.cached
        record.started, record.finished = result.started, result.finished or time.time()
        record.attempts = result.attempts or record.attempts
        record.logs += result.logs
        record.metrics.update(result.metrics)
        record.note = result.note or record.note
        if result.status == Status.SUCCEEDED:
            self.state.lease(result.refs, result.key)  # before it is recorded
            for name, ref in result.refs.items():
                record.set_output(name, ref, None, known=False)
            # A hit served here or by a task: what its producer recorded, found here,
            # where the history is (a worker may not reach it).
            if result.cached:
                self.state.served([(record, result.refs)])
            else:
                self.state.made(record)
        else:
            record.error = result.error
        self.state.set(record, Status(result.status))

    def _finish_map(self, nid: str) -> None:
        results = self._results[nid]
        record = self.run.steps[nid]
        record.finished = time.time()
        statuses = {r.status for r in results}
        if Status.FAILED in statuses:
            self._fail(nid)
        elif Status.SKIPPED in statuses:
            cause = next(r.cause for r in results if r.status == Status.SKIPPED) or ""
            record.error = skipped_because(cause)
            self._skip(nid, cause)
        elif statuses <= {Status.SUCCEEDED}:
            self.done[nid] = results
            self.state.finish_map(nid, [r.refs["output"] for r in results],
                                  cached=all(r.cached for r in results))
            self._close(nid)

    def _close(self, nid: str) -> None:
        """A node is over: what waited for it is ready (maps waiting for a length too)."""
        self._closed.add(nid)
        inv = self.plan.invocations[nid]
        if inv.is_map and not self._results.get(nid):
            self.done[nid] = []
            self.state.finish_map(nid, [], cached=False)
        self._ready.extend(self._dependents[nid])

    def _fail(self, nid: str) -> None:
        self._closed.add(nid)
        self.state.set(self.run.steps[nid], Status.FAILED)
        self._skip_unsubmitted(nid, nid)

    def _skip(self, nid: str, cause: str) -> None:
        self._closed.add(nid)
        self.state.set(self.run.steps[nid], Status.SKIPPED)
        self._skip_unsubmitted(nid, cause)

    def _skip_unsubmitted(self, nid: str, cause: str) -> None:
        # Nodes already submitted skip themselves on the worker; the others never will be.
        self._closed.update(self.state.skip_after(
            nid, cause, lambda dep: dep in self._handles or dep in self._closed))

    def _forget_producers(self, digests: set[str]) -> None:
        """Drop the producers of corrupt artifacts, and everything after them, from ``done``."""
        producers = set()
        for digest in digests:
            producers.update(producers_of(digest, upstream_refs(self.done)))
        warnings.warn(corrupt_message(digests, self.store.url, producers), RuntimeWarning,
                      stacklevel=2)
        for nid in [*producers, *(d for p in producers for d in downstream(p, self._dependents))]:
            if self.done.pop(nid, None) is not None:
                record = self.run.steps[nid]
                if record.cached:
                    self.state.unserved(record)
                record.finished = None
                record.note = RECOMPUTED_NOTE


def store_config(store: Any) -> dict[str, Any]:
    """How a worker opens the same store: its URL and options, without credentials.

    A task's arguments pass through the cluster's scheduler and may be logged there,
    so credentials are not sent: each worker finds its own in its environment.
    """
    from ductwork.runtime.store.secrets import public_options, redact_url

    options = getattr(store, "storage_options", {}) or {}
    # At any depth: client_kwargs or headers may carry a credential too.
    return {"url": redact_url(store.url), "options": public_options(options)}
