"""The one scheduling loop: serve steps from the cache or dispatch them, collect results.

State is per node (an invocation id): the set of its dependencies still
unfinished. A node whose set empties is started: its cache key is computed
from its code and its inputs' digests; a hit records the stored refs and
completes it without reading anything; a miss loads its inputs and queues a
job. A ``map`` node, once started, loads its list and does the same per
element, queueing only the elements that miss; it completes when every
element has.

All reading of a node's inputs happens when it starts, before any of its jobs
is queued. So when a stored artifact turns out to be corrupt (the store checks
every read), the node simply waits again for the producer, which is restarted,
misses (the store dropped the bad object) and recomputes it.

A failed node (after its retries) marks everything downstream ``skipped``;
nodes that do not depend on it go on, so their outputs are kept. Backends
differ only in ``submit``; at most ``backend.capacity`` jobs are in flight.
"""

from __future__ import annotations

import inspect
import time
import warnings
from collections import defaultdict, deque
from concurrent.futures import FIRST_COMPLETED, Future, wait
from typing import Any

import attrs

from ductwork.dsl.core import Output
from ductwork.dsl.trace import Invocation, Plan, substitute
from ductwork.runtime.engine.backend import Backend, BackendError
from ductwork.runtime.engine.job import Job, JobResult
from ductwork.runtime.keys.cache_key import CacheKeyError, input_components, step_key
from ductwork.runtime.records.run import FAILED, RUNNING, SKIPPED, SUCCEEDED, Run, StepRun
from ductwork.runtime.store.artifacts import CorruptArtifact
from ductwork.runtime.store.refs import GatherRef, iter_digests, map_refs


class _Rewind(Exception):
    def __init__(self, digest: str) -> None:
        self.digest = digest


class Scheduler:
    """Runs one plan on one backend, filling in ``run.steps`` and ``run.result``."""

    def __init__(self, plan: Plan, backend: Backend | dict[str | None, Backend], run: Run,
                 store: Any, force: frozenset[str] = frozenset(), progress: Any = None) -> None:
        from ductwork.runtime.ui.progress import NullProgress

        self.progress = progress or NullProgress()
        # The run's backend under None, and one per compute target that steps name.
        self.backends = backend if isinstance(backend, dict) else {None: backend}
        self.plan = plan
        self.run = run
        self.store = store
        self.force = force
        self.refs: dict[tuple[str, str], Any] = {}
        self._memo: dict[str, Any] = {}
        self._waiting = {nid: set(inv.deps) for nid, inv in plan.invocations.items()}
        self._dependents: dict[str, list[str]] = defaultdict(list)
        for nid, inv in plan.invocations.items():
            for dep in inv.deps:
                self._dependents[dep].append(nid)
        self._queues: dict[str | None, deque[Job]] = {name: deque() for name in self.backends}
        self._parts: dict[str, list[Any]] = {}
        self._left: dict[str, int] = {}
        self._failed: set[str] = set()
        self._items: dict[str, Any] = {}
        # Jobs whose worker found an input corrupt, waiting for its producer to redo it.
        self._parked: dict[str, list[str]] = defaultdict(list)
        for nid, inv in plan.invocations.items():
            run.steps[nid] = self._record(nid, inv.step.name)

    # -- the loop -------------------------------------------------------------------------

    def execute(self) -> None:
        """Run every node that can run; leave refs in ``self.refs`` and the result in the run."""
        # Roots are listed first: starting one can complete it (a hit) and empty others' sets.
        for nid in [n for n, waiting in self._waiting.items() if not waiting]:
            self._start(nid)
        for _ in range(len(self.plan.invocations) + 1):
            self._loop()
            try:
                self._resolve_result()
                return
            except _Rewind as rewind:
                self._rewind(None, rewind.digest)
        raise RuntimeError("stored artifacts keep failing verification; check the store's disk")

    def _loop(self) -> None:
        in_flight: dict[Future[JobResult], tuple[str | None, Job]] = {}
        busy = dict.fromkeys(self.backends, 0)
        while in_flight or any(self._queues.values()):
            for name, queue in self._queues.items():
                backend = self.backends[name]
                while queue and busy[name] < max(1, backend.capacity):
                    job = queue.popleft()
                    record = self.run.steps[job.step_id]
                    record.attempts = job.attempt
                    self._set(record, RUNNING)
                    in_flight[backend.submit(job)] = (name, job)
                    busy[name] += 1
            done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            for future in done:
                name, job = in_flight.pop(future)
                busy[name] -= 1
                self._finish(job, future.result())

    def _resolve_result(self) -> None:
        result = substitute(self.plan.result, lambda out: self.refs.get(out.key))
        self.run.result = result
        values = map_refs(result, self._load)
        self.run._outputs = values

    # -- starting a node ------------------------------------------------------------------

    def _start(self, nid: str) -> None:
        inv = self.plan.invocations[nid]
        record = self.run.steps[nid]
        self._set(record, RUNNING)
        try:
            if inv.is_map:
                self._start_map(nid, inv, record)
            else:
                self._start_call(nid, inv, record)
        except _Rewind as rewind:
            self._rewind(nid, rewind.digest)

    def _start_call(self, nid: str, inv: Invocation, record: StepRun) -> None:
        refs = substitute(inv.arguments, self._ref)
        if not self._lookup(nid, record, inv, refs):
            return
        args = refs if self._reads_store(inv.step) else substitute(inv.arguments, self._value)
        self._enqueue(self._job(nid, inv, args))

    def _start_map(self, nid: str, inv: Invocation, record: StepRun) -> None:
        items = substitute(inv.arguments[inv.map_over], self._value)
        if not isinstance(items, list | tuple):
            record.error = (
                f"{inv.step.name}.map needs a list to map over, but its input is a "
                f"{type(items).__name__}. Make the upstream step return a list.\n"
            )
            self._fail(nid)
            return
        record.started = time.time()
        refs = substitute(inv.arguments, self._ref)
        self._items[nid] = items
        self._parts[nid] = [None] * len(items)
        self._left[nid] = len(items)
        missing = []
        for i, item in enumerate(items):
            eid = f"{nid}[{i}]"
            self.run.steps[eid] = element = self._record(eid, inv.step.name, map_index=i)
            self._set(element, RUNNING)
            if self._lookup(eid, element, inv, {**refs, inv.map_over: item}):
                missing.append(i)
        if missing:
            values = substitute(inv.arguments,
                                self._ref if self._reads_store(inv.step) else self._value)
            for i in missing:
                arguments = {**values, inv.map_over: items[i]}
                self._enqueue(self._job(f"{nid}[{i}]", inv, arguments))
        if not items:
            self._complete(nid, {"output": GatherRef.of([])})

    def _lookup(self, sid: str, record: StepRun, inv: Invocation, refs: dict[str, Any]) -> bool:
        """Compute the key and serve a hit; return True when the step has to run."""
        step = inv.step
        record.key = record.components = None
        if not step.options.cache:
            return True
        try:
            record.key, record.components = step_key(
                step, input_components(step, refs), whole=record.map_index is not None,
                environment=self._environment(step),
            )
        except (CacheKeyError, BackendError) as exc:
            record.error = f"{exc}\n"
            self._fail_task(sid, record)
            return False
        node = sid.split("[", 1)[0] if record.map_index is not None else sid
        if node in self.force:
            record.note = "regenerate was asked for"
            return True
        hit = self.store.get_key(record.key)
        if hit is None:
            return True
        record.cached = True
        record.started = record.finished = time.time()
        self._succeed(sid, record, hit)
        return False

    def _backend_name(self, step: Any) -> str | None:
        return step.options.compute if step.options.compute in self.backends else None

    def _reads_store(self, step: Any) -> bool:
        # A backend whose workers read inputs from the store gets refs, not values.
        backend = self.backends[self._backend_name(step)]
        return bool(getattr(backend, "reads_store", False))

    def _enqueue(self, job: Job) -> None:
        self._queues[self._backend_name(job.step)].append(job)

    def _environment(self, step: Any) -> str | None:
        backend = self.backends[self._backend_name(step)]
        describe = getattr(backend, "environment", None)
        return describe(step) if describe is not None else None

    def _job(self, sid: str, inv: Invocation, arguments: dict[str, Any]) -> Job:
        bound = inspect.BoundArguments(inv.step.signature, arguments)  # type: ignore[arg-type]
        record = self.run.steps[sid]
        return Job(sid, inv.step, bound.args, bound.kwargs, 1, record.key,
                   whole=record.map_index is not None, run_id=self.run.id)

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
                record.note = "rerun: an input failed verification and was recomputed"
                self._parked[producers[0]].append(job.step_id)
                return
        if job.attempt <= job.step.options.retries:
            self._enqueue(attrs.evolve(job, attempt=job.attempt + 1))
            return
        record.error = result.error
        self._fail_task(job.step_id, record)

    def _succeed(self, sid: str, record: StepRun, refs: dict[str, Any],
                 values: dict[str, Any] | None = None) -> None:
        for name, ref in refs.items():
            known = values is not None
            record.set_output(name, ref, values[name] if known else None, known=known)
            if known:
                self._memo[ref.digest] = values[name]
        self._set(record, SUCCEEDED)
        if record.map_index is None:
            self._complete(sid, refs)
            return
        node = sid.split("[", 1)[0]
        self._parts[node][record.map_index] = refs["output"]
        self._element_done(node)

    def _fail_task(self, sid: str, record: StepRun) -> None:
        self._set(record, FAILED)
        if record.map_index is None:
            self._fail(sid)
            return
        node = sid.split("[", 1)[0]
        parent = self.run.steps[node]
        parent.error = parent.error or f"element {record.map_index} failed:\n{record.error}"
        self._fail(node)
        self._element_done(node)

    def _element_done(self, node: str) -> None:
        self._left[node] -= 1
        if self._left[node] == 0:
            self.run.steps[node].finished = time.time()
            if node not in self._failed:
                self._complete(node, {"output": GatherRef.of(self._parts[node])})

    def _complete(self, nid: str, refs: dict[str, Any]) -> None:
        record = self.run.steps[nid]
        if record.map_index is None and self.plan.invocations[nid].is_map:
            record.set_output("output", refs["output"])
            count = len(self._parts[nid])
            record.cached = count > 0 and all(
                self.run.steps[f"{nid}[{i}]"].cached for i in range(count)
            )
        if record.finished is None:
            record.finished = time.time()
        self._set(record, SUCCEEDED)
        for name, ref in refs.items():
            self.refs[(nid, name)] = ref
        for sid in self._parked.pop(nid, []):
            self._requeue(sid)
        for dep in self._dependents[nid]:
            waiting = self._waiting[dep]
            if nid in waiting:
                waiting.discard(nid)
                if not waiting and dep not in self._failed and (
                    self.run.steps[dep].status != SKIPPED
                ):
                    self._start(dep)

    def _fail(self, nid: str) -> None:
        if nid in self._failed:
            return
        self._failed.add(nid)
        self._set(self.run.steps[nid], FAILED)
        stack = list(self._dependents[nid])
        while stack:
            dep = stack.pop()
            down = self.run.steps[dep]
            if down.status == SKIPPED:
                continue
            down.error = f"not run: upstream step '{nid}' failed"
            self._set(down, SKIPPED)
            stack.extend(self._dependents[dep])

    # -- values and corruption ------------------------------------------------------------

    def _ref(self, out: Output) -> Any:
        return self.refs[out.key]

    def _value(self, out: Output) -> Any:
        return self._load(self.refs[out.key])

    def _load(self, ref: Any) -> Any:
        if ref is None:
            return None
        if isinstance(ref, GatherRef):
            return [self._load(part) for part in ref.parts]
        if ref.digest not in self._memo:
            try:
                self._memo[ref.digest] = self.store.get(ref)
            except CorruptArtifact:
                raise _Rewind(ref.digest) from None
        return self._memo[ref.digest]

    def _requeue(self, sid: str) -> None:
        """Queue a parked job again, with its key and inputs taken afresh."""
        record = self.run.steps[sid]
        node = sid.rsplit("[", 1)[0] if record.map_index is not None else sid
        inv = self.plan.invocations[node]
        if record.map_index is None:
            self._start_call(node, inv, record)
            return
        item = self._items[node][record.map_index]
        refs = {**substitute(inv.arguments, self._ref), inv.map_over: item}
        if self._lookup(sid, record, inv, refs):
            values = refs if self._reads_store(inv.step) else {
                **substitute(inv.arguments, self._value), inv.map_over: item}
            self._enqueue(self._job(sid, inv, values))

    def _rewind(self, consumer: str | None, digest: str) -> list[str]:
        """Recompute the producer of a corrupt artifact, then start ``consumer`` again."""
        producers = [node for (node, _), ref in self.refs.items() if digest in iter_digests(ref)]
        warnings.warn(
            f"artifact {digest[:12]} in {self.store.url} failed verification; recomputing "
            f"{', '.join(sorted(set(producers)))}",
            RuntimeWarning,
            stacklevel=2,
        )
        for node in dict.fromkeys(producers):
            for key in [k for k in self.refs if k[0] == node]:
                del self.refs[key]
            record = self.run.steps[node]
            record.cached, record.finished = False, None
            record.note = "recomputed: a stored output failed verification"
            if consumer is not None:
                self._waiting[consumer].add(node)
            self._start(node)
        return list(dict.fromkeys(producers))

    def _set(self, record: StepRun, status: str) -> None:
        if record.status != status:
            record.status = status
            self.progress.changed(record)

    def _record(self, sid: str, step: str, map_index: int | None = None) -> StepRun:
        return StepRun(sid, step, map_index=map_index, run_id=self.run.id,
                       loader=self._load)
