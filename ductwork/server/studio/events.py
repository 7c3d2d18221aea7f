"""Live pages: one server-sent-events stream per open run page or running step's page.

The stream checks, every ``TICK`` seconds on the server, what would change the page
(``runview.signature``: the run's status and when its child last wrote step states)
and only then renders the page's live part again and sends it as one ``update``
event (``{"status", "html"}``). When the run is over it sends the final state and an
``end`` event, and closes. The browser holds one connection; nothing polls over HTTP.

A running step's page follows its log the same way: every ``TICK`` the server looks at
the log file's size and sends what was added (``append``, ``{"text"}``); once a second,
or when the file is gone, it asks whether the step still runs, and when it does not,
sends an ``end`` event with its state and whole logs (``{"state", "logs"}``), and closes.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import anyio
from fastapi import APIRouter, Request
from starlette.responses import Response, StreamingResponse

from ductwork.server.studio.access import Refused, need
from ductwork.server.studio.live import log_path, read_log
from ductwork.server.studio.render import fragment
from ductwork.server.studio.runview import load_run, signature, step_now

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
TICK = 0.25
HEARTBEAT = 15.0  # seconds between comments that keep proxies from closing the stream
STEP_CHECK = 1.0  # seconds between asking whether a followed step still runs
_HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}


def _event(name: str, data: dict[str, str]) -> str:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n"


@router.get("/runs/{run_id}/events")
async def events(request: Request, run_id: str) -> Response:
    """The run's live part, sent again whenever it changes, until the run is over."""
    who = need(request)
    srv = request.app.state.server
    if await anyio.to_thread.run_sync(srv.runs.get, run_id) == (None, None):
        raise Refused(404, f"No run {run_id!r} in this server's store.")

    async def stream() -> AsyncIterator[str]:
        seen, quiet = None, 0.0
        yield "retry: 2000\n\n"
        while not await request.is_disconnected():
            now = await anyio.to_thread.run_sync(signature, srv, run_id)
            if now != seen:
                seen, quiet = now, 0.0
                view = await anyio.to_thread.run_sync(load_run, srv, run_id)
                if view is None:
                    return
                html = fragment("run_live.html", view=view, who=who)
                yield _event("update", {"status": view["summary"]["status"], "html": html})
                if view["over"]:
                    yield "event: end\ndata: {}\n\n"
                    return
            elif quiet >= HEARTBEAT:
                quiet = 0.0
                yield ": still running\n\n"
            await anyio.sleep(TICK)
            quiet += TICK

    return StreamingResponse(stream(), media_type="text/event-stream", headers=_HEADERS)


@router.get("/runs/{run_id}/steps/{step_id}/logs")
async def step_logs(request: Request, run_id: str, step_id: str, offset: int = 0) -> Response:
    """What a running step prints after ``offset``, sent as it is written, until it ends."""
    need(request)
    srv = request.app.state.server
    path = log_path(srv.state.path, run_id, step_id)
    if await anyio.to_thread.run_sync(step_now, srv, run_id, step_id) is None:
        raise Refused(404, f"Run {run_id!r} has no step {step_id!r}.")

    async def stream() -> AsyncIterator[str]:
        at, since, quiet = max(offset, 0), 0.0, 0.0
        yield "retry: 2000\n\n"
        while not await request.is_disconnected():
            found = await anyio.to_thread.run_sync(read_log, path, at)
            if found is not None and found[0]:
                text, at = found
                quiet = 0.0
                yield _event("append", {"text": text})
            if found is None or since >= STEP_CHECK:
                since = 0.0
                now = await anyio.to_thread.run_sync(step_now, srv, run_id, step_id)
                if now is None or now[0] != "running":
                    state, logs = now or ("unknown", "")
                    yield _event("end", {"state": state, "logs": logs})
                    return
            if quiet >= HEARTBEAT:
                quiet = 0.0
                yield ": still running\n\n"
            await anyio.sleep(TICK)
            since += TICK
            quiet += TICK

    return StreamingResponse(stream(), media_type="text/event-stream", headers=_HEADERS)
