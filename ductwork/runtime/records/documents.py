"""A run as a JSON document: the one shape ``ductwork run/show/runs --json`` print and the
REST API's ``GET /api/v1/runs/{id}`` answers with (SPEC §5).

Every value is plain JSON: NaN and infinity (which JSON cannot carry) become
strings, statuses their plain string. An output is described, never loaded:
digest, serializer, size and the classes its value is made of. The stable keys:

- ``step_document``: ``id, step, status, cached, cached_from (the run whose
  execution produced a cached step's outputs), attempts, started, finished,
  duration, metrics, outputs {name: {digest, serializer, size, types}}, error,
  note`` -- exactly what the REST API shows of a step;
- ``run_summary``: ``run_id, pipeline, module, source_file, status, started,
  finished, duration, backend, store``;
- ``run_document``: the summary and ``parameters, git_commit, git_dirty,
  ductwork_version, python_version, steps`` (each step's document).
"""

from __future__ import annotations

import math

from ductwork.runtime.records.run import Run, StepRun

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["finite", "outputs_document", "run_document", "run_summary", "step_document"]


def finite(value: Any) -> Any:
    """JSON with no NaN or infinity (which JSON cannot carry): those become strings."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {str(k): finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def outputs_document(record: StepRun) -> dict[str, Any]:
    """A step's outputs by name: digest, serializer, size and types, none of them loaded."""
    from ductwork.runtime.store.refs import GatherRef

    out = {}
    for name, ref in record.output_refs.items():
        gathered = isinstance(ref, GatherRef)
        out[name] = {"digest": ref.digest, "serializer": "gather" if gathered else ref.serializer,
                     "size": ref.size,
                     "types": sorted({c for p in ref.parts for c in getattr(p, "classes", ())})
                     if gathered else list(ref.classes)}
    return out


def step_document(record: StepRun) -> dict[str, Any]:
    """One step run as JSON, as the REST API shows it."""
    return {
        "id": record.id, "step": record.step, "status": str(record.status),
        "cached": record.cached, "cached_from": record.cached_from,
        "attempts": record.attempts, "started": record.started,
        "finished": record.finished, "duration": record.duration,
        "metrics": finite(record.metrics), "outputs": outputs_document(record),
        "error": record.error, "note": record.note,
    }


def run_summary(run: Run) -> dict[str, Any]:
    """A run as a listing shows it: who, where from, how it went."""
    return {
        "run_id": run.id, "pipeline": run.pipeline, "module": run.module,
        "source_file": run.source_file, "status": str(run.status), "started": run.started,
        "finished": run.finished, "duration": run.duration, "backend": run.backend,
        "store": run.store,
    }


def run_document(run: Run) -> dict[str, Any]:
    """A run with its parameters, provenance and every step (map elements included)."""
    return {
        **run_summary(run),
        "parameters": finite(run.params),
        "git_commit": run.git_commit, "git_dirty": run.git_dirty,
        "ductwork_version": run.ductwork_version, "python_version": run.python_version,
        "steps": [step_document(s) for s in run.steps.values()],
    }
