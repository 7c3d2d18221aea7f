"""The one error body, ``{"error": {"code", "message"}}``, for every failure the API answers.

Routes raise ``ApiError``; ``install`` turns it, FastAPI's validation errors, and
Starlette's own 404/405 into that body, and an unexpected exception into a 500 whose
message says nothing about the exception (it is logged by type only: its text might
hold a credential). ``documented`` gives a route's ``responses=`` so the OpenAPI
document lists each error status with the body's schema.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ductwork.server.models import ErrorBody

__all__ = ["ApiError", "documented", "documented_json", "error_response", "install"]

_log = logging.getLogger("ductwork.server")

CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 409: "conflict", 413: "payload_too_large",
    415: "unsupported_media_type", 422: "invalid", 500: "internal",
}
_WHAT = {
    401: "No valid bearer token: send `Authorization: Bearer TOKEN` with a live token.",
    403: "This token's role is not enough for this call.",
    404: "Not found.",
    409: "The request conflicts with the resource's state.",
    413: "The body is over 1 MiB.",
    415: "The body is not JSON: send `Content-Type: application/json` and a JSON body.",
    422: "The request does not match the schema; the message names the field.",
}


class ApiError(Exception):
    """An answer with an HTTP error status, a code and a message for the client."""

    def __init__(self, status: int, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message = status, message
        self.code = code or CODES.get(status, "error")


def error_response(status: int, message: str, code: str | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    """The JSON answer for an error."""
    body = {"error": {"code": code or CODES.get(status, "error"), "message": message}}
    return JSONResponse(body, status_code=status, headers=headers)


def documented(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: each status (and 422, which replaces FastAPI's own
    validation-error schema) with the error body's model."""
    return {s: {"model": ErrorBody, "description": _WHAT.get(s, CODES[s])}
            for s in sorted({*statuses, 422})}


def documented_json(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``documented`` for a route whose own answer is not JSON: errors still are (FastAPI
    would list a ``model`` under the route's media type), and the body's schema is
    registered by the other routes."""
    ref = {"$ref": "#/components/schemas/ErrorBody"}
    return {s: {"description": _WHAT.get(s, CODES[s]),
                "content": {"application/json": {"schema": ref}}}
            for s in sorted({*statuses, 422})}


def _where(loc: Any) -> str:
    parts = [str(p) for p in loc if p not in ("body",)] if isinstance(loc, list | tuple) else []
    return ".".join(parts) or "body"


def install(app: FastAPI) -> None:
    """Make every error the app answers take the one shape."""

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return error_response(exc.status, exc.message, exc.code, headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = exc.errors()
        first = problems[0] if problems else {}
        where = _where(first.get("loc", ()))
        message = f"{where}: {first.get('msg', 'invalid')}"
        if len(problems) > 1:
            message += f" (and {len(problems) - 1} more)"
        return error_response(422, message)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else CODES.get(exc.status_code, "")
        return error_response(exc.status_code, message, headers=exc.headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        _log.error("%s %s failed: %s", request.method, request.url.path, type(exc).__name__)
        return error_response(500, "The server failed to answer; its log names the error.")
