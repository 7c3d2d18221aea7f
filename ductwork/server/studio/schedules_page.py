"""The Schedules page (GET) and its forms (POST): make, disable, enable, delete.

The page lists every schedule through ``schedules.describe`` -- what ``GET
/api/v1/schedules`` and ``ductwork schedule list`` show: the trigger, the next fire
time, why it would not fire, the last firings and skips. Admins get a form to make
one and a button per action; each form goes through ``access.posted`` (session,
role, CSRF) and calls the functions the REST routes call.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from ductwork.runtime import publish
from ductwork.server import schedules
from ductwork.server.studio.access import Refused, need, posted
from ductwork.server.studio.render import page

__all__ = ["router"]

router = APIRouter(include_in_schema=False)


def _listing(request: Request, who: Any, status: int = 200, error: str | None = None,
             values: dict[str, str] | None = None) -> Response:
    srv = request.app.state.server
    listed = [schedules.describe(srv.artifacts, s, limit=5)
              for s in schedules.list_schedules(srv.artifacts)]
    names = [p["name"] for p in publish.list_pipelines(srv.artifacts)]
    return page("schedules.html", who, status=status, schedules=listed, pipelines=names,
                error=error, values=values or {}, title="Schedules")


@router.get("/schedules")
def schedules_page(request: Request) -> Response:
    """Every schedule: trigger, next fire time, why it would not fire, last firings."""
    return _listing(request, need(request))


def _made(form: dict[str, str]) -> dict[str, Any]:
    """The ``create_schedule`` arguments a posted form gives."""
    try:
        parameters = json.loads(form.get("parameters") or "{}")
        version = int(form["version"]) if form.get("version") else None
        interval = float(form.get("interval") or 60)
    except ValueError as exc:
        raise schedules.ScheduleError(
            f"Parameters are a JSON object, version and interval numbers: {exc}") from None
    if not isinstance(parameters, dict):
        raise schedules.ScheduleError('Parameters are a JSON object, e.g. {"x": 3}.')
    on_change = form.get("on_change") or None
    return {"pipeline": form.get("pipeline", ""), "version": version,
            "cron": None if on_change else form.get("cron") or None,
            "timezone": form.get("timezone") or "UTC", "on_change": on_change,
            "interval": interval, "parameters": parameters,
            "catch_up": form.get("catch_up") in ("on", "true", "1"),
            "overlap": form.get("overlap") or "skip"}


@router.post("/schedules")
async def create(request: Request) -> Response:
    """Make a schedule (admin); a form that does not fit is shown again with why."""
    who, form = await posted(request, "admin")
    srv = request.app.state.server
    try:
        schedules.create_schedule(srv.artifacts, form.get("name", ""), **_made(form))
    except schedules.ScheduleExists as exc:
        return _listing(request, who, 409, str(exc), form)
    except (schedules.ScheduleError, publish.PublishedNotFound, publish.PublishError) as exc:
        return _listing(request, who, 422, str(exc), form)
    return RedirectResponse("/schedules", status_code=303)


@router.post("/schedules/{name}/{action}")
async def change(request: Request, name: str, action: str) -> Response:
    """Disable, enable or delete a schedule (admin)."""
    if action not in ("disable", "enable", "delete"):
        raise Refused(404, f"No action {action!r}: disable, enable or delete.")
    await posted(request, "admin")
    srv = request.app.state.server
    try:
        if action == "delete":
            schedules.delete_schedule(srv.artifacts, name)
        else:
            schedules.set_enabled(srv.artifacts, name, action == "enable")
    except schedules.ScheduleNotFound as exc:
        raise Refused(404, str(exc)) from None
    return RedirectResponse("/schedules", status_code=303)
