"""The studio: every published pipeline and run of a served store, live, in a browser.

``ductwork serve`` mounts it at ``/`` beside the REST API (``mount``). It owns the
pages and forms a browser sees, and only those -- what they show and do comes from
the same functions the API and the command line call:

- ``sessions``: one-time sign-in links, sessions (an HttpOnly, SameSite=Strict
  cookie) and CSRF tokens; ``access``: the guard every route calls first (sign-in,
  the roles of the API's tokens, CSRF on every form);
- ``pages`` (GET) and ``actions`` (POST forms): pipelines, runs, a run, a step,
  compare, metrics, trigger; ``schedules_page``: the Schedules page and its forms;
  ``events``: a run page's live part over server-sent events; ``runview``: one run
  as its page shows it;
- ``queries``: the runs page (keyset-paginated SQL over the run history and the
  queue) and metrics over runs; ``forms``: the trigger form from a parameter JSON
  Schema and back; ``render``: Jinja2, previews, the metrics chart as inline SVG;
- ``live``: step states a run's child writes while it runs, for the live page;
  ``plan_child``: planning a published pipeline in a child process;
- ``templates/`` and ``static/``: shipped in the package (no CDN, no build step).

Nothing here loads until the server starts, except ``live``, which a run's child
process imports (it needs only the standard library).
"""

from __future__ import annotations

from typing import Any

__all__ = ["mount"]


def mount(app: Any) -> None:
    """Add the studio's pages, forms, live streams and static files to ``app``."""
    from starlette.staticfiles import StaticFiles

    from ductwork.server.studio import access, actions, events, pages, schedules_page
    from ductwork.server.studio.render import HERE, page

    app.state.studio = access.Studio()

    async def sign_in_first(request: Any, exc: access.SignInNeeded) -> Any:
        from starlette.responses import RedirectResponse

        return RedirectResponse(access.signin_url(exc.back), status_code=303)

    async def refused(request: Any, exc: access.Refused) -> Any:
        who = app.state.studio.sessions.who(request)
        return page("error.html", who, status=exc.status, message=exc.message,
                    title=f"Error {exc.status}")

    app.add_exception_handler(access.SignInNeeded, sign_in_first)
    app.add_exception_handler(access.Refused, refused)
    app.include_router(actions.router)
    app.include_router(events.router)
    app.include_router(pages.router)
    app.include_router(schedules_page.router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="studio-static")
