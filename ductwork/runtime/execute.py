"""Running one job where the step runs: call the function, check and store its outputs.

This is the worker's half of a run (in-process, in a worker process, in a
container): it receives argument values and the step's cache key, calls the
step, checks the return value against the step's annotation, writes each
output to the artifact store (the digest is computed while writing) and the
key's index entry after them, and reports refs. It must stay small.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Mapping
from typing import Any

import attrs

from ductwork.runtime.annotations import check_outputs


@attrs.frozen
class Job:
    """One unit of work: a step function with its argument values and cache key."""

    step_id: str
    step: Any
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    attempt: int = 1
    key: str | None = None
    #: A map element keeps a multi-output step's return value whole, as one list item.
    whole: bool = False


@attrs.frozen
class JobResult:
    """What came of a job: output refs (and values, in-process), or the user's traceback."""

    step_id: str
    started: float
    finished: float
    refs: dict[str, Any] | None = None
    values: dict[str, Any] | None = None
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


def execute(job: Job, store: Any) -> JobResult:
    """Run ``job`` here and now; user errors become a formatted traceback in the result."""
    started = time.time()
    try:
        result = job.step.fn(*job.args, **job.kwargs)
    except Exception as exc:
        # Drop this frame: the user wants their own traceback, starting at their step.
        tb = exc.__traceback__.tb_next if exc.__traceback__ else None
        error = "".join(traceback.format_exception(type(exc), exc, tb))
        return JobResult(job.step_id, started, time.time(), error=error)
    try:
        if job.whole:
            values = {"output": result}
            check_outputs(job.step, split_outputs(job.step, result))
        else:
            values = split_outputs(job.step, result)
            check_outputs(job.step, values)
    except (OutputMismatch, TypeError) as exc:
        return JobResult(job.step_id, started, time.time(), error=f"{exc}\n")
    refs = {}
    for name, value in values.items():
        try:
            refs[name] = store.put(value)
        except Exception as exc:
            error = (
                f"Step '{job.step.name}': output '{name}' ({type(value).__name__}) could not be "
                f"stored: {type(exc).__name__}: {exc}. Return a value that can be serialized, or "
                "register a serializer for its type (ductwork.register_serializer).\n"
            )
            return JobResult(job.step_id, started, time.time(), error=error)
    if job.key is not None:
        # Indexed only after every output is stored: a reader never sees a partial entry.
        store.put_key(job.key, refs)
    return JobResult(job.step_id, started, time.time(), refs=refs, values=values)
