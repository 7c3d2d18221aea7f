"""Routes of runs: list, show, a step's logs, cancel.

Runs are read from the store's run history -- the records ``ductwork runs``,
``ductwork show`` and ``ductwork logs`` read -- merged with the server's queue
(``views``); cancelling goes through the launcher.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import PlainTextResponse

from ductwork.server import queue
from ductwork.server.auth import Runner, Viewer
from ductwork.server.errors import ApiError, documented, documented_json
from ductwork.server.listing import list_runs as listed_runs
from ductwork.server.models import CancelAnswer, RunDetail, RunSummary
from ductwork.server.service import ServerDep
from ductwork.server.views import run_detail, step_logs

__all__ = ["router"]

router = APIRouter(tags=["runs"])


def _no_run(run_id: str) -> ApiError:
    return ApiError(404, f"No run {run_id!r} in this server's store.")


@router.get("/runs", response_model=list[RunSummary], responses=documented(401, 403, 422),
            summary="List runs")
def list_runs(_: Viewer, srv: ServerDep,
              pipeline: Annotated[str | None, Query(description="only its runs")] = None,
              status: Annotated[str | None, Query(description="only runs in it")] = None,
              limit: Annotated[int, Query(ge=1, le=1000, description="at most this many")] = 50,
              ) -> list[dict[str, Any]]:
    """Runs, newest first: those triggered here and those run from the command line."""
    return listed_runs(srv.state, srv.artifacts, pipeline, status, limit)


@router.get("/runs/{run_id}", response_model=RunDetail, responses=documented(401, 403, 404),
            summary="Show a run")
def get_run(run_id: str, _: Viewer, srv: ServerDep
            ) -> dict[str, Any]:
    """Status, pipeline, version, parameters, timings and every step's state and outputs."""
    run, row = srv.runs.get(run_id)
    if run is None and row is None:
        raise _no_run(run_id)
    return run_detail(run, row)


@router.get("/runs/{run_id}/steps/{step_id}/logs", response_class=PlainTextResponse,
            responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}},
                             "description": "the step's output and traceback"},
                       **documented_json(401, 403, 404)},
            summary="A step's logs")
def get_logs(run_id: str, step_id: str, _: Viewer,
             srv: ServerDep) -> PlainTextResponse:
    """The step's captured output, then its traceback if it failed."""
    run, row = srv.runs.get(run_id)
    if run is None:
        if row is None:
            raise _no_run(run_id)
        raise ApiError(404, f"Run {run_id!r} has no step {step_id!r}: it has not begun.")
    text = step_logs(run, step_id)
    if text is None:
        raise ApiError(404, f"Run {run_id!r} has no step {step_id!r}; its steps: "
                            f"{', '.join(run.steps) or 'none'}.")
    return PlainTextResponse(text)


@router.post("/runs/{run_id}/cancel", status_code=202, response_model=CancelAnswer,
             responses=documented(401, 403, 404, 409, 413, 415), summary="Cancel a run")
def cancel(run_id: str, _: Runner, srv: ServerDep
           ) -> dict[str, Any]:
    """Stop a queued run (cancelled at once) or a running one (interrupted, then killed)."""
    row = queue.get_row(srv.state, run_id)
    if row is None:
        if srv.runs.record(run_id) is None:
            raise _no_run(run_id)
        raise ApiError(409, f"Run {run_id!r} was not started by this server; stop it where "
                            "it runs (Ctrl-C).")
    done = srv.launcher.cancel(run_id)
    if done is None:
        run, row = srv.runs.get(run_id)
        status = run_detail(run, row)["status"]
        raise ApiError(409, f"Run {run_id!r} has already ended ({status}).")
    return {"run_id": run_id, "status": done}
