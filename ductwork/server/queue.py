"""The durable queue of runs triggered over HTTP: one row per run in the server's state.

A row goes ``queued -> running -> finished`` (or ``died``), or ``queued ->
cancelled``. It keeps what the run store does not: the published name and version,
the parameters as sent, the name of the token that triggered it, when it was
submitted, and the child's pid (with its start time, so a recycled pid is never taken
for it) while it runs. Rows are taken first in, first out (by ``seq``). Claiming a
row and marking it running is one transaction, so two launchers never start one run
twice; each claim carries a fresh random ``claim`` the child must still find on the
row to register (``register``), and a restarted server re-queues a row no child has
registered on only while that stays true (``requeue_unstarted``), so a child
started by a server that died before recording it never runs beside a second one.

Run ids are ``YYYYmmdd-HHMMSS-`` and 32 hex digits (128 random bits): they sort by
time like the command line's, and cannot be guessed.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import sqlite3
import time
from typing import Any

from ductwork.server.state import ServerState

__all__ = [
    "QUEUED", "RUNNING", "cancel_queued", "claim_next", "enqueue", "finish", "get_row",
    "list_rows", "new_api_run_id", "register", "requeue_unstarted", "rows_in", "set_pid",
    "set_state",
]

QUEUED, RUNNING, FINISHED, CANCELLED, DIED = "queued", "running", "finished", "cancelled", "died"
_COLUMNS = ("run_id, pipeline, version, parameters, token, state, submitted, started, "
            "finished, pid, pid_start, claim, error, schedule")


def new_api_run_id() -> str:
    """A run id that sorts by time and cannot be guessed: ``20261126-011503-<32 hex>``."""
    return f"{dt.datetime.now(dt.UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(16)}"


def _row(row: sqlite3.Row | None) -> dict[str, Any] | None:
    if row is None:
        return None
    found = dict(row)
    found["parameters"] = json.loads(found["parameters"])
    return found


def enqueue(state: ServerState, pipeline: str, version: int, parameters: dict[str, Any],
            token: str, *, run_id: str | None = None, schedule: str | None = None) -> str:
    """Queue a run of ``pipeline`` version ``version`` (by schedule ``schedule``, if one
    started it); return its run id (new unless given)."""
    run_id = run_id or new_api_run_id()
    with state.transaction() as db:
        db.execute("INSERT INTO queue (run_id, pipeline, version, parameters, token, state, "
                   "submitted, schedule) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                   (run_id, pipeline, version, json.dumps(parameters), token, QUEUED,
                    time.time(), schedule))
    return run_id


def claim_next(state: ServerState) -> dict[str, Any] | None:
    """Take the oldest queued run and mark it running under a new ``claim`` (no pid yet),
    or None."""
    with state.transaction() as db:
        db.row_factory = sqlite3.Row
        try:
            row = db.execute(f"SELECT {_COLUMNS} FROM queue WHERE state = ? ORDER BY seq "
                             "LIMIT 1", (QUEUED,)).fetchone()
            if row is None:
                return None
            claim = secrets.token_hex(16)
            db.execute("UPDATE queue SET state = ?, started = ?, claim = ?, pid = NULL, "
                       "pid_start = NULL WHERE run_id = ?",
                       (RUNNING, time.time(), claim, row["run_id"]))
        finally:
            db.row_factory = None
    found = _row(row)
    assert found is not None
    found.update(state=RUNNING, claim=claim, pid=None, pid_start=None)
    return found


def set_pid(state: ServerState, run_id: str, claim: str, pid: int, start: str | None) -> bool:
    """Record the child that runs ``run_id`` under ``claim``; say whether the claim held."""
    with state.transaction() as db:
        return db.execute("UPDATE queue SET pid = ?, pid_start = ? WHERE run_id = ? AND "
                          "claim = ? AND state = ?",
                          (pid, start, run_id, claim, RUNNING)).rowcount > 0


def register(state: ServerState, run_id: str, claim: str, pid: int, start: str | None
             ) -> bool:
    """A child's first act: record itself on its row; False if the claim is gone (the row
    was re-queued or ended), and then the child must not run."""
    return set_pid(state, run_id, claim, pid, start)


def requeue_unstarted(state: ServerState, run_id: str) -> bool:
    """Queue a running row again if no child has registered on it (its claim is dropped,
    so a late child of the old claim will not run); say whether it was."""
    with state.transaction() as db:
        return db.execute("UPDATE queue SET state = ?, started = NULL, claim = NULL "
                          "WHERE run_id = ? AND state = ? AND pid IS NULL",
                          (QUEUED, run_id, RUNNING)).rowcount > 0


def set_state(state: ServerState, run_id: str, new: str, *, was: str | None = None,
              error: str | None = None) -> bool:
    """Move ``run_id`` to ``new`` (only from ``was``, if given); say whether it moved."""
    sql = "UPDATE queue SET state = ?, error = COALESCE(?, error)"
    args: list[Any] = [new, error]
    if new in (FINISHED, CANCELLED, DIED):
        sql += ", finished = ?"
        args.append(time.time())
    if new == QUEUED:
        sql += ", started = NULL, pid = NULL, pid_start = NULL, claim = NULL"
    sql += " WHERE run_id = ?"
    args.append(run_id)
    if was is not None:
        sql += " AND state = ?"
        args.append(was)
    with state.transaction() as db:
        return db.execute(sql, args).rowcount > 0


def finish(state: ServerState, run_id: str, error: str | None = None) -> None:
    """Mark a running run's child as gone, with what it said if it never recorded the run."""
    set_state(state, run_id, FINISHED, was=RUNNING, error=error)


def cancel_queued(state: ServerState, run_id: str) -> bool:
    """Cancel ``run_id`` if it is still queued; say whether it was."""
    return set_state(state, run_id, CANCELLED, was=QUEUED)


def get_row(state: ServerState, run_id: str) -> dict[str, Any] | None:
    """The queue row of ``run_id``, or None for a run not triggered through this server."""
    found = state.read(f"SELECT {_COLUMNS} FROM queue WHERE run_id = ?", (run_id,))
    return _row(found[0]) if found else None


def rows_in(state: ServerState, states: tuple[str, ...]) -> list[dict[str, Any]]:
    """Rows in any of ``states``, oldest first."""
    marks = ", ".join("?" for _ in states)
    found = state.read(f"SELECT {_COLUMNS} FROM queue WHERE state IN ({marks}) ORDER BY seq",
                       states)
    return [r for r in map(_row, found) if r is not None]


def list_rows(state: ServerState, pipeline: str | None = None, limit: int | None = None
              ) -> list[dict[str, Any]]:
    """Rows newest first, of ``pipeline`` if given, at most ``limit``."""
    sql, args = f"SELECT {_COLUMNS} FROM queue", []
    if pipeline is not None:
        sql += " WHERE pipeline = ?"
        args.append(pipeline)
    sql += " ORDER BY seq DESC"
    if limit is not None:
        sql += " LIMIT ?"
        args.append(limit)
    return [r for r in map(_row, state.read(sql, args)) if r is not None]
