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

A backend offers ``call(fn, *args, key=...)`` (handles nested in args become
dependencies), ``call_many(fn, calls, keys)`` (the same, in one batch),
``share(obj)`` (one copy for many tasks), ``completions()`` (an
iterator of ``(handle, result)`` that accepts new handles with ``add``) and,
optionally, ``restart(where)`` for a worker stuck in a timed-out step.
"""

from __future__ import annotations

import time
import warnings
from collections import defaultdict
from typing import Any

from ductwork.dsl.core import Output
from ductwork.dsl.trace import Invocation, Plan, substitute
from ductwork.runtime.engine.tasks import (
    BLOCKED,
    CORRUPT,
    NodeResult,
    NodeSpec,
    run_node,
    upstream_refs,
)
from ductwork.runtime.records.run import FAILED, RUNNING, SKIPPED, SUCCEEDED, Run, StepRun
from ductwork.runtime.store.refs import GatherRef, iter_digests, map_refs


class GraphDriver:
    """Runs one plan on a graph-scheduling backend, filling in ``run.steps`` and the result."""

    def __init__(self, plan: Plan, backend: Any, run: Run, store: Any,
                 force: frozenset[str] = frozenset(), progress: Any = None) -> None:
        from ductwork.runtime.ui.progress import NullProgress

        self.plan, self.backend, self.run, self.store = plan, backend, run, store
        self.force = force
        self.progress = progress or NullProgress()
        self._memo: dict[str, Any] = {}
        self._dependents: dict[str, list[str]] = defaultdict(list)
        self._lengths: dict[str, set[str]] = defaultdict(set)
        for nid, inv in plan.invocations.items():
            for dep in inv.deps:
                self._dependents[dep].append(nid)
            source = inv.arguments[inv.map_over] if inv.is_map else None
            if isinstance(source, Output):
                self._lengths[source.node].add(source.name)
            run.steps[nid] = self._record(nid, inv.step.name)
        self._specs = self._make_specs()
        self._payloads: dict[str, bytes] = {}
        #: Finished nodes: a NodeResult, or a map node's list of element results.
        self.done: dict[str, Any] = {}

    # -- passes ---------------------------------------------------------------------------

    def execute(self) -> None:
        """Run the plan; leave its result in the run."""
        from ductwork.runtime.engine.hits import serve_hits

        skip = set(self.force) | set(self._broken)
        for nid, served in serve_hits(self.plan, self.store, self._bases, self._lengths, skip,
                                      self._load).items():
            self._serve(nid, served)
        for _ in range(len(self.plan.invocations) + 1):
            corrupt = self._pass()
            if not corrupt:
                break
            self._forget_producers(corrupt)
        else:
            raise RuntimeError("stored artifacts keep failing verification; check the store")
        self._resolve_result()

    def _serve(self, nid: str, served: Any) -> None:
        """Record a node the driver served from the cache (``hits.serve_hits``)."""
        self.done[nid] = served
        if not isinstance(served, list):
            self._fill(self.run.steps[nid], served)
            return
        step = self.plan.invocations[nid].step.name
        for i, result in enumerate(served):
            self.run.steps[result.sid] = self._record(result.sid, step, map_index=i)
            self._fill(self.run.steps[result.sid], result)
        record = self.run.steps[nid]
        record.started = record.finished = time.time()
        record.set_output("output", upstream_refs({nid: served})[nid]["output"])
        record.cached = bool(served)
        self._set(record, SUCCEEDED)

    def _pass(self) -> set[str]:
        self._handles: dict[str, Any] = dict(self.done)
        self._owner: dict[Any, tuple[str, int | None]] = {}
        self._results: dict[str, list[Any]] = {}
        self._left: dict[str, int] = {}
        self._closed: set[str] = set(self.done)
        self._corrupt: set[str] = set()
        self._completions = self.backend.completions()
        self._pickle([nid for nid in self._specs if nid not in self.done])
        for nid in self.plan.invocations:
            self._submit_if_ready(nid)
        try:
            for handle, result in self._completions:
                nid, index = self._owner.pop(handle)
                self._collect(nid, index, self._as_result(nid, index, result))
        finally:
            # Holding a future keeps its result on the cluster: let go of them all.
            self._handles, self._owner, self._completions = {}, {}, None
        return self._corrupt

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
            self._set(self.run.steps[nid], RUNNING)
            handle = self._call(nid, upstream)
            self._handles[nid] = handle
            return
        count = self._map_length(nid, inv)
        if count is None:
            return  # the list is not known yet: its producer reports its length
        record = self.run.steps[nid]
        self._set(record, RUNNING)
        record.started = record.started or time.time()
        payload = self.backend.share(self._payloads[nid]) if count > 1 else self._payloads[nid]
        for i in range(count):
            eid = f"{nid}[{i}]"
            if eid not in self.run.steps:
                self.run.steps[eid] = self._record(eid, inv.step.name, map_index=i)
            self._set(self.run.steps[eid], RUNNING)
        token = f"{self.run.id}/{nid}"
        stamp = time.time_ns()
        handles = self.backend.call_many(
            run_node, [(token, payload, upstream, i) for i in range(count)],
            keys=[f"ductwork-{nid}[{i}]-{self.run.id}-{stamp}" for i in range(count)])
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
            record = self.run.steps[nid]
            record.error = (
                f"{inv.step.name}.map needs a list to map over, but its input (output "
                f"'{source.name}' of step '{source.node}') is not a list. Make the upstream "
                "step return a list.\n"
            )
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
        from ductwork.runtime.keys.cache_key import CacheKeyError, key_basis

        config = store_config(self.store)
        self._broken: dict[str, str] = {}
        self._bases: dict[str, Any] = {}
        environment = getattr(self.backend, "environment", None)
        specs = {}
        for nid, inv in self.plan.invocations.items():
            step = inv.step
            basis = None
            if step.options.cache:
                try:
                    basis = key_basis(step, whole=inv.is_map,
                                      environment=environment(step) if environment else None)
                except CacheKeyError as exc:
                    self._broken[nid] = f"{exc}\n"
                    continue
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
        sid = nid if index is None else f"{nid}[{index}]"
        if isinstance(result, NodeResult):
            return result
        # The task returned nothing: its workers died more often than the cluster allows,
        # or it was cancelled. The backend says which.
        describe = getattr(result, "describe", None)
        return NodeResult(sid, FAILED, error=describe(sid) if describe else (
            f"Step '{sid}' could not be run: {type(result).__name__}: {result}\n"))

    def _collect(self, nid: str, index: int | None, result: NodeResult) -> None:
        record = self.run.steps[result.sid]
        if result.timed_out and result.where:
            restart = getattr(self.backend, "restart", None)
            if restart is not None:
                restart(result.where)
        if result.status == BLOCKED:
            return  # waits for the next pass
        if result.status == CORRUPT:
            self._corrupt.add(result.cause or "")
            record.note = "rerun: an input failed verification and was recomputed"
            return
        self._fill(record, result)
        if index is None:
            if result.status == SUCCEEDED:
                self.done[nid] = result
                self._close(nid)
            elif result.status == SKIPPED:
                self._skip(nid, result.cause or "")
            else:
                self._fail(nid)
            return
        self._results[nid][index] = result
        if result.status == FAILED:
            parent = self.run.steps[nid]
            parent.error = parent.error or f"element {index} failed:\n{result.error}"
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
        if result.status == SUCCEEDED:
            for name, ref in result.refs.items():
                record.set_output(name, ref, None, known=False)
        else:
            record.error = result.error
        self._set(record, result.status)

    def _finish_map(self, nid: str) -> None:
        results = self._results[nid]
        record = self.run.steps[nid]
        record.finished = time.time()
        statuses = {r.status for r in results}
        if FAILED in statuses:
            self._fail(nid)
        elif SKIPPED in statuses:
            cause = next(r.cause for r in results if r.status == SKIPPED)
            record.error = f"not run: upstream step '{cause}' failed"
            self._skip(nid, cause or "")
        elif statuses <= {SUCCEEDED}:
            self.done[nid] = results
            record.set_output("output", upstream_refs({nid: results})[nid]["output"])
            record.cached = all(r.cached for r in results)
            self._set(record, SUCCEEDED)
            self._close(nid)

    def _close(self, nid: str) -> None:
        """A node is over: start what waited for it (maps waiting for a length)."""
        self._closed.add(nid)
        inv = self.plan.invocations[nid]
        if inv.is_map and not self._results.get(nid):
            self.done[nid] = []
            record = self.run.steps[nid]
            record.set_output("output", GatherRef.of([]))
            record.finished = time.time()
            self._set(record, SUCCEEDED)
        for dep in self._dependents[nid]:
            self._submit_if_ready(dep)

    def _fail(self, nid: str) -> None:
        self._closed.add(nid)
        self._set(self.run.steps[nid], FAILED)
        self._skip_unsubmitted(nid, nid)

    def _skip(self, nid: str, cause: str) -> None:
        self._closed.add(nid)
        self._set(self.run.steps[nid], SKIPPED)
        self._skip_unsubmitted(nid, cause)

    def _skip_unsubmitted(self, nid: str, cause: str) -> None:
        # Nodes already submitted skip themselves on the worker; the others never will be.
        stack = list(self._dependents[nid])
        while stack:
            dep = stack.pop()
            if dep in self._handles or dep in self._closed:
                continue
            self._closed.add(dep)
            record = self.run.steps[dep]
            record.error = f"not run: upstream step '{cause}' failed"
            self._set(record, SKIPPED)
            stack.extend(self._dependents[dep])

    def _forget_producers(self, digests: set[str]) -> None:
        """Drop the producers of corrupt artifacts, and everything after them, from ``done``."""
        stack = [nid for nid, result in self.done.items()
                 if any(d in digests for r in (result if isinstance(result, list) else [result])
                        for ref in (r.refs or {}).values() for d in iter_digests(ref))]
        warnings.warn(
            f"artifact {', '.join(sorted(d[:12] for d in digests))} in {self.store.url} failed "
            f"verification; recomputing {', '.join(sorted(stack)) or 'its producer'}",
            RuntimeWarning, stacklevel=2)
        while stack:
            nid = stack.pop()
            if self.done.pop(nid, None) is not None:
                record = self.run.steps[nid]
                record.cached, record.finished = False, None
                record.note = "recomputed: a stored output failed verification"
            stack.extend(self._dependents[nid])

    # -- the run's result -----------------------------------------------------------------

    def _resolve_result(self) -> None:
        refs = {nid: upstream_refs({nid: r})[nid] for nid, r in self.done.items()}
        result = substitute(self.plan.result,
                            lambda out: refs.get(out.node, {}).get(out.name))
        self.run.result = result
        self.run._outputs = map_refs(result, self._load)

    def _load(self, ref: Any) -> Any:
        from ductwork.runtime.engine.job import resolve_refs

        return resolve_refs(ref, self.store, self._memo)

    def _set(self, record: StepRun, status: str) -> None:
        if record.status != status:
            record.status = status
            self.progress.changed(record)

    def _record(self, sid: str, step: str, map_index: int | None = None) -> StepRun:
        return StepRun(sid, step, map_index=map_index, run_id=self.run.id, loader=self._load)


def store_config(store: Any) -> dict[str, Any]:
    """How a worker opens the same store: its URL and options, without credentials.

    A task's arguments pass through the cluster's scheduler and may be logged there,
    so credentials are not sent: each worker finds its own in its environment.
    """
    from ductwork.runtime.data.datastore import is_secret, redact_url

    options = getattr(store, "storage_options", {}) or {}
    return {"url": redact_url(store.url),
            "options": {k: v for k, v in options.items() if not is_secret(k)}}
