"""The studio's reads of many runs at once, in SQL: the runs page and metrics over runs.

Runs live in two SQLite files: the store's run history (every run, from the command
line or the server) and the server's queue (runs triggered over HTTP, some not begun
yet). One read-only connection opens the server's file and attaches the history, so
one query merges them, as ``views`` does for the API: a run with a record has the
record's status; the queue names an API run's published pipeline and version.

The runs page is keyset-paginated: a page is the next ``limit`` runs strictly older
than the last one shown, by ``(time, run_id)`` -- so a page costs the same at the
ten-thousandth run as at the first, with no ``OFFSET`` to walk past.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["Page", "metric_series", "pipeline_names", "runs_page"]

_FROM_HISTORY = """
SELECT r.id AS run_id, COALESCE(q.pipeline, r.pipeline) AS pipeline, q.version AS version,
       r.status AS status, COALESCE(q.submitted, r.started) AS t, r.started AS started,
       r.finished AS finished, q.token AS token, q.schedule AS schedule
FROM hist.runs r LEFT JOIN main.queue q ON q.run_id = r.id
"""
_FROM_QUEUE = """
SELECT q.run_id AS run_id, q.pipeline AS pipeline, q.version AS version,
       CASE q.state WHEN 'finished' THEN 'failed' ELSE q.state END AS status,
       q.submitted AS t, q.started AS started, q.finished AS finished, q.token AS token,
       q.schedule AS schedule
FROM main.queue q
"""


@contextlib.contextmanager
def _connect(state_path: Path, history_path: Path | None) -> Iterator[tuple[Any, str]]:
    """A read-only connection to the server's file (with the history attached if it exists)
    and the SQL of the merged runs."""
    db = sqlite3.connect(f"{state_path.resolve().as_uri()}?mode=ro", uri=True, timeout=10)
    try:
        db.row_factory = sqlite3.Row
        if history_path is not None and history_path.exists():
            db.execute("ATTACH DATABASE ? AS hist",
                       (f"{history_path.resolve().as_uri()}?mode=ro",))
            merged = (_FROM_HISTORY + " UNION ALL " + _FROM_QUEUE
                      + " WHERE NOT EXISTS (SELECT 1 FROM hist.runs h WHERE h.id = q.run_id)")
        else:
            merged = _FROM_QUEUE
        yield db, merged
    finally:
        db.close()


class Page:
    """One page of runs: the rows, and the cursor of the next (older) page or None."""

    def __init__(self, rows: list[dict[str, Any]], after: str | None) -> None:
        self.rows, self.after = rows, after


def parse_cursor(cursor: str | None) -> tuple[float, str] | None:
    """``"<time>:<run_id>"`` as (time, run_id); None for no or a malformed cursor."""
    if not cursor or ":" not in cursor:
        return None
    when, _, run_id = cursor.partition(":")
    try:
        return float(when), run_id
    except ValueError:
        return None


def runs_page(state_path: Path, history_path: Path | None, *, pipeline: str | None = None,
              status: str | None = None, since: float | None = None,
              until: float | None = None, after: str | None = None, limit: int = 50) -> Page:
    """Runs newest first, filtered, the ``limit`` after the cursor ``after``."""
    where, args = ["t IS NOT NULL"], []
    for column, value in (("pipeline", pipeline), ("status", status)):
        if value:
            where.append(f"{column} = ?")
            args.append(value)
    if since is not None:
        where.append("t >= ?")
        args.append(since)
    if until is not None:
        where.append("t < ?")
        args.append(until)
    cursor = parse_cursor(after)
    if cursor is not None:
        where.append("(t < ? OR (t = ? AND run_id < ?))")
        args += [cursor[0], cursor[0], cursor[1]]
    with _connect(state_path, history_path) as (db, merged):
        found = db.execute(f"SELECT * FROM ({merged}) WHERE {' AND '.join(where)} "
                           "ORDER BY t DESC, run_id DESC LIMIT ?", [*args, limit + 1]).fetchall()
    rows = [dict(r) for r in found[:limit]]
    for row in rows:
        started, finished = row["started"], row["finished"]
        row["duration"] = None if started is None or finished is None else finished - started
        row["via"] = ("schedule" if row["schedule"] else "api" if row["token"] is not None
                      else "local")
    more = len(found) > limit
    return Page(rows, f"{rows[-1]['t']!r}:{rows[-1]['run_id']}" if more and rows else None)


def pipeline_names(state_path: Path, history_path: Path | None) -> list[str]:
    """Every pipeline name a run was recorded or queued under, sorted."""
    with _connect(state_path, history_path) as (db, merged):
        return [r[0] for r in db.execute(f"SELECT DISTINCT pipeline FROM ({merged}) "
                                         "ORDER BY pipeline")]


def metric_series(state_path: Path, history_path: Path | None, pipeline: str,
                  limit: int = 200) -> dict[str, list[tuple[str, float, float]]]:
    """``{"step.metric": [(run_id, started, value), ...]}`` over the newest ``limit`` runs
    of ``pipeline`` that recorded metrics, oldest first; values that are not numbers are
    left out."""
    if history_path is None or not history_path.exists():
        return {}
    with _connect(state_path, history_path) as (db, _):
        found = db.execute(
            "SELECT r.id, r.started, s.id AS step, s.metrics FROM hist.runs r "
            "LEFT JOIN main.queue q ON q.run_id = r.id JOIN hist.steps s ON s.run_id = r.id "
            "WHERE COALESCE(q.pipeline, r.pipeline) = ? AND s.metrics IS NOT NULL "
            "AND s.metrics NOT IN ('', '{}') AND r.id IN (SELECT r2.id FROM hist.runs r2 "
            "LEFT JOIN main.queue q2 ON q2.run_id = r2.id "
            "WHERE COALESCE(q2.pipeline, r2.pipeline) = ? ORDER BY r2.started DESC LIMIT ?) "
            "ORDER BY r.started, r.id", (pipeline, pipeline, limit)).fetchall()
    series: dict[str, list[tuple[str, float, float]]] = {}
    for run_id, started, step, metrics in found:
        try:
            values = json.loads(metrics)
        except ValueError:
            continue
        for name, value in (values.items() if isinstance(values, dict) else ()):
            if isinstance(value, int | float) and not isinstance(value, bool) \
                    and value == value and abs(value) != float("inf"):
                series.setdefault(f"{step}.{name}", []).append((run_id, started or 0.0,
                                                                float(value)))
    return series
