"""The studio's forms (POST) and signing in and out.

Every state-changing form goes through ``access.posted`` (session, role, CSRF) and
then calls what the REST API's routes call: ``queue.enqueue`` after
``publish.validate_parameters`` for a trigger, ``publish.set_default`` /
``disable`` / ``enable``, the launcher's ``cancel``. A successful form answers 303
to the page that shows its result (post/redirect/get).
"""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from ductwork.runtime import publish
from ductwork.server import queue
from ductwork.server.studio.access import Refused, posted, read_form, safe_next, studio
from ductwork.server.studio.forms import FormError, fields, parse
from ductwork.server.studio.plan_child import plan_in_child
from ductwork.server.studio.render import page
from ductwork.server.studio.sessions import COOKIE, PRE_COOKIE

__all__ = ["router"]

router = APIRouter(include_in_schema=False)


def _cookie(response: Response, name: str, value: str, max_age: int | None = None) -> None:
    response.set_cookie(name, value, max_age=max_age, path="/", httponly=True,
                        samesite="strict")


@router.get("/signin")
def signin_page(request: Request, once: str | None = None, next: str = "/") -> Response:
    """The sign-in page; with ``once``, spend a one-time link for a session."""
    sessions = studio(request).sessions
    if once is not None:
        sid = sessions.redeem(once)
        if sid is None:
            return page("signin.html", None, status=403, error="This sign-in link was "
                        "already used or has expired: paste a token instead, or restart "
                        "`ductwork serve` for a new link.", csrf=_pre(request), next="/",
                        title="Sign in", set_pre=True)
        answer = RedirectResponse(safe_next(next), status_code=303)
        _cookie(answer, COOKIE, sid)
        return answer
    csrf = _pre(request)
    answer = page("signin.html", None, error=None, csrf=csrf, next=safe_next(next),
                  title="Sign in")
    _cookie(answer, PRE_COOKIE, csrf, max_age=3600)
    return answer


def _pre(request: Request) -> str:
    return request.cookies.get(PRE_COOKIE) or secrets.token_urlsafe(24)


@router.post("/signin")
async def signin(request: Request) -> Response:
    """Exchange a pasted API token for a session (the form's double-submit cookie checked)."""
    form = await read_form(request)
    pre = request.cookies.get(PRE_COOKIE)
    if not pre or not secrets.compare_digest(pre, form.get("csrf", "")):
        raise Refused(403, "The sign-in form has no valid CSRF token: reload the sign-in "
                           "page and try again.")
    sid = studio(request).sessions.sign_in(request.app.state.server.state,
                                           form.get("token", ""))
    if sid is None:
        answer = page("signin.html", None, status=401, error="That token is unknown or "
                      "revoked. Make one with `ductwork token create NAME --role ROLE`.",
                      csrf=pre, next=safe_next(form.get("next")), title="Sign in")
        return answer
    answer = RedirectResponse(safe_next(form.get("next")), status_code=303)
    _cookie(answer, COOKIE, sid)
    answer.delete_cookie(PRE_COOKIE, path="/")
    return answer


@router.post("/signout")
async def signout(request: Request) -> Response:
    """End the session."""
    await posted(request, "viewer")
    studio(request).sessions.end(request.cookies.get(COOKIE))
    answer = RedirectResponse("/signin", status_code=303)
    answer.delete_cookie(COOKIE, path="/")
    return answer


def _published(srv: Any, name: str) -> dict[str, Any]:
    try:
        return publish.get_pipeline(name, srv.artifacts)
    except (publish.PublishedNotFound, publish.PublishError) as exc:
        raise Refused(404, str(exc)) from None


@router.post("/pipelines/{name}/trigger")
async def trigger(request: Request, name: str) -> Response:
    """Plan (``action=plan``) or queue a run with the form's parameters."""
    who, form = await posted(request, "runner")
    srv = request.app.state.server
    found = _published(srv, name)
    try:
        version = int(form.get("version") or found["default_version"])
    except ValueError:
        raise Refused(400, f"version is a whole number, got {form.get('version')!r}.") from None
    record = next((r for r in found["records"] if r["version"] == version), None)
    if record is None:
        raise Refused(404, f"Pipeline {name!r} has no version {version}.")
    schema = record.get("parameters", {})
    values = {f["name"]: form.get(f["name"], "") for f in fields(schema)}

    def again(status: int, error: str | None, plan: Any = None) -> Response:
        return page("trigger.html", who, status=status, pipeline=found, version=version,
                    fields=fields(schema, values), plan=plan, error=error,
                    title=f"Trigger {name}")

    try:
        parameters = publish.validate_parameters(record, parse(schema, form))
    except (FormError, publish.ParameterError) as exc:
        return again(422, str(exc))
    if form.get("action") == "plan":
        import anyio

        # The store as the launcher hands it to run children (a URL may carry options).
        planned = await anyio.to_thread.run_sync(plan_in_child, srv.launcher.store, name,
                                                 version, parameters)
        return again(200 if "steps" in planned else 422, planned.get("error"), planned)
    if not found["enabled"]:
        return again(409, f"Pipeline {name!r} is disabled; an admin can enable it.")
    run_id = queue.enqueue(srv.state, name, version, parameters, who.name)
    srv.launcher.wake()
    return RedirectResponse(f"/runs/{run_id}", status_code=303)


@router.post("/pipelines/{name}/default")
async def set_default(request: Request, name: str) -> Response:
    """Make a version the default (admin)."""
    _, form = await posted(request, "admin")
    srv = request.app.state.server
    try:
        publish.set_default(name, int(form.get("version", "")), srv.artifacts)
    except ValueError as exc:
        raise Refused(422, f"Cannot set the default: {exc}") from None
    except (publish.PublishedNotFound, publish.PublishError) as exc:
        raise Refused(404, str(exc)) from None
    return RedirectResponse("/pipelines", status_code=303)


@router.post("/pipelines/{name}/{switch}")
async def switch(request: Request, name: str, switch: str) -> Response:
    """Disable or enable a pipeline (admin)."""
    if switch not in ("disable", "enable"):
        raise Refused(404, f"No action {switch!r}: disable or enable.")
    await posted(request, "admin")
    srv = request.app.state.server
    try:
        (publish.disable if switch == "disable" else publish.enable)(name, srv.artifacts)
    except (publish.PublishedNotFound, publish.PublishError) as exc:
        raise Refused(404, str(exc)) from None
    return RedirectResponse("/pipelines", status_code=303)


@router.post("/runs/{run_id}/cancel")
async def cancel(request: Request, run_id: str) -> Response:
    """Stop a queued or running run this server started (runner)."""
    await posted(request, "runner")
    srv = request.app.state.server
    if queue.get_row(srv.state, run_id) is None:
        raise Refused(409, f"Run {run_id!r} was not started by this server; stop it where "
                           "it runs.")
    srv.launcher.cancel(run_id)
    return RedirectResponse(f"/runs/{run_id}", status_code=303)
