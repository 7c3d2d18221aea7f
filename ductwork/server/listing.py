"""The runs listing: the server's queue and the store's run history as one list, filtered,
ordered and paged in SQL.

A run triggered here has a queue row and, once begun, a record in the history; a run
from the command line has only the record. The two files are read as one query (the
history attached to a connection on the server's state): each run once, under its
published name when it has a queue row, its status the record's once it has begun
(the queue's before), ordered newest first by when it was submitted (or started, for
a run from the command line). The status filter is applied in that query, so it
reaches every run however old; the one status SQL cannot tell -- a ``running`` run
whose process is gone reads ``died`` (``records.rows``) -- is settled per run, and
the query is paged until ``limit`` runs match.
"""

from __future__ import annotations

import contextlib
import sqlite3
from typing import Any

from ductwork.runtime.records import rows
from ductwork.server import queue
from ductwork.server.state import ServerState
from ductwork.server.views import run_summary

__all__ = ["list_runs"]

_PAGE = 200


def _candidates(status: str) -> tuple[str, ...]:
    """Stored statuses that can read as ``status`` now."""
    return ("died", "running") if status == "died" else (status,)


def _run_columns(db: sqlite3.Connection) -> str:
    """The history's run columns, as ``r.`` names; one an older file lacks reads NULL."""
    have = {row[1] for row in db.execute("PRAGMA h.table_info(runs)")}
    return ", ".join(f"r.{c}" if c in have else "NULL" for c in rows.RUN_COLUMNS)


def _query(db: sqlite3.Connection, pipeline: str | None, status: str | None
           ) -> tuple[str, list[Any]]:
    columns = _run_columns(db)
    sql = f"""
        WITH listed AS (
            SELECT q.run_id AS id_, q.pipeline AS name_, q.submitted AS at_, 1 AS queued_,
                   CASE WHEN q.state = 'queued' THEN 'queued'
                        WHEN r.id IS NOT NULL THEN r.status
                        WHEN q.state = 'finished' THEN 'failed'
                        ELSE q.state END AS status_,
                   r.id IS NOT NULL AS recorded_, {columns}
            FROM queue q LEFT JOIN h.runs r ON r.id = q.run_id AND q.state != 'queued'
            UNION ALL
            SELECT r.id, r.pipeline, r.started, 0, r.status, 1, {columns}
            FROM h.runs r WHERE NOT EXISTS (SELECT 1 FROM queue q WHERE q.run_id = r.id)
        )
        SELECT * FROM listed WHERE 1 = 1"""
    args: list[Any] = []
    if pipeline is not None:
        sql += " AND name_ = ?"
        args.append(pipeline)
    if status is not None:
        marks = _candidates(status)
        sql += f" AND status_ IN ({', '.join('?' for _ in marks)})"
        args.extend(marks)
    sql += " ORDER BY COALESCE(at_, 0) DESC, id_ DESC LIMIT ? OFFSET ?"
    return sql, args


def _attach(db: sqlite3.Connection, history: Any) -> None:
    """The history as ``h`` (an empty one if the store has none yet)."""
    if history is not None and str(history.path) != ":memory:":
        db.execute("ATTACH DATABASE ? AS h", (str(history.path),))
        return
    db.execute("ATTACH DATABASE ':memory:' AS h")
    db.execute(f"CREATE TABLE h.runs ({', '.join(rows.RUN_COLUMNS)})")


def list_runs(state: ServerState, store: Any, pipeline: str | None = None,
              status: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """Runs newest first, of ``pipeline`` and in ``status`` if given, at most ``limit``."""
    from ductwork.runtime.records.runstore import open_history

    history = open_history(store)
    db = sqlite3.connect(state.path, timeout=60)
    listed: list[dict[str, Any]] = []
    try:
        _attach(db, history)
        sql, args = _query(db, pipeline, status)
        offset = 0
        while len(listed) < limit:
            page = db.execute(sql, [*args, _PAGE, offset]).fetchall()
            for found in page:
                summary = _summary(state, found)
                if summary is not None and (status is None or summary["status"] == status):
                    listed.append(summary)
            if len(page) < _PAGE:
                break
            offset += _PAGE
    finally:
        db.close()
    return listed[:limit]


def _summary(state: ServerState, found: tuple[Any, ...]) -> dict[str, Any] | None:
    run_id, queued, recorded = found[0], found[3], found[5]
    row = queue.get_row(state, run_id) if queued else None
    run = None
    if recorded:
        with contextlib.suppress(*rows.BAD_ROW):
            run = rows.run_from_row(tuple(found[6:]))
    if run is None and row is None:
        return None  # a damaged history row: ``ductwork runs`` warns about it
    return run_summary(run, row)
