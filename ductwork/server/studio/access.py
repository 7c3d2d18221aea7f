"""Who may see and do what in the studio: the page guards every route calls first.

``need(request, role)`` answers the signed-in user, or sends the browser to the
sign-in page (``SignInNeeded``), or refuses with 403 when the role is below
``role`` -- the roles of the API's tokens, applied to pages and buttons alike.
``posted(request, role)`` does the same for a form and also reads its urlencoded
body and checks its CSRF field: a POST without the session's CSRF token is 403,
whatever the role.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, quote

from starlette.requests import Request

from ductwork.server.studio.sessions import Sessions, Who, csrf_ok

__all__ = ["Refused", "SignInNeeded", "Studio", "need", "posted", "studio"]


class SignInNeeded(Exception):
    """The request has no live session: send it to the sign-in page, then back."""

    def __init__(self, back: str) -> None:
        super().__init__(back)
        self.back = back


class Refused(Exception):
    """The request may not be served: a status and a message for the error page."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


class Studio:
    """The studio's own state in an app: its sessions."""

    def __init__(self) -> None:
        self.sessions = Sessions()


def studio(request: Request) -> Studio:
    """The studio of the app answering ``request``."""
    return request.app.state.studio  # type: ignore[no-any-return]


def need(request: Request, role: str = "viewer") -> Who:
    """The signed-in user if their role is ``role`` or above."""
    who = studio(request).sessions.who(request)
    if who is None:
        back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if request.method != "GET":
            back = "/"
        raise SignInNeeded(back)
    if not who.allows(role):
        raise Refused(403, f"You are signed in as {who.name!r} with role {who.role!r}; this "
                           f"needs {role!r} or above. Sign in with another token.")
    return who


async def read_form(request: Request) -> dict[str, str]:
    """A urlencoded form body as a dict (the last value of a repeated name)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await request.body()
    if body and kind != "application/x-www-form-urlencoded":
        raise Refused(415, "Forms are sent as application/x-www-form-urlencoded.")
    return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


async def posted(request: Request, role: str) -> tuple[Who, dict[str, str]]:
    """The user and the form of a state-changing POST, its CSRF token checked."""
    who = need(request, role)
    form = await read_form(request)
    if not csrf_ok(who, form.get("csrf")):
        raise Refused(403, "This form has no valid CSRF token (it was not sent from this "
                           "studio's page, or the page is stale): reload the page and try "
                           "again.")
    return who, form


def signin_url(back: str) -> str:
    """The sign-in page, coming back to ``back`` afterwards."""
    return "/signin?next=" + quote(back if back.startswith("/") and not back.startswith("//")
                                   else "/", safe="")


def safe_next(value: Any) -> str:
    """A local path to go to after signing in (never another site)."""
    text = str(value or "/")
    return text if text.startswith("/") and not text.startswith("//") \
        and "\\" not in text else "/"
