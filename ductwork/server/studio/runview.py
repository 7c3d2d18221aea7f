"""One run as its page shows it -- the same view whether the page is drawn whole or its live
part is sent again over server-sent events."""

from __future__ import annotations

from typing import Any

from ductwork.server.studio.live import live_dir, read_live
from ductwork.server.studio.render import (
    GRAPH_INLINE,
    graph_svg,
    output_info,
    state_of,
    step_rows,
)
from ductwork.server.views import run_summary

__all__ = ["FINAL", "load_run", "signature", "step_now"]

UNFINISHED = ("queued", "running")
FINAL = "final"


def _attach(srv: Any, run: Any) -> None:
    """Give the record a way to explain its steps (``why``) and load outputs."""
    from ductwork.runtime.records.history import attach
    from ductwork.runtime.records.runstore import open_history

    history = open_history(srv.artifacts)
    if history is not None:
        attach(run, srv.artifacts, history)


def load_run(srv: Any, run_id: str, graph_limit: int | None = GRAPH_INLINE
             ) -> dict[str, Any] | None:
    """The run's summary, steps (live while it runs), graph (inline up to ``graph_limit``
    nodes, else a link), and whether it is over."""
    run, row = srv.runs.get(run_id)
    if run is None and row is None:
        return None
    summary = run_summary(run, row)
    live = None
    if summary["status"] in UNFINISHED:
        live = read_live(srv.state.path, run_id)
    if run is not None and run.steps:
        _attach(srv, run)
    steps = step_rows(run, live)
    for step in steps:
        step["outputs"] = {name: output_info(ref) if not isinstance(ref, dict) else ref
                           for name, ref in step["outputs"].items()}
    counts: dict[str, int] = {}
    for step in steps:
        counts[step["state"]] = counts.get(step["state"], 0) + 1
    return {"run": run, "row": row, "summary": summary, "steps": steps,
            "graph": graph_svg(run, steps, graph_limit), "counts": counts,
            "parameters": run.params if run is not None else (row or {}).get("parameters", {}),
            "over": summary["status"] not in UNFINISHED,
            "error": (row or {}).get("error") if run is None else None}


def signature(srv: Any, run_id: str) -> tuple[Any, ...]:
    """What changes when the run page would: the run's status and its live file's time."""
    run, row = srv.runs.get(run_id)
    status = run_summary(run, row)["status"] if run is not None or row is not None else None
    try:
        stamp = (live_dir(srv.state.path) / f"{run_id}.json").stat().st_mtime_ns
    except OSError:
        stamp = None
    return status, stamp


def step_now(srv: Any, run_id: str, step_id: str) -> tuple[str, str] | None:
    """A step's state and logs now -- from its run's live file while the run runs, else its
    record -- without drawing the run (None: no such step, or not known yet)."""
    run, row = srv.runs.get(run_id)
    if run is None and row is None:
        return None
    if run_summary(run, row)["status"] in UNFINISHED:
        live = read_live(srv.state.path, run_id) or {}
        found = live.get(step_id)
        return None if found is None else (state_of(found), str(found.get("logs") or ""))
    record = run.steps.get(step_id) if run is not None else None
    if record is None:
        return None
    status = str(record.status)
    return state_of({"status": status, "cached": record.cached}), record.logs or ""
