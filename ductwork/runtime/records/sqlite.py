"""One SQLite file shared by processes and threads: how ductwork opens it and writes to it.

WAL mode lets readers and one writer work at once across processes, and
``synchronous=NORMAL`` with WAL survives a killed process (only a power cut can
lose the last transactions). Every write is one ``BEGIN IMMEDIATE`` transaction:
it takes the write lock up front, so concurrent writers queue on the busy timeout
instead of failing halfway. The run history and the server's state both open
their files here.

A file remembers which schema it was last brought up to: ``PRAGMA user_version``
holds a stamp (``schema_stamp``) of the schema's text and of SQLite's schema
cookie (``PRAGMA schema_version``, which every CREATE, ALTER or DROP moves on).
Opening a file whose stamp matches costs one query; any other file -- new, written
by another version or by one that did not stamp it, or changed by hand since --
gets the schema's script and the upgrade, then a new stamp. Two versions opening
one file take turns upgrading it, which is harmless: tables and columns only grow.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import blake3


def connect(path: str | os.PathLike[str], schema: str, *, foreign_keys: bool = False,
            upgrade: Callable[[sqlite3.Connection], Any] | None = None) -> sqlite3.Connection:
    """A connection to ``path`` (shared by this process's threads) with ``schema`` created
    and, when given, ``upgrade(db)`` run to bring an older file up to date -- both skipped
    for a file already stamped with this schema (see the module docstring)."""
    db = sqlite3.connect(os.fspath(path), timeout=60, check_same_thread=False, isolation_level=None)
    try:
        if foreign_keys:
            db.execute("PRAGMA foreign_keys=ON")
        cookie, current = db.execute(
            "SELECT * FROM pragma_schema_version, pragma_user_version").fetchone()
        # A new file's header and tables are written without syncing them (four fsyncs, a
        # few ms each): until its first row there is nothing a power cut could lose, and a
        # file left torn by one is set aside when next opened (``opening``).
        empty = current == 0 and db.execute("PRAGMA page_count").fetchone()[0] == 0
        db.execute(f"PRAGMA synchronous={'OFF' if empty else 'NORMAL'}")
        retry_locked(lambda: db.execute("PRAGMA journal_mode=WAL"))
        if current != schema_stamp(schema, cookie):
            retry_locked(lambda: db.executescript(schema))
            if upgrade is not None:
                retry_locked(lambda: upgrade(db))
            cookie = db.execute("PRAGMA schema_version").fetchone()[0]
            retry_locked(lambda: db.execute(f"PRAGMA user_version={schema_stamp(schema, cookie)}"))
        if empty:
            db.execute("PRAGMA synchronous=NORMAL")
    except BaseException:
        db.close()
        raise
    return db


def schema_stamp(schema: str, cookie: int) -> int:
    """The number a file brought up to ``schema``, whose schema cookie is then ``cookie``,
    keeps in ``PRAGMA user_version``."""
    # blake3, which a run loads anyway to hash values, rather than another module for crc32.
    digest = blake3.blake3(f"{cookie}\n{schema}".encode()).digest(length=4)
    return int.from_bytes(digest, "big") & 0x7FFFFFFF or 1  # 0: a file never stamped


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
