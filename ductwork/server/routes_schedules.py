"""Routes of schedules: list, show, make, disable, enable, delete.

Each parses, authorizes (viewer reads, admin changes) and calls ``schedules`` --
the functions ``ductwork schedule`` calls -- on the server's store.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Response

from ductwork.runtime import publish
from ductwork.server import schedules
from ductwork.server.auth import Admin, Viewer
from ductwork.server.errors import ApiError, documented
from ductwork.server.models import Schedule, ScheduleRequest
from ductwork.server.service import ServerDep

__all__ = ["router"]

router = APIRouter(tags=["schedules"])


@contextlib.contextmanager
def _answers() -> Iterator[None]:
    """Schedule errors as API errors: unknown is 404, taken 409, the rest 422."""
    try:
        yield
    except (schedules.ScheduleNotFound, publish.PublishedNotFound) as exc:
        raise ApiError(404, str(exc)) from None
    except schedules.ScheduleExists as exc:
        raise ApiError(409, str(exc)) from None
    except (schedules.ScheduleError, publish.PublishError) as exc:
        raise ApiError(422, str(exc), "invalid_schedule") from None


@router.get("/schedules", response_model=list[Schedule], responses=documented(401, 403),
            summary="List schedules")
def list_schedules(_: Viewer, srv: ServerDep) -> list[dict[str, Any]]:
    """Every schedule: its trigger, next fire time, why it would not fire, last firings."""
    return [schedules.describe(srv.artifacts, s)
            for s in schedules.list_schedules(srv.artifacts)]


@router.get("/schedules/{name}", response_model=Schedule,
            responses=documented(401, 403, 404), summary="Show a schedule")
def get_schedule(name: str, _: Viewer, srv: ServerDep) -> dict[str, Any]:
    """One schedule with its newest 50 firings and skips, and why each was skipped."""
    with _answers():
        return schedules.describe(srv.artifacts, schedules.get_schedule(srv.artifacts, name),
                                  limit=50)


@router.post("/schedules", status_code=201, response_model=Schedule,
             responses=documented(401, 403, 404, 409, 413, 415, 422),
             summary="Make a schedule")
def create_schedule(body: ScheduleRequest, _: Admin, srv: ServerDep) -> dict[str, Any]:
    """Run a published pipeline by cron or on a data change; parameters are checked
    against the version's schema now."""
    fields = body.model_dump()
    with _answers():
        made = schedules.create_schedule(srv.artifacts, fields.pop("name"), **fields)
        return schedules.describe(srv.artifacts, made)


@router.post("/schedules/{name}/disable", response_model=Schedule,
             responses=documented(401, 403, 404, 413, 415), summary="Disable a schedule")
def disable(name: str, _: Admin, srv: ServerDep) -> dict[str, Any]:
    """Stop the schedule firing until it is enabled."""
    with _answers():
        return schedules.describe(srv.artifacts,
                                  schedules.set_enabled(srv.artifacts, name, False))


@router.post("/schedules/{name}/enable", response_model=Schedule,
             responses=documented(401, 403, 404, 413, 415), summary="Enable a schedule")
def enable(name: str, _: Admin, srv: ServerDep) -> dict[str, Any]:
    """Let the schedule fire again, from its next time on (no catch-up of the pause)."""
    with _answers():
        return schedules.describe(srv.artifacts,
                                  schedules.set_enabled(srv.artifacts, name, True))


@router.delete("/schedules/{name}", status_code=204, response_class=Response,
               responses=documented(401, 403, 404), summary="Delete a schedule")
def delete(name: str, _: Admin, srv: ServerDep) -> Response:
    """Delete the schedule and its firings; runs it started stay."""
    with _answers():
        schedules.delete_schedule(srv.artifacts, name)
    return Response(status_code=204)
