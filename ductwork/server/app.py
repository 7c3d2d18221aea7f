"""The FastAPI application: the routes under ``/api/v1``, their OpenAPI document at
``/api/v1/openapi.json``, the studio's pages at ``/``, and the launcher and the
scheduler started and stopped with the app.

``create_app`` opens the store and the server's state once; routes reach them
through ``request.app.state.server`` (a ``service.Server``).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI

from ductwork.server import errors
from ductwork.server.launcher import Launcher
from ductwork.server.limits import BodyLimits
from ductwork.server.routes_pipelines import router as pipelines
from ductwork.server.routes_runs import router as runs
from ductwork.server.routes_schedules import router as schedules
from ductwork.server.scheduler import Scheduler
from ductwork.server.service import Server
from ductwork.server.state import ServerState, state_path
from ductwork.server.views import RunSource

__all__ = ["API", "create_app"]

API = "/api/v1"


def create_app(store: Any = None, *, backend: str = "inline", max_runs: int = 4,
               cancel_grace: float = 10.0, address: str | None = None,
               shared_filesystem: bool = False) -> FastAPI:
    """The app serving the published pipelines and runs of ``store``."""
    from ductwork import __version__
    from ductwork.runtime.store.artifacts import open_store

    artifacts = open_store(store)
    state = ServerState(state_path(artifacts))
    # Children get the store as it was named (a URL may carry options); a local path as
    # the absolute path it resolved to, whatever directory they start in.
    where = artifacts.url if artifacts.is_local or store is None else str(store)
    runs_source = RunSource(state, artifacts)
    launcher = Launcher(state, where, backend, max_runs,
                        recorded=runs_source.status,
                        grace=cancel_grace,
                        options={"address": address, "shared_filesystem": shared_filesystem})
    scheduler = Scheduler(artifacts, state, launcher, runs_source)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        launcher.start()
        scheduler.start()  # the server is the scheduler: it fires the store's schedules
        try:
            yield
        finally:
            scheduler.stop()
            launcher.stop()

    app = FastAPI(title="ductwork", version=__version__, lifespan=lifespan,
                  description="Published ductwork pipelines: trigger runs and follow them.",
                  openapi_url=f"{API}/openapi.json", docs_url=f"{API}/docs", redoc_url=None)
    app.state.server = Server(artifacts, state, launcher, runs_source)
    errors.install(app)
    app.add_middleware(BodyLimits, json_under=f"{API}/")
    app.include_router(pipelines, prefix=API)
    app.include_router(runs, prefix=API)
    app.include_router(schedules, prefix=API)
    from ductwork.server.studio import mount

    mount(app)  # the studio's pages at /, after the API so /api/v1 stays the API's
    return app
