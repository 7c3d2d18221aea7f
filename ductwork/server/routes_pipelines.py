"""Routes of published pipelines: list, show, trigger a run, set the default, disable, enable.

Each parses, authorizes, and calls the publishing functions ``ductwork pipelines``
calls (``runtime.publish``); a trigger checks the parameters against the version's
recorded schema (no user code is loaded here) and queues the run.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Body

from ductwork.runtime import publish
from ductwork.server import queue
from ductwork.server.auth import Admin, Runner, Viewer
from ductwork.server.errors import ApiError, documented
from ductwork.server.models import (
    DefaultRequest,
    PipelineDetail,
    PipelineSummary,
    TriggerAnswer,
    TriggerRequest,
)
from ductwork.server.service import ServerDep

__all__ = ["router"]

router = APIRouter(tags=["pipelines"])
_ADMIN = documented(401, 403, 404, 413, 415, 422)


@contextlib.contextmanager
def _published() -> Iterator[None]:
    """An unknown pipeline or version (or a name no pipeline could have) is 404."""
    try:
        yield
    except (publish.PublishedNotFound, publish.PublishError) as exc:
        raise ApiError(404, str(exc)) from None


def _summary(found: dict[str, Any]) -> dict[str, Any]:
    return {k: found[k] for k in ("name", "description", "default_version", "versions",
                                  "enabled")}


@router.get("/pipelines", response_model=list[PipelineSummary],
            responses=documented(401, 403), summary="List published pipelines")
def list_pipelines(_: Viewer, srv: ServerDep
                   ) -> list[dict[str, Any]]:
    """Every published pipeline: name, description, default version, versions, enabled."""
    return publish.list_pipelines(srv.artifacts)


@router.get("/pipelines/{name}", response_model=PipelineDetail,
            responses=documented(401, 403, 404), summary="Show a published pipeline")
def get_pipeline(name: str, _: Viewer, srv: ServerDep
                 ) -> dict[str, Any]:
    """One pipeline with each version's record and ``parameters`` JSON Schema."""
    with _published():
        return publish.get_pipeline(name, srv.artifacts)


@router.post("/pipelines/{name}/runs", status_code=202, response_model=TriggerAnswer,
             responses=documented(401, 403, 404, 409, 413, 415, 422), summary="Trigger a run")
def trigger(name: str, token: Runner, srv: ServerDep,
                  body: Annotated[TriggerRequest | None, Body()] = None) -> dict[str, Any]:
    """Queue a run of ``version`` (default: the default version) with ``parameters``."""
    # Sync (FastAPI's thread pool), on purpose: its work is small (the published record
    # ~0.06 ms, the schema check ~0.02 ms) but the queue insert commits to SQLite, and on
    # the event loop that commit held every other request; measured with 50 clients,
    # 354-394 triggers/s here against 276-364/s on the loop (benchmarks/server_bench.py).
    body = body or TriggerRequest()
    with _published():
        found = publish.get_pipeline(name, srv.artifacts)
    if not found["enabled"]:
        raise ApiError(409, f"Pipeline {name!r} is disabled; an admin can enable it "
                            f"(`ductwork pipelines enable {name}`).")
    version = found["default_version"] if body.version is None else body.version
    record = next((r for r in found["records"] if r["version"] == version), None)
    if record is None:
        raise ApiError(404, f"Pipeline {name!r} has no version {version}; its versions: "
                            f"{', '.join(map(str, found['versions']))}.")
    try:
        parameters = publish.validate_parameters(record, body.parameters)
    except publish.ParameterError as exc:
        raise ApiError(422, str(exc), "invalid_parameters") from None
    run_id = queue.enqueue(srv.state, name, version, parameters, token.name)
    srv.launcher.wake()
    return {"run_id": run_id, "status": "queued", "version": version}


@router.put("/pipelines/{name}/default", response_model=PipelineSummary, responses=_ADMIN,
            summary="Set the default version")
def set_default(name: str, body: DefaultRequest, _: Admin,
                srv: ServerDep) -> dict[str, Any]:
    """Make ``version`` the one a trigger without a version runs."""
    with _published():
        publish.set_default(name, body.version, srv.artifacts)
        return _summary(publish.get_pipeline(name, srv.artifacts))


@router.post("/pipelines/{name}/disable", response_model=PipelineSummary,
             responses=documented(401, 403, 404, 413, 415), summary="Disable a pipeline")
def disable(name: str, _: Admin, srv: ServerDep
            ) -> dict[str, Any]:
    """Refuse new runs of the pipeline (409) until it is enabled; its versions stay."""
    with _published():
        publish.disable(name, srv.artifacts)
        return _summary(publish.get_pipeline(name, srv.artifacts))


@router.post("/pipelines/{name}/enable", response_model=PipelineSummary,
             responses=documented(401, 403, 404, 413, 415), summary="Enable a pipeline")
def enable(name: str, _: Admin, srv: ServerDep
           ) -> dict[str, Any]:
    """Accept runs of the pipeline again."""
    with _published():
        publish.enable(name, srv.artifacts)
        return _summary(publish.get_pipeline(name, srv.artifacts))
