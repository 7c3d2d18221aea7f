"""Running one job: call the step function on resolved values and split its outputs.

This is the part of a run that happens where the step runs (in-process, in a
worker process, in a container); it must stay small and import little.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Mapping
from typing import Any

import attrs


@attrs.frozen
class Job:
    """One unit of work: a step function with its argument values."""

    step_id: str
    step: Any
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    attempt: int = 1


@attrs.frozen
class JobResult:
    """What came of a job: outputs by name, or the user's traceback."""

    step_id: str
    started: float
    finished: float
    outputs: dict[str, Any] | None = None
    error: str | None = None
    logs: str = ""


class OutputMismatch(Exception):
    """A step returned something that does not fit its declared outputs."""


def split_outputs(step: Any, result: Any) -> dict[str, Any]:
    """Map a step's return value onto its declared output names."""
    names = step.options.outputs
    if not step.options.multiple:
        return {names[0]: result}
    if isinstance(result, Mapping) and set(result) == set(names):
        return {name: result[name] for name in names}
    if isinstance(result, tuple) and len(result) == len(names):
        return dict(zip(names, result, strict=True))
    got = f"a tuple of {len(result)}" if isinstance(result, tuple) else type(result).__name__
    raise OutputMismatch(
        f"Step '{step.name}' declares {len(names)} outputs ({', '.join(names)}) but returned "
        f"{got}. Return a tuple of {len(names)} values in that order, or a dict with those keys."
    )


def execute(job: Job) -> JobResult:
    """Run ``job`` here and now, turning any exception into a formatted traceback."""
    started = time.time()
    try:
        result = job.step.fn(*job.args, **job.kwargs)
    except Exception as exc:
        # Drop this frame: the user wants their own traceback, starting at their step.
        tb = exc.__traceback__.tb_next if exc.__traceback__ else None
        error = "".join(traceback.format_exception(type(exc), exc, tb))
        return JobResult(job.step_id, started, time.time(), error=error)
    try:
        outputs = split_outputs(job.step, result)
    except OutputMismatch as exc:
        return JobResult(job.step_id, started, time.time(), error=f"{exc}\n")
    return JobResult(job.step_id, started, time.time(), outputs=outputs)
