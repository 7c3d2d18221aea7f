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
gets the schema's script, the upgrade and a new stamp, in one write transaction.
Two versions opening one file take turns upgrading it, which is harmless: tables
and columns only grow. A new file gets its tables before it turns to WAL, so they
are written once, into the file itself.
"""

from __future__ import annotations

import _sqlite3 as sqlite3  # not the sqlite3 package: its dbapi2 imports datetime (~6M)
import _thread  # threading's locks, without threading (~2.6M instructions and an exit hook)
import contextlib
import os
import time
from collections.abc import Callable, Iterator

import blake3

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


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
        if current == 0 and db.execute("PRAGMA page_count").fetchone()[0] == 0:
            # A new file: its tables go straight into it, in one transaction and unsynced
            # (four fsyncs, a few ms each, saved: until its first row there is nothing a
            # power cut could lose, and a file left torn by one is set aside when next
            # opened, ``opening``), and only then does it turn to WAL. In WAL first, every
            # table's pages went to the WAL, for the first run's close to copy and sync.
            # The stamp is written after the switch, still unsynced: a WAL's first frame
            # written under NORMAL costs two more syncs (the WAL's header, its folder).
            db.execute("PRAGMA synchronous=OFF")
            retry_locked(lambda: _set_up(db, schema, upgrade, stamp=False))
            retry_locked(lambda: db.execute("PRAGMA journal_mode=WAL"))
            cookie = db.execute("PRAGMA schema_version").fetchone()[0]
            retry_locked(lambda: db.execute(f"PRAGMA user_version={schema_stamp(schema, cookie)}"))
            db.execute("PRAGMA synchronous=NORMAL")
            return db
        db.execute("PRAGMA synchronous=NORMAL")
        retry_locked(lambda: db.execute("PRAGMA journal_mode=WAL"))
        if current != schema_stamp(schema, cookie):
            retry_locked(lambda: _set_up(db, schema, upgrade))
    except BaseException:
        db.close()
        raise
    return db


def _set_up(db: sqlite3.Connection, schema: str,
            upgrade: Callable[[sqlite3.Connection], Any] | None, stamp: bool = True) -> None:
    """Create ``schema``, run ``upgrade`` and (``stamp``) stamp the file, in one write
    transaction: two processes setting up one file take turns, and a killed one leaves
    no half of it."""
    try:
        db.executescript("BEGIN IMMEDIATE;\n" + schema)  # leaves the transaction open
        if upgrade is not None:
            upgrade(db)
        if stamp:
            cookie = db.execute("PRAGMA schema_version").fetchone()[0]
            db.execute(f"PRAGMA user_version={schema_stamp(schema, cookie)}")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def schema_stamp(schema: str, cookie: int) -> int:
    """The number a file brought up to ``schema``, whose schema cookie is then ``cookie``,
    keeps in ``PRAGMA user_version``."""
    # blake3, which a run loads anyway to hash values, rather than another module for crc32.
    digest = blake3.blake3(f"{cookie}\n{schema}".encode()).digest(length=4)
    return int.from_bytes(digest, "big") & 0x7FFFFFFF or 1  # 0: a file never stamped


@contextlib.contextmanager
def write_transaction(db: sqlite3.Connection, lock: _thread.LockType
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
