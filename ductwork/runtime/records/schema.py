"""The run history's SQLite schema, and bringing an older file up to it.

Columns only grow: a file written by an older ductwork gets the new columns
(nullable, so older rows simply lack the value) when it is opened, and several
processes opening one file at once may race to add them, which is fine. Indexes
this version no longer wants (``leases.DROPPED_INDEXES``) are dropped; an older
version reading the file needs none of them, and makes them again as it opens it.
"""

from __future__ import annotations

import _sqlite3 as sqlite3  # not the sqlite3 package: its dbapi2 imports datetime (~6M)

from ductwork.runtime.records.leases import DROPPED_INDEXES, LEASE_SCHEMA

__all__ = ["SCHEMA", "add_missing_columns", "schema_columns"]

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
    module TEXT,
    source_file TEXT,
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
    cached_from TEXT,
    PRIMARY KEY (run_id, id)
);
CREATE INDEX IF NOT EXISTS steps_by_id ON steps (id, started);
CREATE INDEX IF NOT EXISTS steps_made_by_key ON steps (cache_key) WHERE cached = 0;
""" + LEASE_SCHEMA


def schema_columns() -> dict[str, list[tuple[str, str]]]:
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


def add_missing_columns(db: sqlite3.Connection) -> None:
    """Bring a file written by an older ductwork up to ``SCHEMA`` (columns only grow; an
    index an older version wrote and this one does not is dropped)."""
    for index in DROPPED_INDEXES:
        # An older ductwork opening the file again makes it again (its own stamp differs
        # from this one's), which costs the two versions a set-up each, never a row.
        db.execute(f"DROP INDEX IF EXISTS {index}")
    for table, columns in schema_columns().items():
        have = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
        for name, kind in columns:
            if name not in have:
                # Added columns are nullable: rows of older runs simply lack the value.
                try:
                    db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")
                except sqlite3.OperationalError as exc:
                    if "duplicate column" not in str(exc):
                        raise  # another process opening the file added it first: fine
