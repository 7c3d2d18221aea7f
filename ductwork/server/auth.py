"""Who is calling: the bearer token of every request, checked against the token store.

``require(role)`` is a FastAPI dependency: 401 when the request has no token, or one
that is unknown or revoked (looked up on every request, no cache); 403 when the
token's role is below ``role``. It answers the caller's ``Token`` (name and role).
The token's text is never logged or echoed.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ductwork.server import tokens
from ductwork.server.errors import ApiError

__all__ = ["Admin", "Runner", "Viewer", "require"]

_bearer = HTTPBearer(auto_error=False, description="a token from `ductwork token create`")


def require(role: str) -> Any:
    """A dependency answering the caller's token if its role is ``role`` or above."""

    # Async, run on the event loop: the lookup is one indexed SQLite read (~0.01 ms),
    # far cheaper than the thread-pool hop FastAPI makes for a plain function.
    async def caller(request: Request,
               credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
               ) -> tokens.Token:
        if credentials is None:
            raise ApiError(401, "This call needs `Authorization: Bearer TOKEN`; make a token "
                                "with `ductwork token create NAME --role viewer|runner|admin`.")
        found = tokens.check(request.app.state.server.state, credentials.credentials)
        if found is None:
            raise ApiError(401, "The bearer token is unknown or revoked.")
        if not found.allows(role):
            raise ApiError(403, f"Token {found.name!r} has role {found.role!r}; this call "
                                f"needs {role!r} or above.")
        return found

    return Depends(caller)


Viewer = Annotated[tokens.Token, require("viewer")]
Runner = Annotated[tokens.Token, require("runner")]
Admin = Annotated[tokens.Token, require("admin")]
