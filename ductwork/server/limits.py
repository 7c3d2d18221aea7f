"""JSON bodies only, at most 1 MiB: an ASGI middleware in front of every route.

A request's body is read here, before any route or parser sees it. Over the cap
-- by its ``Content-Length`` or by the bytes that actually arrive, whichever
shows it first -- is 413, and reading stops. A non-empty body that is not
declared JSON, or does not parse as JSON, is 415: nothing a client sends is ever
unpickled or otherwise decoded as anything but JSON. The body read is then
replayed to the app, so it is read from the socket once.
"""

from __future__ import annotations

import json
from typing import Any

from ductwork.server.errors import error_response

__all__ = ["MAX_BODY", "BodyLimits"]

MAX_BODY = 1 << 20


def _is_json_type(value: str) -> bool:
    kind = value.split(";", 1)[0].strip().lower()
    return kind == "application/json" or (kind.startswith("application/")
                                          and kind.endswith("+json"))


class BodyLimits:
    """ASGI middleware: 413 past ``limit`` bytes, 415 for a body that is not JSON."""

    def __init__(self, app: Any, limit: int = MAX_BODY, json_under: str = "/") -> None:
        # The studio's HTML forms post urlencoded bodies: JSON-only is for paths under
        # ``json_under`` (the API); the size cap is for every path.
        self.app, self.limit, self.json_under = app, limit, json_under

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Check the body, then hand the request on with the body replayed."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope.get("headers", ())}
        declared = headers.get("content-length", "")
        if declared.strip().isdigit() and int(declared) > self.limit:
            await error_response(413, f"The body is {int(declared)} bytes; the limit is "
                                      f"{self.limit} (1 MiB).")(scope, receive, send)
            return
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await error_response(413, f"The body is over {self.limit} bytes "
                                          "(1 MiB).")(scope, receive, send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        if body and scope.get("path", "").startswith(self.json_under):
            if not _is_json_type(headers.get("content-type", "")):
                await error_response(415, "The body must be JSON, sent with `Content-Type: "
                                          "application/json`.")(scope, receive, send)
                return
            try:
                json.loads(body)
            except ValueError:  # UnicodeDecodeError included
                await error_response(415, "The body is not valid JSON (UTF-8).")(
                    scope, receive, send)
                return
        sent = False

        async def replay() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
