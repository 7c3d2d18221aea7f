"""What a run leaves behind: ``Run`` and its ``StepRun`` records.

A status is a ``Status`` (a ``StrEnum``: it is written to the run store and JSON
as the plain string it equals). Outputs are held by reference (an artifact's
digest) and loaded from the artifact store only when asked for, so looking at a
run -- or running a pipeline whose steps are all cached -- never reads a large
value it does not need. Values a step produced in this process are kept, so they
are not read back either.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from ductwork.dsl.slotted import Record, fill
from ductwork.runtime.status import Status

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    Loader = Callable[[Any], Any]


def new_run_id() -> str:
    """Return a run id that sorts by start time: ``20261126-011503-3fa2c1``."""
    # time, not datetime, and os.urandom, not the secrets module (which loads OpenSSL
    # through hmac): neither module is needed anywhere else in a run.
    return f"{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{os.urandom(3).hex()}"


def _span(started: float | None, finished: float | None) -> float | None:
    return None if started is None or finished is None else finished - started


class StepRun(Record):
    """One step's part in a run: state, timing, outputs (by output name), error, logs.

    A cache hit (``cached``) did not run: ``cached_from`` names the run whose execution
    made its outputs, and its ``metrics`` and ``logs`` are that run's. None when history
    no longer has that run (removed by gc, lost, damaged): then ``note`` says so.
    """

    __slots__ = ("id", "step", "status", "cached", "cached_from", "attempts", "started", "finished",
                 "output_refs", "error", "logs", "metrics", "map_index", "key", "components",
                 "run_id", "note", "_values", "_loader", "_explain")
    id: str
    step: str
    status: Status
    cached: bool
    cached_from: str | None
    attempts: int
    started: float | None
    finished: float | None
    output_refs: dict[str, Any]
    error: str | None
    logs: str
    metrics: dict[str, Any]
    map_index: int | None
    key: str | None
    components: dict[str, str] | None
    run_id: str | None
    note: str | None
    _values: dict[str, Any]
    _loader: Loader | None
    _explain: Callable[[StepRun], str] | None

    # A record of one run's step, compared by identity: two steps that ran alike are two.
    __eq__ = object.__eq__
    __hash__ = object.__hash__

    def __init__(self, id: str, step: str, status: Status = Status.PENDING,
                 cached: bool = False, cached_from: str | None = None, attempts: int = 0,
                 started: float | None = None, finished: float | None = None,
                 output_refs: dict[str, Any] | None = None, error: str | None = None,
                 logs: str = "", metrics: dict[str, Any] | None = None,
                 map_index: int | None = None, key: str | None = None,
                 components: dict[str, str] | None = None, run_id: str | None = None,
                 note: str | None = None, values: dict[str, Any] | None = None,
                 loader: Loader | None = None,
                 explain: Callable[[StepRun], str] | None = None) -> None:
        self.id, self.step, self.status, self.cached = id, step, status, cached
        self.cached_from, self.attempts, self.started, self.finished = (
            cached_from, attempts, started, finished)
        self.output_refs = {} if output_refs is None else output_refs
        self.error, self.logs = error, logs
        self.metrics = {} if metrics is None else metrics
        self.map_index, self.key, self.components, self.run_id, self.note = (
            map_index, key, components, run_id, note)
        self._values = {} if values is None else values
        self._loader, self._explain = loader, explain

    @property
    def duration(self) -> float | None:
        """Seconds from start to finish, or None if it never ran."""
        return _span(self.started, self.finished)

    @property
    def outputs(self) -> dict[str, Any]:
        """Output values by name, read from the artifact store on first access."""
        for name, ref in self.output_refs.items():
            if name not in self._values:
                if self._loader is None:
                    raise LookupError(f"step '{self.id}': no store to load output '{name}' from")
                self._values[name] = self._loader(ref)
        return {name: self._values[name] for name in self.output_refs}

    @property
    def output(self) -> Any:
        """The value of a single-output step."""
        if len(self.output_refs) != 1:
            raise AttributeError(
                f"step '{self.id}' has outputs {sorted(self.output_refs)}; use .outputs[name]"
            )
        return next(iter(self.outputs.values()))

    def output_value(self, name: str) -> Any:
        """One output's value, read from the artifact store on first access (not the others)."""
        if name not in self._values:
            if self._loader is None:
                raise LookupError(f"step '{self.id}': no store to load output '{name}' from")
            self._values[name] = self._loader(self.output_refs[name])
        return self._values[name]

    @property
    def why(self) -> str:
        """Why this step was a cache hit or ran: which part of its key changed."""
        if self._explain is None:
            return "no run history is available to explain this step"
        return self._explain(self)

    def set_output(self, name: str, ref: Any, value: Any = None, *, known: bool = False) -> None:
        """Record an output by reference, with its value when it is already in memory."""
        self.output_refs[name] = ref
        if known:
            self._values[name] = value


class Run(Record):
    """One execution of a pipeline."""

    __slots__ = ("id", "pipeline", "params", "backend", "status", "steps", "started", "finished",
                 "store", "git_commit", "git_dirty", "ductwork_version", "python_version", "graph",
                 "result", "module", "source_file", "_outputs", "_resolve")
    id: str
    pipeline: str
    params: dict[str, Any]
    backend: str
    status: Status
    steps: dict[str, StepRun]
    started: float | None
    finished: float | None
    store: str | None
    git_commit: str | None
    git_dirty: bool | None
    ductwork_version: str | None
    python_version: str | None
    graph: dict[str, Any] | None
    result: Any
    module: str | None  # the pipeline's module and file: two pipelines named alike
    source_file: str | None
    _outputs: Any
    _resolve: Callable[[Any], Any] | None

    __eq__ = object.__eq__  # one execution: compared by identity
    __hash__ = object.__hash__

    def __init__(self, id: str, pipeline: str, params: dict[str, Any], backend: str,
                 status: Status = Status.RUNNING, steps: dict[str, StepRun] | None = None,
                 started: float | None = None, finished: float | None = None,
                 store: str | None = None, git_commit: str | None = None,
                 git_dirty: bool | None = None, ductwork_version: str | None = None,
                 python_version: str | None = None, graph: dict[str, Any] | None = None,
                 result: Any = None, module: str | None = None, source_file: str | None = None,
                 outputs: Any = None, resolve: Callable[[Any], Any] | None = None) -> None:
        fill(self, id, pipeline, params, backend, status, {} if steps is None else steps,
             started, finished, store, git_commit, git_dirty, ductwork_version,
             python_version, graph, result, module, source_file, outputs, resolve)

    @property
    def duration(self) -> float | None:
        """Seconds from start to finish of the whole run."""
        return _span(self.started, self.finished)

    @property
    def outputs(self) -> Any:
        """The pipeline's return structure filled with values (loaded on first access)."""
        if self._outputs is None and self._resolve is not None:
            self._outputs = self._resolve(self.result)
        return self._outputs

    def _repr_html_(self) -> str:
        from ductwork.runtime.ui.html import run_html

        return run_html(self)

    @property
    def failed_steps(self) -> list[StepRun]:
        """The step runs that failed, in the order they were recorded."""
        return [s for s in self.steps.values() if s.status == Status.FAILED]

    def __repr__(self) -> str:
        counts: dict[str, int] = {}
        for s in self.steps.values():
            key = "cached" if s.cached else s.status
            counts[key] = counts.get(key, 0) + 1
        summary = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
        return f"<Run {self.id} of {self.pipeline}: {self.status}" + (
            f" ({summary})>" if summary else ">")
