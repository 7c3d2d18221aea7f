"""What the routes work on, one per app: the store, the server's state, the launcher, runs."""

from __future__ import annotations

from typing import Annotated, Any

import attrs
from fastapi import Depends, Request

from ductwork.server.launcher import Launcher
from ductwork.server.state import ServerState
from ductwork.server.views import RunSource

__all__ = ["Server", "ServerDep", "server"]


@attrs.define
class Server:
    """The opened store, the server's state, the launcher and the run finder."""

    artifacts: Any
    state: ServerState
    launcher: Launcher
    runs: RunSource


async def server(request: Request) -> Server:
    """The ``Server`` of the app answering ``request`` (a FastAPI dependency).

    Async because it only reads an attribute: FastAPI runs a plain function dependency in
    its thread pool, a thread hop per request that costs more than the read under load."""
    return request.app.state.server  # type: ignore[no-any-return]


ServerDep = Annotated[Server, Depends(server)]
