"""The server's own state: one SQLite file of tokens and queued runs, beside the run history.

For a local store the file is ``<store>/server.sqlite``, next to ``runs.sqlite``;
for a remote store it lives under ``DUCTWORK_HOME`` (as the run history does),
named by a hash of the store's URL so two stores served from one machine never
share tokens or queues. An in-memory store has no state another process could
share (the runs execute in child processes), so it cannot be served.

WAL mode lets the server, its children and ``ductwork token`` use the file at
once; every write is one ``BEGIN IMMEDIATE`` transaction, so concurrent writers
queue on the busy timeout instead of failing halfway.
"""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3
import threading
from pathlib import Path
from typing import Any

from ductwork.dsl.core import DuctworkError
from ductwork.runtime.config import ductwork_home
from ductwork.runtime.records.sqlite import connect, write_transaction

__all__ = ["ServerState", "open_state", "state_path"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS tokens (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    hash TEXT,
    created REAL NOT NULL,
    revoked REAL
);
CREATE TABLE IF NOT EXISTS queue (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL UNIQUE,
    pipeline TEXT NOT NULL,
    version INTEGER NOT NULL,
    parameters TEXT NOT NULL,
    token TEXT NOT NULL,
    state TEXT NOT NULL,
    submitted REAL NOT NULL,
    started REAL,
    finished REAL,
    pid INTEGER,
    pid_start TEXT,
    claim TEXT,
    error TEXT,
    schedule TEXT
);
CREATE INDEX IF NOT EXISTS queue_by_state ON queue (state, seq);
CREATE INDEX IF NOT EXISTS queue_by_pipeline ON queue (pipeline, seq);
"""


class ServerError(DuctworkError):
    """The server cannot start or use its state as asked; the message says how to fix it."""


def state_path(store: Any) -> Path:
    """The server's SQLite file for an opened artifact store."""
    if store.in_memory:
        raise ServerError(
            f"The store {store.url} lives in one process's memory; runs triggered over HTTP "
            "execute in child processes, which cannot see it. Serve a directory or a remote "
            "store: `ductwork serve --store ./.ductwork`."
        )
    if store.is_local:
        return Path(store.root) / "server.sqlite"
    digest = hashlib.sha256(store.url.encode()).hexdigest()[:24]
    return ductwork_home() / "server" / f"{digest}.sqlite"


def _upgrade(db: sqlite3.Connection) -> None:
    """Add the columns a file written by an older server lacks."""
    have = {row[1] for row in db.execute("PRAGMA table_info(queue)")}
    for column in ("pid_start", "claim", "schedule"):
        if column not in have:
            try:
                db.execute(f"ALTER TABLE queue ADD COLUMN {column} TEXT")
            except sqlite3.OperationalError as exc:
                if "duplicate column" not in str(exc):  # another process added it first
                    raise


class ServerState:
    """One connection to the server's SQLite file, shared by this process's threads."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = connect(self.path, SCHEMA, upgrade=_upgrade)

    def transaction(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        """Hold the write lock: commit on success, roll back on an error."""
        return write_transaction(self._db, self._lock)

    def read(self, sql: str, args: tuple[Any, ...] | list[Any] = ()) -> list[sqlite3.Row]:
        """Rows of one query, as ``sqlite3.Row`` (by column name)."""
        with self._lock:
            cursor = self._db.execute(sql, args)
            cursor.row_factory = sqlite3.Row
            return cursor.fetchall()

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._db.close()


def open_state(store: Any = None) -> ServerState:
    """Open (creating if needed) the server's state for a store URL, path or open store."""
    from ductwork.runtime.store.artifacts import open_store

    return ServerState(state_path(open_store(store)))
