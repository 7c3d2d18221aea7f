"""The SQLite run store across ductwork versions: a file an older version wrote still works."""

from __future__ import annotations

import sqlite3

import ductwork as dw
from ductwork import pipeline, step
from ductwork.runtime.records.runstore import SCHEMA, forget_runstore
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
