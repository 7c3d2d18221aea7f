"""Live run pages: one server-sent-events stream per open run page.

The stream checks, every ``TICK`` seconds on the server, what would change the page
(``runview.signature``: the run's status and when its child last wrote step states)
and only then renders the page's live part again and sends it as one ``update``
event (``{"status", "html"}``). When the run is over it sends the final state and an
``end`` event, and closes. The browser holds one connection; nothing polls over HTTP.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import anyio
from fastapi import APIRouter, Request
from starlette.responses import Response, StreamingResponse

from ductwork.server.studio.access import Refused, need
from ductwork.server.studio.render import fragment
from ductwork.server.studio.runview import load_run, signature

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
TICK = 0.25
HEARTBEAT = 15.0  # seconds between comments that keep proxies from closing the stream


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
                data = json.dumps({"status": view["summary"]["status"], "html": html})
                yield f"event: update\ndata: {data}\n\n"
                if view["over"]:
                    yield "event: end\ndata: {}\n\n"
                    return
            elif quiet >= HEARTBEAT:
                quiet = 0.0
                yield ": still running\n\n"
            await anyio.sleep(TICK)
            quiet += TICK

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
