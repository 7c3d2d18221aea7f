"""One SQLite file shared by processes and threads: how ductwork opens it and writes to it.

WAL mode lets readers and one writer work at once across processes, and
``synchronous=NORMAL`` with WAL survives a killed process (only a power cut can
lose the last transactions). Every write is one ``BEGIN IMMEDIATE`` transaction:
it takes the write lock up front, so concurrent writers queue on the busy timeout
instead of failing halfway. The run history and the server's state both open
their files here.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any


def connect(path: str | Path, schema: str, *, foreign_keys: bool = False,
            upgrade: Callable[[sqlite3.Connection], Any] | None = None) -> sqlite3.Connection:
    """A connection to ``path`` (shared by this process's threads) with ``schema`` created
    and, when given, ``upgrade(db)`` run to bring an older file up to date."""
    db = sqlite3.connect(str(path), timeout=60, check_same_thread=False, isolation_level=None)
    try:
        db.execute("PRAGMA synchronous=NORMAL")
        if foreign_keys:
            db.execute("PRAGMA foreign_keys=ON")
        retry_locked(lambda: db.execute("PRAGMA journal_mode=WAL"))
        retry_locked(lambda: db.executescript(schema))
        if upgrade is not None:
            retry_locked(lambda: upgrade(db))
    except BaseException:
        db.close()
        raise
    return db


@contextlib.contextmanager
def write_transaction(db: sqlite3.Connection, lock: threading.Lock
                      ) -> Iterator[sqlite3.Connection]:
    """Hold the database's write lock (and this process's ``lock``): commit on success,
    roll back on an error."""
    with lock:
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")


def retry_locked(action: Callable[[], Any], seconds: float = 60.0) -> Any:
    """Run ``action``, retrying while another process holds the database lock.

    Switching a new file to WAL, or creating its tables, while another process
    does the same can fail at once with "database is locked": SQLite returns
    without waiting on the busy timeout when waiting could deadlock.
    """
    deadline = time.monotonic() + seconds
    while True:
        try:
            return action()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            import random  # here, not at the top: most processes never wait on a lock

            time.sleep(random.uniform(0.005, 0.05))
