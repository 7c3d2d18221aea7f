"""Datastores and datasets on Azure Blob Storage (Azurite): real blobs, changed behind our back."""

from __future__ import annotations

import textwrap
import threading
from pathlib import Path

import cloudpickle
import pytest

import ductwork as dw
from ductwork import pipeline, step
from ductwork.runtime.data.dataset import DatasetError
from ductwork.runtime.data.datastore import DatastoreError, run_store
from ductwork.runtime.data.reading import MountedFile
from ductwork.runtime.engine.job import Job, execute
from ductwork.runtime.keys.hashing import hash_value
from ductwork.runtime.store.artifacts import open_store


@step
def count_lines(files) -> int:
    return sum(len(Path(f).read_text().splitlines()) for f in files)


@step
def total(frame) -> int:
    return int(frame["x"].sum())


@step
def constant() -> int:
    return 7


def _ran(run) -> set[str]:
    return {sid for sid, s in run.steps.items() if not s.cached}


@pytest.fixture
def lake(azurite, tmp_path) -> dw.Datastore:
    """A datastore in the test's container, holding two logs and a table."""
    src = tmp_path / "src"
    (src / "logs").mkdir(parents=True)
    (src / "logs" / "a.txt").write_text("1\n2\n")
    (src / "logs" / "b.txt").write_text("3\n")
    (src / "t.csv").write_text("x,y\n1,2\n3,4\n")
    store = dw.Datastore(f"{azurite.url}/lake")
    store.upload_dir(src)
    return store


def test_round_trip_and_overwrite_on_blob(lake, tmp_path):
    assert lake.list() == ["logs/a.txt", "logs/b.txt", "t.csv"]
    assert lake.list("logs") == ["logs/a.txt", "logs/b.txt"]
    with pytest.raises(DatastoreError, match=r"already has 't.csv'.*overwrite=True"):
        lake.upload_files([tmp_path / "src" / "t.csv"])
    (tmp_path / "t.csv").write_text("x,y\n5,6\n")
    lake.upload_files([tmp_path / "t.csv"], overwrite=True)
    got = lake.download(tmp_path / "out")
    assert sorted(p.name for p in got) == ["a.txt", "b.txt", "t.csv"]
    assert (tmp_path / "out" / "t.csv").read_text() == "x,y\n5,6\n"


def test_named_datastore_reads_its_secret_from_the_environment(azurite, tmp_path, monkeypatch):
    (tmp_path / "ductwork.toml").write_text(textwrap.dedent(f'''
        [datastores.blobs]
        url = "{azurite.url}/named"
        connection_string = "${{AZURE_STORAGE_CONNECTION_STRING}}"
    '''))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "f.txt").write_text("x")
    store = dw.datastore("blobs")
    assert store.upload_files([tmp_path / "f.txt"]) == ["f.txt"]
    assert azurite.account_key not in repr(store)
    names = [b.name for b in azurite.container_client().list_blobs()]
    assert names == ["named/f.txt"]


def test_a_changed_blob_reruns_exactly_the_step_that_reads_it(azurite, lake):
    @pipeline
    def p():
        return {"lines": count_lines(dw.Dataset.files("logs/*.txt", datastore=lake)),
                "total": total(dw.Dataset.tabular("t.csv", datastore=lake)),
                "constant": constant()}

    first = p.run()
    assert first.outputs == {"lines": 3, "total": 4, "constant": 7}
    assert _ran(first) == {"count_lines", "total", "constant"}
    assert _ran(p.run()) == set()

    # Changed by another client, as another machine would: the listing is read afresh.
    azurite.container_client().upload_blob("lake/logs/b.txt", b"3\n4\n5\n", overwrite=True)
    run = p.run()
    assert _ran(run) == {"count_lines"} and run.outputs["lines"] == 5
    azurite.container_client().upload_blob("lake/t.csv", b"x\n40\n", overwrite=True)
    run = p.run()
    assert _ran(run) == {"total"} and run.outputs["total"] == 40
    assert _ran(p.run()) == set()


def test_full_urls_download_and_mount(azurite, lake):
    url = f"{azurite.url}/lake/logs"
    paths = dw.Dataset.files(url).materialize()
    assert [p.read_text() for p in paths] == ["1\n2\n", "3\n"]
    again = dw.Dataset.files(url).materialize()
    assert [p.stat().st_ino for p in again] == [p.stat().st_ino for p in paths]

    mounted = dw.Dataset.files("logs/*.txt", datastore=lake, mode="mount").materialize()
    assert all(isinstance(m, MountedFile) for m in mounted)
    with mounted[0].open("rt") as f:
        assert f.read() == "1\n2\n"
    assert Path(mounted[1]).read_text() == "3\n"  # os.fspath fetches just that file


def test_register_get_and_a_pinned_version_in_a_blob_store(azurite, lake):
    registry = f"{azurite.url}/artifacts"
    ds = dw.Dataset.files("logs", datastore=lake)
    assert ds.register("logs", store=registry).version == 1
    assert ds.register("logs", store=registry).version == 1
    azurite.container_client().upload_blob("lake/logs/a.txt", b"9\n", overwrite=True)
    assert ds.register("logs", store=registry).version == 2
    assert count_lines(dw.Dataset.get("logs", store=registry).materialize()) == 2
    with pytest.raises(DatasetError, match=r"changed since: changed a.txt"):
        dw.Dataset.get("logs", version=1, store=registry).materialize()


def test_registering_into_a_blob_store_reads_that_stores_datastore(azurite, tmp_path):
    registry = f"{azurite.url}/artifacts"
    (tmp_path / "x.txt").write_text("7\n8\n9\n")
    with run_store(open_store(registry)):
        dw.datastore().upload_files([tmp_path / "x.txt"], "logs")
    # No datastore: the registry store's own, not the default (local, empty) store's.
    version = dw.Dataset.files("logs/*.txt").register("logs", store=registry)
    assert [e[0] for e in version.manifest()[1]] == ["x.txt"]
    assert count_lines(version) == 3
    assert count_lines(dw.Dataset.get("logs", store=registry)) == 3


def test_a_blob_changed_after_the_key_is_not_read_under_that_key(azurite, lake):
    ds = dw.Dataset.files("logs/*.txt", datastore=lake)
    hash_value(ds)  # the step's cache key is computed ...
    azurite.container_client().upload_blob("lake/logs/b.txt", b"3\n4\n", overwrite=True)
    shipped = cloudpickle.loads(cloudpickle.dumps(ds))  # ... and the job goes to a worker
    result = execute(Job("count_lines", count_lines, (shipped,), {}, key="k"), None)
    assert result.values is None and "changed while the run was starting" in result.error
    hash_value(shipped)  # a rerun keys the new content, and reads it
    assert execute(Job("count_lines", count_lines, (shipped,), {}, key="k2"), None).values == {
        "output": 4}


def test_concurrent_registers_on_blob_lose_no_version(azurite, lake, tmp_path):
    registry = f"{azurite.url}/artifacts"
    for i in range(4):
        (tmp_path / f"{i}.txt").write_text(str(i))
        lake.upload_files([tmp_path / f"{i}.txt"], "many")
    got: list[int] = []
    barrier = threading.Barrier(4)

    def register(i: int) -> None:
        barrier.wait()
        ds = dw.Dataset.files(f"many/{i}.txt", datastore=lake)
        got.append(ds.register("many", store=registry).version)

    threads = [threading.Thread(target=register, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == [1, 2, 3, 4]


@pytest.mark.slow
def test_a_blob_dataset_on_the_process_backend(azurite, lake):
    @pipeline
    def p():
        return count_lines(dw.Dataset.files("logs/*.txt", datastore=lake))

    run = p.run(backend="process")
    assert run.outputs == 3 and _ran(run) == {"count_lines"}
    azurite.container_client().upload_blob("lake/logs/a.txt", b"1\n", overwrite=True)
    run = p.run(backend="process")
    assert run.outputs == 2 and _ran(run) == {"count_lines"}
