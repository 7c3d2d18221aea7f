"""Registered dataset versions: snapshots that outlive their files, listings, and gc."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import cloudpickle
import pytest

import ductwork as dw
from ductwork import pipeline, step
from ductwork.runtime.data.dataset import DatasetError
from ductwork.runtime.keys.hashing import new_hasher
from ductwork.runtime.records.gc import collect
from ductwork.runtime.store.artifacts import open_store


@step
def count_lines(files) -> int:
    return sum(len(Path(f).read_text().splitlines()) for f in files)


@step
def total(frame) -> int:
    return int(frame["x"].sum())


@pytest.fixture
def lake(tmp_path) -> dw.Datastore:
    """The default datastore (the test's store) with two logs and a table."""
    src = tmp_path / "src"
    (src / "logs").mkdir(parents=True)
    (src / "logs" / "a.txt").write_text("1\n2\n")
    (src / "logs" / "b.txt").write_text("3\n")
    (src / "t.csv").write_text("x,y\n1,2\n3,4\n")
    store = dw.datastore()
    store.upload_dir(src)
    return store


def _rewrite(store: dw.Datastore, rel: str, text: str, tmp_path: Path) -> None:
    local = tmp_path / "edit" / Path(rel).name
    local.parent.mkdir(exist_ok=True)
    local.write_text(text)
    store.upload_files([local], target_path=str(Path(rel).parent), overwrite=True)


def _objects(store: str | None = None) -> set[str]:
    return set(open_store(store).iter_objects())


def _digest(text: str) -> str:
    return new_hasher(text.encode()).hexdigest()


def test_a_snapshot_version_reads_the_same_bytes_after_its_files_change_or_go(lake, tmp_path):
    v1 = dw.Dataset.files("logs/*.txt").register("logs", snapshot=True)
    table = dw.Dataset.tabular("t.csv").register("table", snapshot=True)
    assert (v1.version, table.version) == (1, 1)
    _rewrite(lake, "logs/a.txt", "overwritten\n", tmp_path)
    os.unlink(lake.full_path("logs/b.txt"))
    _rewrite(lake, "t.csv", "x\n100\n", tmp_path)

    old = dw.Dataset.get("logs", version=1)
    paths = old.materialize()
    assert [(p.name, p.read_text()) for p in paths] == [("a.txt", "1\n2\n"), ("b.txt", "3\n")]
    shipped = cloudpickle.loads(cloudpickle.dumps(old))  # as a worker gets it
    assert [p.read_text() for p in shipped.materialize()] == ["1\n2\n", "3\n"]
    mounted = old.as_mount().materialize()
    assert [m.read_text() for m in mounted] == ["1\n2\n", "3\n"]
    assert int(dw.Dataset.get("table").materialize()["x"].sum()) == 4

    @pipeline
    def p():
        return {"lines": count_lines(dw.Dataset.get("logs", version=1)),
                "total": total(dw.Dataset.get("table"))}

    assert p.run().outputs == {"lines": 3, "total": 4}
    # The snapshot is keyed by the content it holds: the files' state now does not matter.
    assert all(s.cached for s in p.run().steps.values())


def test_a_snapshot_copies_each_file_into_the_object_store_once(lake, tmp_path):
    before = _objects()
    dw.Dataset.files("logs/*.txt").register("logs", snapshot=True)
    added = _objects() - before
    assert added == {_digest("1\n2\n"), _digest("3\n")}
    stored = Path(open_store().object_path(_digest("3\n")))
    assert stored.read_text() == "3\n"  # the file's own bytes, named by their hash
    past = time.time() - 7200
    os.utime(stored, (past, past))

    # The same bytes elsewhere: a new version, but nothing copied again.
    _rewrite(lake, "copy/b.txt", "3\n", tmp_path)
    again = dw.Dataset.files("copy/b.txt").register("copy", snapshot=True)
    assert again.version == 1 and _objects() - before == added
    assert stored.stat().st_mtime == pytest.approx(past)


def test_a_snapshot_of_a_remote_datastore_in_a_remote_store(tmp_path):
    remote = dw.Datastore(f"memory://dw-snap-src-{uuid.uuid4().hex[:8]}")
    (tmp_path / "one.csv").write_text("x\n1\n2\n")
    remote.upload_files([tmp_path / "one.csv"], "csv")
    store = f"memory://dw-snap-reg-{uuid.uuid4().hex[:8]}"
    dw.Dataset.tabular("csv/one.csv", datastore=remote).register("one", store=store,
                                                                snapshot=True)
    remote.fs.rm(remote.full_path("csv/one.csv"))
    got = dw.Dataset.get("one", store=store)
    assert got.materialize()["x"].tolist() == [1, 2]
    assert _objects(store) == {_digest("x\n1\n2\n")}


def test_a_changed_file_of_a_plain_version_names_version_file_and_the_remedies(lake, tmp_path):
    dw.Dataset.files("logs/*.txt").register("logs")
    _rewrite(lake, "logs/a.txt", "overwritten\n", tmp_path)
    with pytest.raises(DatasetError) as caught:
        dw.Dataset.get("logs", version=1).materialize()
    message = str(caught.value)
    assert "Dataset 'logs' version 1" in message
    assert "changed a.txt" in message
    assert "register" in message and "snapshot=True" in message


def test_a_damaged_snapshot_object_is_an_error_never_other_bytes(lake, tmp_path):
    dw.Dataset.files("logs/a.txt").register("a", snapshot=True)
    stored = Path(open_store().object_path(_digest("1\n2\n")))
    stored.write_text("9\n9\n")
    with pytest.raises(DatasetError, match=r"Dataset 'a' version 1.*a\.txt.*corrupt"):
        dw.Dataset.get("a").materialize()
    stored.unlink()
    with pytest.raises(DatasetError, match=r"Dataset 'a' version 1.*a\.txt.*missing"):
        dw.Dataset.get("a").materialize()


def test_snapshot_and_plain_registrations_of_the_same_content(lake):
    ds = dw.Dataset.files("logs/*.txt")
    assert ds.register("logs").version == 1
    assert ds.register("logs", snapshot=True).version == 2  # now kept: a new version
    assert ds.register("logs", snapshot=True).version == 2
    assert ds.register("logs").version == 2  # a snapshot of this content serves


def test_list_datasets_and_their_versions_newest_first(lake, tmp_path):
    assert dw.Dataset.list() == []
    dw.Dataset.files("logs/*.txt").register("logs", description="nightly")
    _rewrite(lake, "logs/a.txt", "x\n", tmp_path)
    dw.Dataset.files("logs/*.txt").register("logs", snapshot=True)
    dw.Dataset.tabular("t.csv").register("table")

    listed = dw.Dataset.list()
    assert [d["name"] for d in listed] == ["logs", "table"]
    logs = listed[0]["versions"]
    assert [(v["version"], v["snapshot"]) for v in logs] == [(2, True), (1, False)]
    assert logs[1]["description"] == "nightly" and logs[1]["files"] == 2
    assert logs[0]["bytes"] == len("x\n3\n") and logs[0]["kind"] == "files"
    assert logs[0]["path"] == "logs/*.txt" and logs[0]["created"] >= logs[1]["created"]
    assert dw.Dataset.versions("logs") == logs
    with pytest.raises(DatasetError, match=r"No dataset is registered as 'nope'.*logs, table"):
        dw.Dataset.versions("nope")


def test_gc_keeps_what_a_snapshot_version_holds(lake, tmp_path):
    @pipeline
    def p():
        return count_lines(dw.Dataset.files("logs/*.txt"))

    p.run()
    dw.Dataset.files("logs/*.txt").register("logs", snapshot=True)
    store = open_store()
    snapshot = {_digest("1\n2\n"), _digest("3\n")}
    past = time.time() - 7200
    for digest in store.iter_objects():
        os.utime(store.object_path(digest), (past, past))
    report = collect(keep_last=0, grace=0)
    assert report.keys_removed > 0  # the run's outputs went (inlined in its entries) ...
    assert _objects() == snapshot  # ... what the version holds stayed
    os.unlink(lake.full_path("logs/a.txt"))
    assert count_lines(dw.Dataset.get("logs")) == 3
