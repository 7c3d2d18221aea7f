"""``dw.Client``: trigger and follow published pipelines on a ``ductwork serve`` server.

A thin layer over the REST API of SPEC §5 (``/api/v1``), on httpx (the ``server``
extra): one connection pool per client, JSON in and out. It depends on nothing in
the runtime, so a machine that only triggers runs needs neither the store nor user
code; httpx itself is imported when a ``Client`` is made, never by ``import ductwork``.

Every answer that is not a success becomes a ``ClientError`` subclass chosen by its
status code (``NotFound`` for 404, ``InvalidParameters`` for 422, ...), carrying the
server's ``error.code`` and ``error.message`` from its ``{"error": {...}}`` body. The
token lives only in the pool's headers, which httpx masks in its reprs; no message,
repr or pickle of a client or an error contains it.
"""

from __future__ import annotations

import os
import time
from typing import Any
from urllib.parse import quote

from ductwork.dsl.core import DuctworkError

__all__ = [
    "FINAL_STATUSES",
    "BadRequest",
    "Client",
    "ClientError",
    "Conflict",
    "Forbidden",
    "InvalidParameters",
    "NotFound",
    "PayloadTooLarge",
    "RunTimeout",
    "ServerError",
    "ServerUnreachable",
    "Unauthorized",
    "UnsupportedMediaType",
]

#: A run in one of these states changes no more: ``wait`` returns on them.
FINAL_STATUSES = frozenset({"succeeded", "failed", "cancelled", "died"})

_API = "/api/v1"


class ClientError(DuctworkError):
    """The server refused a call, or could not be reached; ``.status`` and ``.code`` say how."""

    status: int | None = None

    def __init__(self, message: str, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status
        self.message, self.code = message, code

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.message, self.status, self.code))


class ServerUnreachable(ClientError, ConnectionError):
    """Nothing answered at the client's URL (not started, wrong port, or a proxy is down)."""


class BadRequest(ClientError, ValueError):
    """400: the request was malformed."""

    status = 400


class Unauthorized(ClientError, PermissionError):
    """401: no token, or one the server does not know (revoked, or from another server)."""

    status = 401


class Forbidden(ClientError, PermissionError):
    """403: the token's role may not do this (viewer < runner < admin)."""

    status = 403


class NotFound(ClientError, LookupError):
    """404: no such pipeline, version, run or step."""

    status = 404


class Conflict(ClientError):
    """409: the pipeline is disabled (or the call conflicts with the run's state)."""

    status = 409


class PayloadTooLarge(ClientError, ValueError):
    """413: the request body is over the server's 1 MiB limit."""

    status = 413


class UnsupportedMediaType(ClientError, ValueError):
    """415: the request body is not JSON."""

    status = 415


class InvalidParameters(ClientError, ValueError):
    """422: the parameters do not match the pipeline's schema; the message names the one."""

    status = 422


class ServerError(ClientError):
    """5xx: the server failed; its log says why."""


class RunTimeout(ClientError, TimeoutError):
    """``Client.wait`` gave up before the run reached a final status."""

    def __init__(self, message: str, run_id: str = "", last_status: str | None = None) -> None:
        super().__init__(message)
        self.run_id, self.last_status = run_id, last_status

    def __reduce__(self) -> tuple[Any, ...]:
        return (RunTimeout, (self.message, self.run_id, self.last_status))


_BY_STATUS: dict[int, type[ClientError]] = {
    cls.status: cls
    for cls in (BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PayloadTooLarge,
                UnsupportedMediaType, InvalidParameters)
    if cls.status is not None
}


def _base_url(url: str) -> str:
    """The server's root: ``http://host:port``, whether or not ``/api/v1`` was given."""
    url = url.strip().rstrip("/")
    if url.endswith(_API):
        url = url[: -len(_API)]
    if "://" not in url:
        raise ValueError(f"{url!r} is not a URL: give the scheme, e.g. 'http://127.0.0.1:8765'")
    return url


def _segment(value: str | int) -> str:
    """A path segment, quoted: names and ids are never allowed to change the path."""
    return quote(str(value), safe="")


def error_for(status: int, body: Any, text: str = "") -> ClientError:
    """The ``ClientError`` for an answer's status code and body (``{"error": {...}}``)."""
    code = message = None
    err = body.get("error") if isinstance(body, dict) else None
    if isinstance(err, dict):
        code, message = err.get("code"), err.get("message")
    if not message:
        # Not the server's own error body (a proxy's page, say): show its start.
        message = text.strip()[:300] or "(no message)"
    cls = _BY_STATUS.get(status) or (ServerError if status >= 500 else ClientError)
    return cls(f"{status}: {message}", status, None if code is None else str(code))


class Client:
    """A connection to a ``ductwork serve`` server, authenticated by a bearer token.

    ``token`` defaults to the ``DUCTWORK_TOKEN`` environment variable; ``timeout`` is
    per request, in seconds; ``verify`` is for an HTTPS proxy in front of the server:
    ``True`` (the system's CAs), or the path of a CA bundle for a private CA. Use it as
    a context manager, or ``close()`` it, to free its connections.
    """

    def __init__(self, url: str, token: str | None = None, *, timeout: float = 30.0,
                 verify: bool | str = True) -> None:
        try:
            import httpx
        except ImportError:  # pragma: no cover - the server extra brings it
            raise ImportError(
                "dw.Client needs httpx: pip install 'ductwork[server]'") from None
        self.url = _base_url(url)
        token = token if token is not None else os.environ.get("DUCTWORK_TOKEN")
        headers = {"Accept": "application/json", "User-Agent": "ductwork-client"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._httpx = httpx
        self._http = httpx.Client(base_url=self.url + _API, headers=headers, timeout=timeout,
                                  verify=verify)

    def __repr__(self) -> str:
        return f"Client({self.url!r})"

    def __reduce__(self) -> Any:
        # A pickled client would carry its token in the clear: make one where it is used.
        raise TypeError("a dw.Client cannot be pickled (it holds a token); make one where "
                        "it is needed")

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the client's connections."""
        self._http.close()

    def _call(self, method: str, path: str, body: Any = None,
              params: dict[str, Any] | None = None) -> Any:
        """Send one request; the decoded JSON answer, text for text, or a ``ClientError``."""
        httpx = self._httpx
        try:
            if body is None:
                resp = self._http.request(method, path, params=params)
            else:
                resp = self._http.request(method, path, json=body, params=params)
        except httpx.ConnectError as exc:
            raise ServerUnreachable(
                f"No ductwork server answers at {self.url} ({exc}). Start one with "
                "`ductwork serve` (or check the URL and port)."
            ) from None
        except httpx.TimeoutException as exc:
            raise ClientError(f"{method} {self.url}{_API}{path} timed out ({exc}): the "
                              "server is overloaded or a proxy holds the request") from None
        except httpx.TransportError as exc:
            raise ClientError(f"{method} {self.url}{_API}{path} failed: "
                              f"{type(exc).__name__}: {exc}") from None
        kind = resp.headers.get("content-type", "")
        is_json = "json" in kind
        if resp.is_success:
            return resp.json() if is_json and resp.content else resp.text
        try:
            decoded = resp.json() if is_json else None
        except ValueError:
            decoded = None
        raise error_for(resp.status_code, decoded, resp.text)

    # -- pipelines ------------------------------------------------------------------------

    def pipelines(self) -> list[dict[str, Any]]:
        """The published pipelines: name, description, default_version, versions, enabled."""
        return self._call("GET", "/pipelines")

    def pipeline(self, name: str) -> dict[str, Any]:
        """One pipeline, with each version's ``parameters`` JSON Schema."""
        return self._call("GET", f"/pipelines/{_segment(name)}")

    def set_default(self, name: str, version: int) -> dict[str, Any]:
        """Make ``version`` the one a trigger without a version runs (admin)."""
        return self._call("PUT", f"/pipelines/{_segment(name)}/default", {"version": version})

    def disable(self, name: str) -> dict[str, Any]:
        """Refuse new runs of the pipeline (409) until it is enabled (admin)."""
        return self._call("POST", f"/pipelines/{_segment(name)}/disable", {})

    def enable(self, name: str) -> dict[str, Any]:
        """Accept runs of a disabled pipeline again (admin)."""
        return self._call("POST", f"/pipelines/{_segment(name)}/enable", {})

    # -- runs -----------------------------------------------------------------------------

    def trigger(self, name: str, parameters: dict[str, Any] | None = None,
                version: int | None = None) -> str:
        """Queue a run of the pipeline (its default version unless ``version``); its run id."""
        body: dict[str, Any] = {"parameters": dict(parameters or {})}
        if version is not None:
            body["version"] = version
        return self._call("POST", f"/pipelines/{_segment(name)}/runs", body)["run_id"]

    def run(self, run_id: str) -> dict[str, Any]:
        """The run's record: status, pipeline, version, parameters, timings, steps."""
        return self._call("GET", f"/runs/{_segment(run_id)}")

    def runs(self, pipeline: str | None = None, status: str | None = None,
             limit: int | None = None) -> list[dict[str, Any]]:
        """Runs, newest first, optionally of one pipeline and in one status."""
        query = {k: v for k, v in (("pipeline", pipeline), ("status", status),
                                   ("limit", limit)) if v is not None}
        return self._call("GET", "/runs", params=query)

    def logs(self, run_id: str, step_id: str) -> str:
        """The step's captured stdout and stderr."""
        return self._call("GET", f"/runs/{_segment(run_id)}/steps/{_segment(step_id)}/logs")

    def cancel(self, run_id: str) -> dict[str, Any]:
        """Stop a queued run (``cancelled`` at once) or a running one (``cancelling``: it is
        interrupted, then killed); ``Conflict`` if it has already ended."""
        return self._call("POST", f"/runs/{_segment(run_id)}/cancel", {})

    def wait(self, run_id: str, timeout: float | None = None, *,
             poll: float = 0.02, max_poll: float = 1.0) -> dict[str, Any]:
        """Poll the run until it is succeeded, failed, cancelled or died; its record.

        Polls start every ``poll`` seconds (a cached run finishes in well under a
        second) and back off by half each time up to ``max_poll``, so a long run costs
        the server one request a second. Raises ``RunTimeout`` after ``timeout``
        seconds (``None``: wait as long as it takes).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = poll
        while True:
            record = self.run(run_id)
            status = record.get("status")
            if status in FINAL_STATUSES:
                return record
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RunTimeout(
                        f"run {run_id} is still {status!r} after {timeout:g} s; wait longer "
                        "(timeout=...), or cancel it with client.cancel(run_id)",
                        run_id, status)
                time.sleep(min(delay, left))
            else:
                time.sleep(delay)
            delay = min(delay * 1.5, max_poll)
