"""The one scheduling loop: dispatch every ready step to a backend, collect results.

State is per node (an invocation id): how many of its dependencies are still
unfinished. A node whose count reaches zero becomes ready. A ``map`` node,
once ready, resolves its list and becomes one task per element, all ready at
once; it completes when every element has. A failed node (after its retries)
marks everything downstream ``skipped``; nodes that do not depend on it go
on, so their outputs are kept.

Backends differ only in ``submit``; at most ``backend.capacity`` tasks are in
flight, and the loop blocks only on the futures it holds.
"""

from __future__ import annotations

import inspect
import time
from collections import defaultdict, deque
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from typing import Any

import attrs

from ductwork.dsl.core import Output
from ductwork.dsl.trace import Invocation, Plan, substitute
from ductwork.runtime.backend import Backend
from ductwork.runtime.execute import Job, JobResult
from ductwork.runtime.run import FAILED, RUNNING, SKIPPED, SUCCEEDED, Run, StepRun


@attrs.define
class _Task:
    node: str
    index: int | None = None
    attempt: int = 1

    @property
    def step_id(self) -> str:
        return self.node if self.index is None else f"{self.node}[{self.index}]"


class Scheduler:
    """Runs one plan on one backend, filling in ``run.steps``; returns the output values."""

    def __init__(self, plan: Plan, backend: Backend, run: Run) -> None:
        self.plan = plan
        self.backend = backend
        self.run = run
        self.values: dict[tuple[str, str], Any] = {}
        self._waiting = {nid: set(inv.deps) for nid, inv in plan.invocations.items()}
        self._dependents: dict[str, list[str]] = defaultdict(list)
        for nid, inv in plan.invocations.items():
            for dep in inv.deps:
                self._dependents[dep].append(nid)
        self._tasks: deque[_Task] = deque()
        self._items: dict[str, Sequence[Any]] = {}
        self._results: dict[str, list[Any]] = {}
        self._left: dict[str, int] = {}
        self._failed: set[str] = set()

    def execute(self) -> dict[tuple[str, str], Any]:
        """Run every node that can run; return values by ``(node, output name)``."""
        for nid, inv in self.plan.invocations.items():
            self.run.steps[nid] = StepRun(nid, inv.step.name)
        for nid, waiting in self._waiting.items():
            if not waiting:
                self._start(nid)
        in_flight: dict[Future[JobResult], _Task] = {}
        capacity = max(1, self.backend.capacity)
        while self._tasks or in_flight:
            while self._tasks and len(in_flight) < capacity:
                task = self._tasks.popleft()
                in_flight[self._submit(task)] = task
            done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            for future in done:
                self._finish(in_flight.pop(future), future.result())
        return self.values

    def _start(self, nid: str) -> None:
        inv = self.plan.invocations[nid]
        record = self.run.steps[nid]
        record.status = RUNNING
        if not inv.is_map:
            self._tasks.append(_Task(nid))
            return
        items = substitute(inv.arguments[inv.map_over], self._lookup)
        if not isinstance(items, list | tuple):
            record.error = (
                f"{inv.step.name}.map needs a list to map over, but its input is a "
                f"{type(items).__name__}. Make the upstream step return a list.\n"
            )
            self._fail(nid)
            return
        self._items[nid] = items
        self._results[nid] = [None] * len(items)
        self._left[nid] = len(items)
        record.started = time.time()
        if not items:
            self._complete(nid, {"output": []})
        for i in range(len(items)):
            self.run.steps[f"{nid}[{i}]"] = StepRun(f"{nid}[{i}]", inv.step.name, map_index=i)
            self._tasks.append(_Task(nid, i))

    def _submit(self, task: _Task) -> Future[JobResult]:
        inv = self.plan.invocations[task.node]
        arguments = substitute(inv.arguments, self._lookup)
        if task.index is not None:
            arguments = {**arguments, inv.map_over: self._items[task.node][task.index]}
        args, kwargs = _call_args(inv, arguments)
        record = self.run.steps[task.step_id]
        record.status = RUNNING
        record.attempts = task.attempt
        return self.backend.submit(Job(task.step_id, inv.step, args, kwargs, task.attempt))

    def _finish(self, task: _Task, result: JobResult) -> None:
        inv = self.plan.invocations[task.node]
        record = self.run.steps[task.step_id]
        if record.started is None:
            record.started = result.started
        record.finished = result.finished
        record.logs += result.logs
        if result.error is not None:
            if task.attempt <= inv.step.options.retries:
                self._tasks.append(attrs.evolve(task, attempt=task.attempt + 1))
                return
            record.status, record.error = FAILED, result.error
            if task.index is not None:
                node = self.run.steps[task.node]
                node.error = node.error or f"element {task.index} failed:\n{result.error}"
                self._left[task.node] -= 1
                if self._left[task.node] == 0:
                    node.finished = time.time()
                self._fail(task.node)
            else:
                self._fail(task.node)
            return
        assert result.outputs is not None
        record.status, record.outputs = SUCCEEDED, result.outputs
        if task.index is None:
            self._complete(task.node, result.outputs)
            return
        self._results[task.node][task.index] = result.outputs["output"]
        self._left[task.node] -= 1
        node = self.run.steps[task.node]
        if self._left[task.node] == 0:
            node.finished = time.time()
            if task.node not in self._failed:
                self._complete(task.node, {"output": self._results[task.node]})

    def _complete(self, nid: str, outputs: dict[str, Any]) -> None:
        record = self.run.steps[nid]
        record.status, record.outputs = SUCCEEDED, outputs
        if record.finished is None:
            record.finished = time.time()
        for name, value in outputs.items():
            self.values[(nid, name)] = value
        for dep in self._dependents[nid]:
            waiting = self._waiting[dep]
            waiting.discard(nid)
            if not waiting and self.run.steps[dep].status != SKIPPED:
                self._start(dep)

    def _fail(self, nid: str) -> None:
        if nid in self._failed:
            return
        self._failed.add(nid)
        self.run.steps[nid].status = FAILED
        stack = list(self._dependents[nid])
        while stack:
            dep = stack.pop()
            down = self.run.steps[dep]
            if down.status == SKIPPED:
                continue
            down.status = SKIPPED
            down.error = f"not run: upstream step '{nid}' failed"
            stack.extend(self._dependents[dep])

    def _lookup(self, out: Output) -> Any:
        return self.values[out.key]


def _call_args(
    inv: Invocation, arguments: dict[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    bound = inspect.BoundArguments(inv.step.signature, arguments)  # type: ignore[arg-type]
    return bound.args, bound.kwargs

