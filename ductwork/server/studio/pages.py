"""The studio's pages (GET): pipelines, runs, a run, a step, compare, metrics, trigger form.

Each page reads through the functions the API and the command line use
(``runtime.publish``, the run history, ``views``, ``dw.diff``) and renders a
template; every page is whole without JavaScript.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from ductwork.runtime import publish
from ductwork.server.studio import queries
from ductwork.server.studio.access import Refused, need
from ductwork.server.studio.forms import fields
from ductwork.server.studio.live import log_path, read_log
from ductwork.server.studio.render import SECURITY_HEADERS, chart_svg, page, preview
from ductwork.server.studio.runview import load_run

__all__ = ["history_path", "router"]

router = APIRouter(include_in_schema=False)
STATUSES = ("queued", "running", "succeeded", "failed", "cancelled", "died")
PAGE_SIZE = 50


def history_path(srv: Any) -> Path | None:
    """The store's run history file, or None when it is not a file."""
    from ductwork.runtime.records.runstore import runstore_path

    path = runstore_path(srv.artifacts)
    return None if path == ":memory:" else Path(path)


def _day(text: str | None, end: bool = False) -> float | None:
    """A ``YYYY-mm-dd`` form value as a timestamp (the day's end for ``end``), or None."""
    if not text:
        return None
    try:
        day = dt.datetime.strptime(text, "%Y-%m-%d")
    except ValueError:
        raise Refused(400, f"Dates are YYYY-mm-dd, got {text!r}.") from None
    return (day + dt.timedelta(days=1 if end else 0)).timestamp()


def _pipeline(srv: Any, name: str) -> dict[str, Any]:
    try:
        return publish.get_pipeline(name, srv.artifacts)
    except (publish.PublishedNotFound, publish.PublishError) as exc:
        raise Refused(404, str(exc)) from None


@router.get("/")
def home(request: Request) -> Response:
    """The studio's front page is the pipelines page."""
    need(request)
    return RedirectResponse("/pipelines", status_code=303)


@router.get("/pipelines")
def pipelines(request: Request) -> Response:
    """Every published pipeline: versions, default, enabled, description, last runs."""
    who = need(request)
    srv = request.app.state.server
    listed = publish.list_pipelines(srv.artifacts)
    for item in listed:
        item["last_runs"] = queries.runs_page(srv.state.path, history_path(srv),
                                              pipeline=item["name"], limit=5).rows
    return page("pipelines.html", who, pipelines=listed, title="Pipelines")


@router.get("/pipelines/{name}/trigger")
def trigger_form(request: Request, name: str, version: int | None = None) -> Response:
    """The form to trigger a run, built from the version's parameter schema."""
    who = need(request, "runner")
    found = _pipeline(request.app.state.server, name)
    version = version or found["default_version"]
    record = next((r for r in found["records"] if r["version"] == version), None)
    if record is None:
        raise Refused(404, f"Pipeline {name!r} has no version {version}.")
    return page("trigger.html", who, pipeline=found, version=version,
                fields=fields(record.get("parameters", {})), plan=None, error=None,
                title=f"Trigger {name}")


@router.get("/pipelines/{name}/metrics")
def metrics(request: Request, name: str) -> Response:
    """Each metric of the pipeline's steps over its runs, as a chart."""
    who = need(request)
    srv = request.app.state.server
    series = queries.metric_series(srv.state.path, history_path(srv), name)
    charts = [{"name": key, "svg": chart_svg(key, points), "points": points}
              for key, points in sorted(series.items())]
    return page("metrics.html", who, pipeline=name, charts=charts, title=f"Metrics of {name}")


@router.get("/runs")
def runs(request: Request, pipeline: str | None = None, status: str | None = None,
         since: str | None = None, until: str | None = None,
         after: str | None = None) -> Response:
    """Runs newest first, filtered, a page at a time."""
    who = need(request)
    srv = request.app.state.server
    found = queries.runs_page(srv.state.path, history_path(srv), pipeline=pipeline or None,
                              status=status or None, since=_day(since),
                              until=_day(until, end=True), after=after, limit=PAGE_SIZE)
    names = queries.pipeline_names(srv.state.path, history_path(srv))
    filters = {"pipeline": pipeline or "", "status": status or "", "since": since or "",
               "until": until or ""}
    return page("runs.html", who, page=found, names=names, statuses=STATUSES,
                filters=filters, title="Runs")


@router.get("/runs/{run_id}")
def run_page(request: Request, run_id: str) -> Response:
    """One run: its graph and steps, live while it runs."""
    who = need(request)
    view = load_run(request.app.state.server, run_id)
    if view is None:
        raise Refused(404, f"No run {run_id!r} in this server's store.")
    return page("run.html", who, view=view, title=f"Run {run_id}")


@router.get("/runs/{run_id}/graph.svg")
def run_graph(request: Request, run_id: str) -> Response:
    """The run's whole graph, coloured by step state, however big (the run page links it)."""
    need(request)
    view = load_run(request.app.state.server, run_id, graph_limit=None)
    if view is None:
        raise Refused(404, f"No run {run_id!r} in this server's store.")
    return Response(str(view["graph"]), media_type="image/svg+xml",
                    headers=SECURITY_HEADERS)


@router.get("/runs/{run_id}/steps/{step_id}")
def step_page(request: Request, run_id: str, step_id: str) -> Response:
    """One step of a run: status, why, logs, metrics, outputs with previews."""
    who = need(request)
    srv = request.app.state.server
    view = load_run(srv, run_id)
    if view is None:
        raise Refused(404, f"No run {run_id!r} in this server's store.")
    step = next((s for s in view["steps"] if s["id"] == step_id), None)
    if step is None:
        raise Refused(404, f"Run {run_id!r} has no step {step_id!r}.")
    record = view["run"].steps.get(step_id) if view["run"] is not None else None
    previews = {}
    if record is not None:
        if step["why"] is None and step["status"] in ("succeeded", "failed"):
            step["why"] = record.why
        previews = {name: preview(srv.artifacts, ref)
                    for name, ref in record.output_refs.items()}
    follow = None
    if step["state"] == "running":  # its output so far, and where to follow the rest
        found = read_log(log_path(srv.state.path, run_id, step_id))
        if found is not None:
            step["logs"], offset = found
            follow = f"/runs/{run_id}/steps/{quote(step_id, safe='')}/logs?offset={offset}"
    return page("step.html", who, view=view, step=step, previews=previews, follow=follow,
                title=f"Step {step_id} of {run_id}")


@router.get("/compare")
def compare(request: Request, a: str = "", b: str = "") -> Response:
    """Two runs side by side: ``dw.diff`` of their parameters, code, data and outputs."""
    who = need(request)
    srv = request.app.state.server
    if not a or not b:
        return page("compare.html", who, a=a, b=b, diff=None, views=None, title="Compare")
    from ductwork.runtime.records.diff import diff_runs

    views = [load_run(srv, run_id) for run_id in (a, b)]
    for run_id, view in zip((a, b), views, strict=True):
        if view is None or view["run"] is None:
            raise Refused(404, f"No recorded run {run_id!r} to compare (a queued run has "
                               "nothing to compare yet).")
    try:
        found = diff_runs(a, b, srv.artifacts).to_dict()
    except LookupError as exc:
        raise Refused(404, str(exc)) from None
    ids = sorted({s["id"] for v in views if v for s in v["steps"]})
    side = [{"id": sid, "a": next((s for s in views[0]["steps"] if s["id"] == sid), None),
             "b": next((s for s in views[1]["steps"] if s["id"] == sid), None),
             "diff": found["steps"].get(sid)} for sid in ids]
    return page("compare.html", who, a=a, b=b, diff=found, views=views, side=side,
                title=f"Compare {a} and {b}")
