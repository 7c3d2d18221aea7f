"""What a run leaves behind: ``Run`` and its ``StepRun`` records.

Both are plain attrs records of data that can be persisted as they are;
nothing here executes anything.
"""

from __future__ import annotations

import datetime as _dt
import secrets
from typing import Any

import attrs

PENDING, RUNNING, SUCCEEDED, FAILED, SKIPPED = (
    "pending", "running", "succeeded", "failed", "skipped",
)


def new_run_id() -> str:
    """Return a run id that sorts by start time: ``20261126-011503-3fa2c1``."""
    now = _dt.datetime.now(_dt.UTC)
    return f"{now:%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


@attrs.define(eq=False)
class StepRun:
    """One step's part in a run: state, timing, outputs (by output name), error, logs."""

    id: str
    step: str
    status: str = PENDING
    cached: bool = False
    attempts: int = 0
    started: float | None = None
    finished: float | None = None
    outputs: dict[str, Any] = attrs.field(factory=dict)
    error: str | None = None
    logs: str = ""
    metrics: dict[str, Any] = attrs.field(factory=dict)
    map_index: int | None = None

    @property
    def duration(self) -> float | None:
        """Seconds from start to finish, or None if it never ran."""
        if self.started is None or self.finished is None:
            return None
        return self.finished - self.started

    @property
    def output(self) -> Any:
        """The value of a single-output step."""
        if len(self.outputs) != 1:
            raise AttributeError(
                f"step '{self.id}' has outputs {sorted(self.outputs)}; use .outputs[name]"
            )
        return next(iter(self.outputs.values()))


@attrs.define(eq=False)
class Run:
    """One execution of a pipeline."""

    id: str
    pipeline: str
    params: dict[str, Any]
    backend: str
    status: str = RUNNING
    steps: dict[str, StepRun] = attrs.field(factory=dict)
    outputs: Any = None
    started: float | None = None
    finished: float | None = None
    store: str | None = None

    @property
    def duration(self) -> float | None:
        """Seconds from start to finish of the whole run."""
        if self.started is None or self.finished is None:
            return None
        return self.finished - self.started

    @property
    def failed_steps(self) -> list[StepRun]:
        """The step runs that failed, in the order they were recorded."""
        return [s for s in self.steps.values() if s.status == FAILED]

    def __repr__(self) -> str:
        counts: dict[str, int] = {}
        for s in self.steps.values():
            counts[s.status] = counts.get(s.status, 0) + 1
        summary = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
        return f"<Run {self.id} of {self.pipeline}: {self.status} ({summary})>"
