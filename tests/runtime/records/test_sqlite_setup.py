"""Opening a history file whose schema is current costs one query, not the schema's script."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from ductwork.runtime.records.runstore import SCHEMA, RunStore
from ductwork.runtime.records.sqlite import connect, schema_stamp
from tests.calls import calls_made


def indexes(path: Path) -> set[str]:
    db = sqlite3.connect(path)
    try:
        return {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='index'"
                                         " AND name NOT LIKE 'sqlite_%'")}
    finally:
        db.close()


def test_a_current_file_is_opened_without_running_the_schema_again(tmp_path: Path) -> None:
    path = tmp_path / "runs.sqlite"
    made = set(calls_made(lambda: RunStore(path).close(), c_calls=True))
    assert {"executescript", "add_missing_columns"} <= made  # a new file is set up
    again = set(calls_made(lambda: RunStore(path).close(), c_calls=True))
    assert not {"executescript", "add_missing_columns"} & again


def test_a_file_whose_schema_was_changed_since_is_set_up_again(tmp_path: Path) -> None:
    path = tmp_path / "runs.sqlite"
    RunStore(path).close()
    db = sqlite3.connect(path)
    db.execute("DROP INDEX steps_by_id")  # by hand, or by a version that knows better
    db.execute("ALTER TABLE runs DROP COLUMN driver")
    db.close()
    store = RunStore(path)
    assert "driver" in {r[1] for r in store._db.execute("PRAGMA table_info(runs)")}
    store.close()
    assert "steps_by_id" in indexes(path)


def test_a_file_stamped_by_another_schema_is_brought_up_to_this_one(tmp_path: Path) -> None:
    path = tmp_path / "runs.sqlite"
    old = SCHEMA.replace(",\n    driver TEXT\n", "\n")
    connect(path, old).close()
    store = RunStore(path)
    columns = {r[1] for r in store._db.execute("PRAGMA table_info(runs)")}
    assert "driver" in columns
    cookie, stamp = store._db.execute(
        "SELECT * FROM pragma_schema_version, pragma_user_version").fetchone()
    assert stamp == schema_stamp(SCHEMA, cookie) != schema_stamp(old, cookie)
    store.close()


def test_stamps_differ_with_the_schema_and_its_cookie_and_fit_user_version() -> None:
    assert schema_stamp(SCHEMA, 5) == schema_stamp(SCHEMA, 5)
    assert schema_stamp(SCHEMA, 5) != schema_stamp(SCHEMA, 6)
    assert schema_stamp(SCHEMA, 5) != schema_stamp(SCHEMA + "\n-- another column\n", 5)
    assert 0 < schema_stamp(SCHEMA, 5) < 2**31


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


def test_a_new_file_gets_its_schema_in_one_transaction_outside_the_wal(tmp_path: Path) -> None:
    """A new history's tables go straight into the file, in one transaction, before it turns
    to WAL: a statement per transaction wrote each table's pages to the WAL again and again,
    and the close of a first run then copied them all to the file and synced it. Only the
    stamp (page 1) is in the WAL: one frame."""
    import os

    path = tmp_path / "runs.sqlite"
    db = connect(path, SCHEMA)
    try:
        page = db.execute("PRAGMA page_size").fetchone()[0]
        assert os.path.getsize(f"{path}-wal") <= 32 + (24 + page)  # WAL header + one frame
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        cookie, stamp = db.execute(
            "SELECT * FROM pragma_schema_version, pragma_user_version").fetchone()
        assert stamp == schema_stamp(SCHEMA, cookie)
    finally:
        db.close()
    made = calls_made(lambda: connect(path, SCHEMA).close(), c_calls=True)
    assert "executescript" not in made
