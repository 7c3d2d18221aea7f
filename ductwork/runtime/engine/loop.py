"""The scheduling loop: serve nodes from the cache or dispatch them, collect results.

An iterative ready queue, after dask's ``local.py``: a node whose dependencies
are all done is appended to ``ready``; the loop pops it and takes it through
``node.py``'s decisions -- its key (from its code and its inputs' digests), a hit
(recorded without reading anything) or a job queued for its backend. Finishing
a node never starts another directly: it appends the nodes it freed to ``ready``,
so a chain of 10,000 cached steps costs 10,000 turns of the loop, not a stack
10,000 frames deep. A ``map`` node, once ready, reads its list and does the same
per element, queueing only the elements that miss; it finishes when every
element has.

All reading of a node's inputs happens when it is started, before any of its
jobs is queued. So when a stored artifact turns out to be corrupt (the store
checks every read), the node waits again for the producer, which is started
again, misses (the store dropped the bad object) and recomputes it. A job whose
worker found an input corrupt is parked until its producer is redone.

A failed job is queued again while ``node.may_retry`` says so; a failed node
marks everything downstream ``skipped``; nodes that do not depend on it go on,
so their outputs are kept. Backends differ only in ``submit``: at most
``backend.capacity`` jobs of each are in flight.
"""

from __future__ import annotations

import time
import warnings
from collections import deque

from ductwork.dsl.core import Output
from ductwork.dsl.trace import Invocation, Plan, substitute
from ductwork.runtime.engine.backend import Backend, BackendError
from ductwork.runtime.engine.futures import FIRST_COMPLETED, wait
from ductwork.runtime.engine.job import Job, JobResult
from ductwork.runtime.engine.node import (
    FORCED_NOTE,
    RECOMPUTED_NOTE,
    RERUN_NOTE,
    Basis,
    CacheKeyError,
    NotAList,
    basis_of,
    corrupt_message,
    element_failed,
    element_id,
    key_of,
    lookup,
    map_items,
    may_retry,
    node_of,
    producers_of,
    round_trips,
    uncollected,
)
from ductwork.runtime.engine.state import RunState
from ductwork.runtime.records.run import Run, StepRun
from ductwork.runtime.status import Status
from ductwork.runtime.store.artifacts import CorruptArtifact

TYPE_CHECKING = False
if TYPE_CHECKING:
    from concurrent.futures import Future
    from typing import Any


_MUST_RUN: dict[str, Any] = {}  # _hit's answer for a call that has to run (a miss)
_UNSET: Any = object()


class _Map:
    """A started map node: its items, its elements' refs as they come, how many are left."""

    __slots__ = ("items", "left", "parts")

    def __init__(self, items: list[Any], parts: list[Any], left: int) -> None:
        self.items, self.parts, self.left = items, parts, left


class Loop:
    """Runs one plan on backends that take single jobs, filling in ``run.steps`` and the
    run's result. ``backends`` maps None to the run's backend and each compute target
    that steps name to its own."""

    def __init__(self, plan: Plan, backends: dict[str | None, Backend], run: Run, store: Any,
                 force: frozenset[str] = frozenset(), progress: Any = None,
                 logs: str | None = None) -> None:
        self.state = RunState(plan, run, store, force, progress)
        self.plan, self.run, self.store, self.force = plan, run, store, force
        #: The folder steps' output is written through to while they run (None: not watched).
        self.logs = logs
        self.backends = backends
        #: Each finished node's output refs, by output name.
        self.refs: dict[str, dict[str, Any]] = {}
        self._waiting = {nid: set(deps) for nid, deps in self.state.deps.items()}
        self._ready: deque[str] = deque(n for n, waiting in self._waiting.items() if not waiting)
        self._queues: dict[str | None, deque[Job]] = {name: deque() for name in backends}
        self._bases: dict[str, Basis | None] = {}
        self._shared_bases: dict[tuple[int, bool, str | None], Basis | None] = {}
        self._maps: dict[str, _Map] = {}
        self._failed: set[str] = set()
        #: Jobs whose worker found an input corrupt, waiting for its producer to be redone.
        self._parked: dict[str, list[str]] = {}

    # -- the loop -------------------------------------------------------------------------

    def execute(self) -> None:
        """Run every node that can run; leave the result in the run."""
        try:
            for _ in range(len(self.plan.invocations) + 1):
                self._drain()
                try:
                    self.state.resolve_result(self.refs)
                    return
                except CorruptArtifact as exc:
                    self._rewind(None, exc.digest)
            raise RuntimeError("stored artifacts keep failing verification; check the store's "
                               "disk")
        finally:
            self.state.name_producers()

    def _drain(self) -> None:
        in_flight: dict[Future[JobResult], tuple[str | None, Job]] = {}
        busy = dict.fromkeys(self.backends, 0)
        while True:
            while self._ready:
                self._start(self._ready.popleft())
            self.state.flush_leases(force=False)  # written in batches; see records/leases
            for name, queue in self._queues.items():
                backend = self.backends[name]
                while queue and busy[name] < max(1, backend.capacity):
                    job = queue.popleft()
                    record = self.run.steps[job.step_id]
                    record.attempts = job.attempt
                    self.state.set(record, Status.RUNNING)
                    in_flight[backend.submit(job)] = (name, job)
                    busy[name] += 1
            if not in_flight:
                if self._ready:
                    continue
                return
            done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            for future in done:
                name, job = in_flight.pop(future)
                busy[name] -= 1
                self._finish(job, future.result())

    # -- starting a node ------------------------------------------------------------------

    def _start(self, sid: str) -> None:
        """Take a ready node (or a parked element) to a hit or to queued jobs."""
        nid = node_of(sid) if sid[-1] == "]" else sid  # most are nodes, not map elements
        record = self.run.steps[sid]
        if nid in self._failed or (record if nid is sid else self.run.steps[nid]).status \
                == Status.SKIPPED:
            return
        inv = self.plan.invocations[nid]
        self.state.set(record, Status.RUNNING)
        try:
            if sid != nid:
                self._start_element(nid, inv, record)
            elif inv.is_map:
                self._start_map(nid, inv, record)
            else:
                self._start_call(nid, inv, record)
        except CorruptArtifact as exc:
            self._rewind(nid, exc.digest)

    def _start_call(self, nid: str, inv: Invocation, record: StepRun) -> None:
        refs = substitute(inv.arguments, self._ref)
        if self._must_run(nid, nid, record, inv, refs):
            self._enqueue(nid, inv, refs if self._reads_store(inv) else
                          substitute(inv.arguments, self._value))

    def _start_map(self, nid: str, inv: Invocation, record: StepRun) -> None:
        try:
            items = map_items(inv.step, substitute(inv.arguments[inv.map_over], self._value))
        except NotAList as exc:
            record.error = str(exc)
            self._fail(nid)
            return
        record.started = time.time()
        refs = substitute(inv.arguments, self._ref)
        self._maps[nid] = _Map(items, [None] * len(items), len(items))
        missing, hits = [], []
        with uncollected():
            for i, item in enumerate(items):
                sid = element_id(nid, i)
                element = self.state.element(nid, i, sid)
                self.state.set(element, Status.RUNNING)
                hit = self._hit(nid, sid, element, inv, {**refs, inv.map_over: item})
                if hit is _MUST_RUN:
                    missing.append(i)
                elif hit is not None:
                    hits.append((sid, element, hit))
            self._serve(hits)  # together: their producers are found in one query per 500
        if missing:
            values = refs if self._reads_store(inv) else substitute(inv.arguments, self._value)
            for i in missing:
                self._enqueue(element_id(nid, i), inv, {**values, inv.map_over: items[i]})
        if not items:
            self._complete(nid, {"output": self.state.finish_map(nid, [], cached=False)})

    def _start_element(self, nid: str, inv: Invocation, record: StepRun) -> None:
        """Start one element again (its job was parked), with key and inputs taken afresh."""
        item = self._maps[nid].items[record.map_index]  # type: ignore[index]
        refs = {**substitute(inv.arguments, self._ref), inv.map_over: item}
        if self._must_run(nid, record.id, record, inv, refs):
            values = refs if self._reads_store(inv) else {
                **substitute(inv.arguments, self._value), inv.map_over: item}
            self._enqueue(record.id, inv, values)

    def _must_run(self, nid: str, sid: str, record: StepRun, inv: Invocation,
                  arguments: dict[str, Any]) -> bool:
        """Key call ``sid`` of node ``nid`` and serve a hit; True when it has to run."""
        hit = self._hit(nid, sid, record, inv, arguments)
        if hit is _MUST_RUN:
            return True
        if hit is not None:
            self.state.served([(record, hit)])
            self._succeed(sid, record, hit)
        return False

    def _hit(self, nid: str, sid: str, record: StepRun, inv: Invocation,
             arguments: dict[str, Any]) -> dict[str, Any] | None:
        """Key call ``sid`` of node ``nid`` and look it up: the hit's refs, ``_MUST_RUN``, or
        None when keying failed (the record is failed)."""
        record.key = record.components = None
        try:
            basis = self._basis(nid, inv)
            if basis is None:
                return _MUST_RUN
            record.key, record.components = key_of(basis, inv.step, arguments)
        except (CacheKeyError, BackendError) as exc:
            record.error = f"{exc}\n"
            self._fail_job(sid, record)
            return None
        forced = nid in self.force
        if forced:
            record.note = FORCED_NOTE
        hit = lookup(self.store, record.key, forced, step=inv.step,
                     whole=record.map_index is not None)
        if hit is None:
            return _MUST_RUN
        record.started = record.finished = time.time()
        return hit

    def _serve(self, hits: list[tuple[str, StepRun, dict[str, Any]]]) -> None:
        """Record cache hits as served and succeeded."""
        if hits:
            self.state.served([(record, refs) for _, record, refs in hits])
        for sid, record, refs in hits:
            self._succeed(sid, record, refs)

    def _basis(self, nid: str, inv: Invocation) -> Basis | None:
        # Computed when the node is first started, not before the run: a hash_paths file
        # may be written by an upstream step, an environment variable set by one.
        basis = self._bases.get(nid, _UNSET)
        if basis is not _UNSET:
            return basis
        step = inv.step
        options, whole = step.options, inv.map_over is not None
        environment = self.backends[options.compute if options.compute in self.backends
                                    else None].environment(step)
        if options.hash_paths or options.env_vars:
            basis = basis_of(step, whole, environment)
        else:  # the same for every call of the step in this run (a chain, a loop)
            shared = (id(step), whole, environment)
            basis = self._shared_bases.get(shared, _UNSET)
            if basis is _UNSET:
                basis = self._shared_bases[shared] = basis_of(step, whole, environment)
        self._bases[nid] = basis
        return basis

    def _backend_name(self, inv: Invocation) -> str | None:
        compute = inv.step.options.compute
        return compute if compute in self.backends else None

    def _reads_store(self, inv: Invocation) -> bool:
        # A backend whose workers read inputs from the store gets refs, not values.
        return self.backends[self._backend_name(inv)].reads_store

    def _enqueue(self, sid: str, inv: Invocation, arguments: dict[str, Any],
                 attempt: int = 1) -> None:
        args, kwargs = inv.step.call_arguments(arguments)
        record = self.run.steps[sid]
        job = Job(sid, inv.step, args, kwargs, attempt, record.key,
                  whole=record.map_index is not None, run_id=self.run.id,
                  log_to=None if self.logs is None else _log_file(self.logs, sid))
        self._queues[self._backend_name(inv)].append(job)

    # -- results --------------------------------------------------------------------------

    def _finish(self, job: Job, result: JobResult) -> None:
        record = self.run.steps[job.step_id]
        if record.started is None:
            record.started = result.started
        record.finished = result.finished
        record.logs += result.logs
        record.metrics.update(result.metrics)
        if result.error is None:
            assert result.refs is not None
            self._succeed(job.step_id, record, result.refs, result.values)
            return
        if result.corrupt is not None:
            producers = self._rewind(None, result.corrupt)
            if producers:
                record.note = RERUN_NOTE
                self._parked.setdefault(producers[0], []).append(job.step_id)
                return
        if may_retry(job.step, job.attempt):
            self._queues[self._backend_name(self.plan.invocations[node_of(job.step_id)])] \
                .append(job.replace(attempt=job.attempt + 1))
            return
        record.error = result.error
        self._fail_job(job.step_id, record)

    def _succeed(self, sid: str, record: StepRun, refs: dict[str, Any],
                 values: dict[str, Any] | None = None) -> None:
        state = self.state
        state.leases.add(refs, record.key)  # before it is recorded: gc must keep these
        if not record.cached:  # a hit was made by another run (or earlier in this one)
            state.made(record)
        for name, ref in refs.items():
            known = values is not None and round_trips(ref)
            record.set_output(name, ref, values[name] if known else None, known=known)
            if known:
                self.state.memo[ref.digest] = values[name]
        self.state.set(record, Status.SUCCEEDED)
        if record.map_index is None:
            self._complete(sid, refs)
            return
        nid = node_of(sid)
        self._maps[nid].parts[record.map_index] = refs["output"]
        self._element_done(nid)

    def _fail_job(self, sid: str, record: StepRun) -> None:
        self.state.set(record, Status.FAILED)
        if record.map_index is None:
            self._fail(sid)
            return
        nid = node_of(sid)
        parent = self.run.steps[nid]
        parent.error = parent.error or element_failed(record.map_index, record.error)
        self._fail(nid)
        self._element_done(nid)

    def _element_done(self, nid: str) -> None:
        progress = self._maps[nid]
        progress.left -= 1
        if progress.left == 0:
            self.run.steps[nid].finished = time.time()
            if nid not in self._failed:
                count = len(progress.parts)
                cached = all(self.run.steps[element_id(nid, i)].cached for i in range(count))
                self._complete(nid, {"output": self.state.finish_map(nid, progress.parts,
                                                                      cached)})

    def _complete(self, nid: str, refs: dict[str, Any]) -> None:
        """A node is done: free what waited for it (appended to ``ready``, never started
        from here)."""
        record = self.run.steps[nid]
        if record.finished is None:
            record.finished = time.time()
        if record.status != Status.SUCCEEDED:  # a call's record is, already; a map's not yet
            self.state.set(record, Status.SUCCEEDED)
        self.refs[nid] = refs
        self._ready.extend(self._parked.pop(nid, ()))
        for dep in self.state.dependents[nid]:
            waiting = self._waiting[dep]
            if nid in waiting:
                waiting.discard(nid)
                if not waiting:
                    self._ready.append(dep)

    def _fail(self, nid: str) -> None:
        if nid in self._failed:
            return
        self._failed.add(nid)
        self.state.set(self.run.steps[nid], Status.FAILED)
        self.state.skip_after(nid, nid, lambda dep: self.run.steps[dep].status == Status.SKIPPED)

    # -- values and corruption ------------------------------------------------------------

    def _ref(self, out: Output) -> Any:
        return self.refs[out.node][out.name]

    def _value(self, out: Output) -> Any:
        return self.state.load(self.refs[out.node][out.name])

    def _rewind(self, consumer: str | None, digest: str) -> list[str]:
        """Start the producers of a corrupt artifact again; ``consumer`` waits for them."""
        producers = producers_of(digest, self.refs)
        warnings.warn(corrupt_message([digest], self.store.url, producers), RuntimeWarning,
                      stacklevel=2)
        for nid in producers:
            del self.refs[nid]
            record = self.run.steps[nid]
            if record.cached:
                self.state.unserved(record)
            record.finished = None
            record.note = RECOMPUTED_NOTE
            if consumer is not None:
                self._waiting[consumer].add(nid)
            self._ready.append(nid)
        return producers


def _log_file(folder: str, step_id: str) -> str:
    """``livelog.log_file``, imported only by a run someone watches (``logs=``)."""
    from ductwork.runtime.engine.livelog import log_file

    return log_file(folder, step_id)
