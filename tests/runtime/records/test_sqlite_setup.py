"""Opening a history file whose schema is current costs one query, not the schema's script."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from ductwork.runtime.records.runstore import SCHEMA, RunStore
from ductwork.runtime.records.sqlite import connect, schema_stamp


def indexes(path: Path) -> set[str]:
    db = sqlite3.connect(path)
    try:
        return {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='index'"
                                         " AND name NOT LIKE 'sqlite_%'")}
    finally:
        db.close()


def test_a_current_file_is_opened_without_running_the_schema_again(tmp_path: Path) -> None:
    path = tmp_path / "runs.sqlite"
    RunStore(path).close()
    assert "steps_by_id" in indexes(path)
    db = sqlite3.connect(path)
    db.execute("DROP INDEX steps_by_id")  # a marker: only the schema's script makes it again
    db.close()
    RunStore(path).close()
    assert "steps_by_id" not in indexes(path)


def test_a_file_stamped_by_another_schema_is_brought_up_to_this_one(tmp_path: Path) -> None:
    path = tmp_path / "runs.sqlite"
    old = SCHEMA.replace(",\n    driver TEXT\n", "\n")
    db = connect(path, old)
    assert db.execute("PRAGMA user_version").fetchone()[0] == schema_stamp(old)
    db.close()
    store = RunStore(path)
    columns = {r[1] for r in store._db.execute("PRAGMA table_info(runs)")}
    assert "driver" in columns
    assert store._db.execute("PRAGMA user_version").fetchone()[0] == schema_stamp(SCHEMA)
    store.close()


def test_stamps_differ_with_the_schema_and_fit_sqlites_user_version() -> None:
    assert schema_stamp(SCHEMA) == schema_stamp(SCHEMA)
    assert schema_stamp(SCHEMA) != schema_stamp(SCHEMA + "\n-- another column\n")
    assert 0 < schema_stamp(SCHEMA) < 2**31


def test_a_new_file_is_written_unsynced_only_until_its_schema_is_in(tmp_path: Path) -> None:
    """A new file's set-up skips fsyncs; every connection then writes rows as NORMAL."""
    path = tmp_path / "runs.sqlite"
    for _ in range(2):  # a new file, then the same file again
        db = connect(path, SCHEMA)
        assert db.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        db.close()
    assert "runs" in {r[0] for r in sqlite3.connect(path).execute(
        "SELECT name FROM sqlite_master WHERE type='table'")}
