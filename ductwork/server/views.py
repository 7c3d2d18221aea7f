"""Runs as the API shows them: the store's run history merged with the server's queue.

A run triggered over HTTP has a queue row (published name, version, token name,
when it was submitted) and, once its child has begun it, a run record (status,
steps, timings) -- the same ``records`` the command line's ``ductwork runs`` and
``ductwork show`` read. A run started elsewhere (``ductwork run``) has only the
record. The status is the record's when there is one (it says ``died`` by itself
when its process is gone); before that, the queue's: ``queued``, ``running`` (the
child is loading), ``cancelled``, ``died``, or ``failed`` for a child that exited
before recording anything (``error`` says why).
"""

from __future__ import annotations

from typing import Any

from ductwork.runtime.records.documents import finite, step_document
from ductwork.runtime.records.run import Run
from ductwork.server import queue
from ductwork.server.state import ServerState

__all__ = ["RunSource", "run_detail", "run_summary", "step_logs"]


def _status(run: Run | None, row: dict[str, Any] | None) -> str:
    if run is not None:
        return str(run.status)
    assert row is not None
    return "failed" if row["state"] == queue.FINISHED else row["state"]


def _trigger(row: dict[str, Any] | None) -> dict[str, Any]:
    """Who started a run: a schedule (by name), a token over the API, or the command line."""
    if row is not None and row.get("schedule"):
        return {"via": "schedule", "token": None, "schedule": row["schedule"]}
    if row is not None:
        return {"via": "api", "token": row["token"], "schedule": None}
    return {"via": "cli", "token": None, "schedule": None}


def run_summary(run: Run | None, row: dict[str, Any] | None) -> dict[str, Any]:
    """A run as a listing shows it."""
    started = run.started if run is not None else (row or {}).get("started")
    finished = run.finished if run is not None else (row or {}).get("finished")
    return {
        "run_id": run.id if run is not None else row["run_id"],  # type: ignore[index]
        "pipeline": row["pipeline"] if row is not None else run.pipeline,  # type: ignore[union-attr]
        "version": row["version"] if row is not None else None,
        "status": _status(run, row),
        "submitted": row["submitted"] if row is not None else (run.started if run else None),
        "started": started, "finished": finished,
        "duration": None if started is None or finished is None else finished - started,
        "trigger": _trigger(row),
    }


def run_detail(run: Run | None, row: dict[str, Any] | None) -> dict[str, Any]:
    """A run with its parameters and steps."""
    params = run.params if run is not None else (row or {}).get("parameters", {})
    return {
        **run_summary(run, row),
        "parameters": finite(params),
        "backend": run.backend if run is not None else None,
        "error": None if row is None or run is not None else row.get("error"),
        "steps": [step_document(s) for s in run.steps.values()] if run is not None else [],
    }


def step_logs(run: Run, step_id: str) -> str | None:
    """A step's captured output and, if it failed, its traceback; None if no such step."""
    record = run.steps.get(step_id)
    if record is None:
        return None
    return record.logs + (record.error or "")


class RunSource:
    """Finds runs in the queue and in the store's run history."""

    def __init__(self, state: ServerState, store: Any) -> None:
        self.state, self.store = state, store

    def record(self, run_id: str) -> Run | None:
        """The run store's record of ``run_id`` (with steps), or None."""
        from ductwork.runtime.records.runstore import open_history

        history = open_history(self.store)
        return history.get_run(run_id) if history is not None else None

    def status(self, run_id: str) -> str | None:
        """The status the run store has for ``run_id``, or None if it has no record."""
        run = self.record(run_id)
        return None if run is None else str(run.status)

    def get(self, run_id: str) -> tuple[Run | None, dict[str, Any] | None]:
        """The record and the queue row of ``run_id`` (either may be None)."""
        row = queue.get_row(self.state, run_id)
        run = None if row is not None and row["state"] == queue.QUEUED else self.record(run_id)
        return run, row
