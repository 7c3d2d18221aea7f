"""Run history in SQLite: runs, step runs, their cache keys and key components.

The database sits beside a local artifact store (``<store>/runs.sqlite``); for
a remote store it lives under ``DUCTWORK_HOME`` (default ``~/.ductwork``).
WAL mode lets several processes run pipelines on one store at once; each run
is written in two transactions (begun, finished), so the per-step cost is a
row in a batch, not a commit.

The cache index proper (key -> output digests) lives with the artifacts
(``ArtifactStore.put_key``), so every machine that shares a store shares its
cache; this database keeps each step run's key and the components of that key,
which is what ``why`` compares.

Statuses are written as the plain strings ``Status`` members equal
(``"succeeded"``), so files written before the enum read back unchanged; on
reading, a known string becomes its ``Status`` and an unknown one (written by a
newer ductwork) is kept as it is.

Each process keeps one ``RunStore`` per SQLite file in a bounded cache
(``caches``). Dropping one from the cache does not close it under a caller
still using it (a run in progress, a ``Run`` whose ``why`` reads history): its
connection closes when the last reference goes (``weakref.finalize``). An
in-memory history (``memory://`` stores) is not a cache but the only copy, so
it is held until ``forget_runstore``.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import threading
import weakref
from pathlib import Path
from typing import Any

from ductwork.runtime import caches
from ductwork.runtime.config import ductwork_home
from ductwork.runtime.records.run import Run, StepRun
from ductwork.runtime.status import Status
from ductwork.runtime.store.refs import (
    decode_structure,
    encode_structure,
    ref_from_json,
    ref_to_json,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    pipeline TEXT NOT NULL,
    status TEXT NOT NULL,
    backend TEXT,
    store TEXT,
    params TEXT,
    graph TEXT,
    result TEXT,
    started REAL,
    finished REAL,
    git_commit TEXT,
    git_dirty INTEGER,
    ductwork_version TEXT,
    python_version TEXT,
    driver TEXT
);
CREATE INDEX IF NOT EXISTS runs_by_start ON runs (started);
CREATE TABLE IF NOT EXISTS steps (
    run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    id TEXT NOT NULL,
    step TEXT NOT NULL,
    status TEXT NOT NULL,
    cached INTEGER NOT NULL,
    attempts INTEGER,
    started REAL,
    finished REAL,
    map_index INTEGER,
    cache_key TEXT,
    components TEXT,
    outputs TEXT,
    error TEXT,
    logs TEXT,
    metrics TEXT,
    note TEXT,
    PRIMARY KEY (run_id, id)
);
CREATE INDEX IF NOT EXISTS steps_by_id ON steps (id, started);
"""

_RUN_COLUMNS = (
    "id", "pipeline", "status", "backend", "store", "params", "graph", "result", "started",
    "finished", "git_commit", "git_dirty", "ductwork_version", "python_version", "driver",
)
_STEP_COLUMNS = (
    "run_id", "id", "step", "status", "cached", "attempts", "started", "finished", "map_index",
    "cache_key", "components", "outputs", "error", "logs", "metrics", "note",
)

def _schema_columns() -> dict[str, list[tuple[str, str]]]:
    """Each table's ``(column, type)`` pairs, read from ``SCHEMA``."""
    tables: dict[str, list[tuple[str, str]]] = {}
    current = None
    for line in SCHEMA.splitlines():
        words = line.split()
        if line.startswith("CREATE TABLE"):
            current = tables.setdefault(words[5], [])
        elif line.startswith(")"):
            current = None
        elif current is not None and len(words) >= 2 and words[0] != "PRIMARY":
            current.append((words[0], words[1].rstrip(",")))
    return tables


# Reopening a file-backed store costs a connect, so a generous bound loses nothing.
_OPEN = caches.cache("records.run_stores", maxsize=64)
_IN_MEMORY: dict[str, RunStore] = {}  # by store URL; the only copy of that history
_OPEN_LOCK = threading.Lock()  # one RunStore per handle, even when threads race to open


def runstore_path(store: Any) -> str:
    """The SQLite file for an artifact store: beside it if local, in memory for ``memory://``,
    else in the ductwork home."""
    if store.is_local:
        return str(Path(store.root) / "runs.sqlite")
    if store.in_memory:
        return ":memory:"
    return str(ductwork_home() / "runs.sqlite")


def open_runstore(store: Any) -> RunStore:
    """Return the (per-process, shared) run store for an artifact store."""
    path = runstore_path(store)
    # An in-memory history belongs to its in-memory store, one per store URL.
    with _OPEN_LOCK:
        if path == ":memory:":
            found = _IN_MEMORY.get(store.url)
            if found is None:
                found = _IN_MEMORY[store.url] = RunStore(path)
            return found
        found = _OPEN.get(path)
        if found is None:
            found = _OPEN.put(path, RunStore(path))
        return found


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, default=repr)


class RunStore:
    """Runs and step runs in one SQLite file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), timeout=60, check_same_thread=False,
                                   isolation_level=None)
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        _retry_locked(lambda: self._db.execute("PRAGMA journal_mode=WAL"))
        with self._lock:
            _retry_locked(lambda: self._db.executescript(SCHEMA))
            _retry_locked(self._add_missing_columns)
        # Closes the connection when this object is dropped (or on close()); it holds the
        # connection, not self, so it does not keep self alive.
        self._close = weakref.finalize(self, self._db.close)

    def _add_missing_columns(self) -> None:
        """Bring a file written by an older ductwork up to ``SCHEMA`` (columns only grow)."""
        for table, columns in _schema_columns().items():
            have = {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}
            for name, kind in columns:
                if name not in have:
                    # Added columns are nullable: rows of older runs simply lack the value.
                    try:
                        self._db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")
                    except sqlite3.OperationalError as exc:
                        if "duplicate column" not in str(exc):
                            raise  # another process opening the file added it first: fine

    def _write(self, statements: list[tuple[str, Any]]) -> None:
        # BEGIN IMMEDIATE takes the write lock up front, so two processes queue on the
        # busy timeout instead of failing mid-transaction.
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for sql, rows in statements:
                    self._db.executemany(sql, rows)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def begin_run(self, run: Run) -> None:
        """Record a run as started."""
        self._write([(_insert("runs", _RUN_COLUMNS), [_run_row(run)])])

    def finish_run(self, run: Run) -> None:
        """Record a run's final state and all its step runs, in one transaction."""
        self._write([
            (_insert("runs", _RUN_COLUMNS), [_run_row(run)]),
            (_insert("steps", _STEP_COLUMNS), [_step_row(run.id, s) for s in run.steps.values()]),
        ])

    def get_run(self, run_id: str) -> Run | None:
        """Load one run with its step runs, or None."""
        with self._lock:
            row = self._db.execute(
                f"SELECT {', '.join(_RUN_COLUMNS)} FROM runs WHERE id = ?", (run_id,)
            ).fetchone()
            if row is None:
                return None
            steps = self._db.execute(
                f"SELECT {', '.join(_STEP_COLUMNS)} FROM steps WHERE run_id = ? ORDER BY rowid",
                (run_id,),
            ).fetchall()
        run = _run_from_row(row)
        for step_row in steps:
            record = _step_from_row(step_row)
            run.steps[record.id] = record
        return run

    def list_runs(self, pipeline: str | None = None, limit: int | None = None) -> list[Run]:
        """Runs, newest first, without their step runs."""
        sql = f"SELECT {', '.join(_RUN_COLUMNS)} FROM runs"
        args: list[Any] = []
        if pipeline is not None:
            sql += " WHERE pipeline = ?"
            args.append(pipeline)
        sql += " ORDER BY started DESC, id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        return [_run_from_row(r) for r in rows]

    def previous_step(self, pipeline: str, step_id: str, before: float, exclude_run: str
                      ) -> tuple[str, str | None, dict[str, str] | None] | None:
        """The latest earlier run of this step that has a key: (run id, key, components)."""
        with self._lock:
            row = self._db.execute(
                "SELECT s.run_id, s.cache_key, s.components FROM steps s JOIN runs r "
                "ON r.id = s.run_id WHERE r.pipeline = ? AND s.id = ? AND s.run_id != ? "
                "AND s.cache_key IS NOT NULL AND r.started <= ? "
                "ORDER BY r.started DESC LIMIT 1",
                (pipeline, step_id, exclude_run, before),
            ).fetchone()
        if row is None:
            return None
        return row[0], row[1], json.loads(row[2]) if row[2] else None

    def referenced_digests(self, run_ids: list[str]) -> set[str]:
        """Every artifact digest the given runs' steps and results refer to."""
        from ductwork.runtime.store.refs import iter_digests, map_refs

        found: set[str] = set()
        with self._lock:
            for run_id in run_ids:
                for (outputs,) in self._db.execute(
                    "SELECT outputs FROM steps WHERE run_id = ?", (run_id,)
                ):
                    for ref in json.loads(outputs or "{}").values():
                        found.update(iter_digests(ref_from_json(ref)))
                (result,) = self._db.execute(
                    "SELECT result FROM runs WHERE id = ?", (run_id,)
                ).fetchone() or (None,)
                if result:
                    map_refs(decode_structure(json.loads(result)),
                             lambda r: found.update(iter_digests(r)))
        return found

    def referenced_keys(self, run_ids: list[str]) -> set[str]:
        """Every cache key the given runs' steps used."""
        keys: set[str] = set()
        with self._lock:
            for run_id in run_ids:
                keys.update(k for (k,) in self._db.execute(
                    "SELECT cache_key FROM steps WHERE run_id = ? AND cache_key IS NOT NULL",
                    (run_id,),
                ))
        return keys

    def delete_runs(self, run_ids: list[str]) -> None:
        """Forget runs and their step runs."""
        self._write([
            ("DELETE FROM steps WHERE run_id = ?", [(r,) for r in run_ids]),
            ("DELETE FROM runs WHERE id = ?", [(r,) for r in run_ids]),
        ])

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._close()


def _retry_locked(action: Any, seconds: float = 60.0) -> Any:
    """Run ``action``, retrying while another process holds the database lock.

    Switching a new file to WAL, or creating its tables, while another process
    does the same can fail at once with "database is locked": SQLite returns
    without waiting on the busy timeout when waiting could deadlock.
    """
    import random
    import time

    deadline = time.monotonic() + seconds
    while True:
        try:
            return action()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(random.uniform(0.005, 0.05))


def _insert(table: str, columns: tuple[str, ...]) -> str:
    marks = ", ".join("?" for _ in columns)
    return f"INSERT OR REPLACE INTO {table} ({', '.join(columns)}) VALUES ({marks})"


def _run_row(run: Run) -> tuple[Any, ...]:
    return (
        run.id, run.pipeline, str(run.status), run.backend, run.store, _json(run.params),
        _json(run.graph), _json(encode_structure(run.result)), run.started, run.finished,
        run.git_commit, None if run.git_dirty is None else int(run.git_dirty),
        run.ductwork_version, run.python_version, _DRIVER,
    )


def _step_row(run_id: str, s: StepRun) -> tuple[Any, ...]:
    outputs = {name: ref_to_json(ref) for name, ref in s.output_refs.items()}
    return (
        run_id, s.id, s.step, str(s.status), int(s.cached), s.attempts, s.started, s.finished,
        s.map_index, s.key, _json(s.components), _json(outputs), s.error, s.logs,
        _json(s.metrics), s.note,
    )


# Which process drives a run: a run still "running" whose driver is gone has died.
_DRIVER = f"{socket.gethostname()}:{os.getpid()}"


def as_status(value: str) -> Status | str:
    """The ``Status`` a stored string names; an unknown one (a newer ductwork's) as it is."""
    try:
        return Status(value)
    except ValueError:
        return value


def _run_status(stored: str, driver: str | None) -> Status | str:
    status = as_status(stored)
    if status != Status.RUNNING or not driver:
        return status
    host, _, pid = driver.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return status  # another machine's run: it cannot be checked from here
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return Status.DIED
    except PermissionError:
        pass
    return status


def _run_from_row(row: tuple[Any, ...]) -> Run:
    data = dict(zip(_RUN_COLUMNS, row, strict=True))
    return Run(
        id=data["id"], pipeline=data["pipeline"], params=json.loads(data["params"] or "{}"),
        backend=data["backend"], status=_run_status(data["status"], data["driver"]),
        started=data["started"],
        finished=data["finished"], store=data["store"], git_commit=data["git_commit"],
        git_dirty=None if data["git_dirty"] is None else bool(data["git_dirty"]),
        ductwork_version=data["ductwork_version"], python_version=data["python_version"],
        graph=json.loads(data["graph"]) if data["graph"] else None,
        result=decode_structure(json.loads(data["result"])) if data["result"] else None,
    )


def _step_from_row(row: tuple[Any, ...]) -> StepRun:
    data = dict(zip(_STEP_COLUMNS, row, strict=True))
    return StepRun(
        id=data["id"], step=data["step"], status=as_status(data["status"]),
        cached=bool(data["cached"]), attempts=data["attempts"] or 0, started=data["started"],
        finished=data["finished"],
        output_refs={k: ref_from_json(v) for k, v in json.loads(data["outputs"] or "{}").items()},
        error=data["error"], logs=data["logs"] or "",
        metrics=json.loads(data["metrics"] or "{}"), map_index=data["map_index"],
        key=data["cache_key"],
        components=json.loads(data["components"]) if data["components"] else None,
        run_id=data["run_id"], note=data["note"],
    )


def forget_runstore(store: Any) -> None:
    """Close and drop this process's handle on a store's run history (frees ``memory://``)."""
    path = runstore_path(store)
    with _OPEN_LOCK:
        opened = _IN_MEMORY.pop(store.url, None) if path == ":memory:" else _OPEN.pop(path)
    if opened is not None:
        opened.close()
