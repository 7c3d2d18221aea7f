"""The SQLite run store across ductwork versions: a file an older version wrote still works."""

from __future__ import annotations

import gc
import json
import sqlite3
import uuid
import weakref

import pytest

import ductwork as dw
from ductwork import pipeline, step
from ductwork.runtime.caches import clear_all
from ductwork.runtime.records.runstore import SCHEMA, forget_runstore, open_runstore
from ductwork.runtime.status import Status
from ductwork.runtime.store.artifacts import ArtifactStore

# The schema before runs recorded their driver (host:pid) and step runs their note.
OLD_SCHEMA = SCHEMA.replace(",\n    driver TEXT\n", "\n").replace("    note TEXT,\n", "")


@step
def one() -> int:
    return 1


@pipeline
def p():
    return one()


def test_a_run_store_written_by_an_older_version_is_upgraded_in_place(tmp_path):
    assert "driver" not in OLD_SCHEMA and "note TEXT" not in OLD_SCHEMA
    store = tmp_path / "s"
    store.mkdir()
    db = sqlite3.connect(store / "runs.sqlite")
    db.executescript(OLD_SCHEMA)
    db.execute("INSERT INTO runs (id, pipeline, status, started) VALUES ('old', 'p', "
               "'succeeded', 1.0)")
    db.commit()
    db.close()

    run = p.run(store=str(store))
    assert run.outputs == 1
    assert [r.id for r in dw.runs(store=str(store))] == [run.id, "old"]
    assert dw.get_run(run.id, store=str(store)).steps["one"].output == 1
    forget_runstore(ArtifactStore(str(store)))


def test_statuses_are_stored_as_plain_strings_and_read_back_as_status(tmp_path):
    store = tmp_path / "s"
    run = p.run(store=str(store))
    db = sqlite3.connect(store / "runs.sqlite")
    assert db.execute("SELECT status, typeof(status) FROM runs").fetchall() == [
        ("succeeded", "text")]
    assert db.execute("SELECT status FROM steps").fetchall() == [("succeeded",)]
    db.execute("INSERT INTO runs (id, pipeline, status, started) VALUES ('new', 'p', "
               "'paused', 0.5)")  # a status this version does not know
    db.commit()
    db.close()
    back = dw.get_run(run.id, store=str(store))
    assert back.status is Status.SUCCEEDED and back.steps["one"].status is Status.SUCCEEDED
    statuses = {r.id: r.status for r in dw.runs(store=str(store))}
    assert statuses["new"] == "paused"
    assert json.loads(json.dumps({"status": back.status})) == {"status": "succeeded"}
    forget_runstore(ArtifactStore(str(store)))


def test_a_run_store_dropped_from_the_cache_closes_only_when_unused(tmp_path):
    stores = [ArtifactStore(str(tmp_path / f"s{i}")) for i in range(3)]
    held = open_runstore(stores[0])
    assert open_runstore(stores[0]) is held
    clear_all()  # drops every cached run store, as an eviction drops one
    held.list_runs()  # still open for whoever holds it
    assert open_runstore(stores[0]) is not held  # the cache opens a new one
    dropped = weakref.ref(open_runstore(stores[1]))
    connection = dropped()._db
    clear_all()
    gc.collect()
    assert dropped() is None
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        connection.execute("SELECT 1")
    held.close()


def test_an_in_memory_history_outlives_cache_clears_until_forgotten():
    store = ArtifactStore(f"memory://runstore-{uuid.uuid4().hex}")
    run = p.run(store=store)
    clear_all()
    assert [r.id for r in dw.runs(store=store)] == [run.id]
    forget_runstore(store)
    assert dw.runs(store=store) == []
