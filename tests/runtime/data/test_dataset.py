"""Datasets as step inputs: content in the cache key, materialized where the step runs."""

from __future__ import annotations

import os
import pickle
import threading
import uuid
from pathlib import Path

import cloudpickle
import pandas as pd
import pytest

import ductwork as dw
from ductwork import pipeline, step
from ductwork.dsl.lazy import materialize
from ductwork.runtime.data.dataset import DatasetError
from ductwork.runtime.data.datastore import run_store
from ductwork.runtime.data.reading import MountedFile, materializing_for_key, reading_for_key
from ductwork.runtime.data.registry import versions
from ductwork.runtime.engine.job import Job, execute
from ductwork.runtime.keys.hashing import hash_value
from ductwork.runtime.store.artifacts import ArtifactStore

CALLS: list[str] = []


@step
def count_lines(files) -> int:
    CALLS.append("count_lines")
    return sum(len(Path(f).read_text().splitlines()) for f in files)


@step
def total(frame) -> int:
    CALLS.append("total")
    return int(frame["x"].sum())


@step
def constant() -> int:
    CALLS.append("constant")
    return 7


@step
def names(files) -> list[str]:
    return sorted(Path(f).name for f in files)


@pipeline
def reads():
    return {
        "lines": count_lines(dw.Dataset.files("logs/*.txt")),
        "total": total(dw.Dataset.tabular("tables/t.csv")),
        "constant": constant(),
    }


def _ran(run) -> set[str]:
    return {sid for sid, s in run.steps.items() if not s.cached}


@pytest.fixture
def lake(tmp_path) -> dw.Datastore:
    """The default datastore (the test's store) with two logs and a table."""
    src = tmp_path / "src"
    (src / "logs").mkdir(parents=True)
    (src / "tables").mkdir()
    (src / "logs" / "a.txt").write_text("1\n2\n")
    (src / "logs" / "b.txt").write_text("3\n")
    (src / "tables" / "t.csv").write_text("x,y\n1,2\n3,4\n")
    store = dw.datastore()
    store.upload_dir(src)
    return store


def _rewrite(store: dw.Datastore, rel: str, text: str, tmp_path: Path) -> None:
    local = tmp_path / "edit" / Path(rel).name
    local.parent.mkdir(exist_ok=True)
    local.write_text(text)
    store.upload_files([local], target_path=str(Path(rel).parent), overwrite=True)


def test_changing_a_file_reruns_exactly_the_step_that_reads_it(lake, tmp_path):
    first = reads.run()
    assert first.outputs == {"lines": 3, "total": 4, "constant": 7}
    assert _ran(first) == {"count_lines", "total", "constant"}
    assert _ran(reads.run()) == set()

    _rewrite(lake, "logs/b.txt", "3\n4\n", tmp_path)
    run = reads.run()
    assert _ran(run) == {"count_lines"} and run.outputs["lines"] == 4
    assert "input 'files' changed" in run.steps["count_lines"].why

    _rewrite(lake, "tables/t.csv", "x,y\n10,2\n", tmp_path)
    run = reads.run()
    assert _ran(run) == {"total"} and run.outputs["total"] == 10

    # Rewritten with the same bytes (a new mtime): the content hash is unchanged.
    _rewrite(lake, "logs/b.txt", "3\n4\n", tmp_path)
    os.utime(lake.full_path("logs/a.txt"), (1, 1))
    assert _ran(reads.run()) == set()

    lake.upload_files([tmp_path / "edit" / "b.txt"], target_path="logs/more")
    assert _ran(reads.run()) == set()  # not matched by logs/*.txt
    _rewrite(lake, "logs/c.txt", "5\n", tmp_path)
    assert reads.run().outputs["lines"] == 5  # a new file matched by the glob


def test_an_empty_glob_fails_the_step_naming_the_pattern(lake):
    @pipeline
    def p():
        return count_lines(dw.Dataset.files("logs/*.parquet"))

    with pytest.raises(dw.PipelineFailed, match=r"count_lines(.|\n)*logs/\*\.parquet"):
        p.run()
    with pytest.raises(DatasetError, match=r"the glob .*logs/\*\.parquet.* matches no file"):
        dw.Dataset.files("logs/*.parquet").fingerprint()
    with pytest.raises(DatasetError, match=r"the path .*nothing.csv.* matches no file"):
        dw.Dataset.tabular("nothing.csv").materialize()


def test_a_folder_a_full_url_and_nested_arguments(lake, tmp_path):
    @step
    def both(inputs: dict) -> list:
        return [sorted(Path(f).name for f in inputs["logs"]), len(inputs["tables"][0])]

    url = "file://" + lake.full_path("logs")

    @pipeline
    def p():
        return names(dw.Dataset.files(url)), both(
            {"logs": dw.Dataset.files("logs"), "tables": [dw.Dataset.tabular("tables/t.csv")]}
        ), names(dw.Dataset.files(Path(lake.full_path("logs"), "b.txt")))

    assert p.run().outputs == (["a.txt", "b.txt"], [["a.txt", "b.txt"], 2], ["b.txt"])


@pytest.fixture
def remote(tmp_path) -> dw.Datastore:
    """A datastore with no local paths (memory://): files must be downloaded or streamed."""
    store = dw.Datastore(f"memory://dw-ds-{uuid.uuid4().hex[:8]}")
    src = tmp_path / "remote"
    (src / "deep").mkdir(parents=True)
    (src / "one.csv").write_text("x\n1\n2\n")
    (src / "deep" / "two.csv").write_text("x\n5\n")
    store.upload_dir(src, "csv")
    return store


def test_download_mode_gives_local_paths_cached_by_content(remote):
    ds = dw.Dataset.files("csv", datastore=remote)
    paths = ds.materialize()
    assert all(isinstance(p, Path) and p.is_file() for p in paths)
    assert [p.read_text() for p in paths] == ["x\n5\n", "x\n1\n2\n"]
    home = Path(os.environ["DUCTWORK_HOME"])
    assert paths[0].is_relative_to(home / "cache" / "datasets")
    assert paths[0].relative_to(home).parts[-2:] == ("deep", "two.csv")
    inodes = [p.stat().st_ino for p in paths]
    again = ds.materialize()  # a second reader: no second download
    assert again == paths and [p.stat().st_ino for p in again] == inodes


def test_mount_mode_streams_and_fetches_one_file_on_fspath(remote):
    files = dw.Dataset.files("csv/**/*.csv", datastore=remote, mode="mount").materialize()
    assert [type(f) for f in files] == [MountedFile, MountedFile]
    assert [f.relative for f in files] == ["deep/two.csv", "one.csv"]
    with files[1].open("rt") as f:
        assert f.read() == "x\n1\n2\n"
    assert files[0].read_bytes() == b"x\n5\n" and files[0].suffix == ".csv"
    assert not files[1]._local  # streamed, not fetched
    assert pd.read_csv(files[1])["x"].tolist() == [1, 2]  # os.fspath(): fetched once
    local = Path(os.fspath(files[1]))
    assert local.is_file() and not Path(files[0]._cache, "deep", "two.csv").exists()
    with pytest.raises(DatasetError, match="read-only"):
        files[0].open("wb")


def test_local_files_are_passed_as_their_real_paths_in_both_modes(lake):
    for mode in ("download", "mount"):
        paths = dw.Dataset.files("logs/*.txt", mode=mode).materialize()
        assert paths == [Path(lake.full_path("logs/a.txt")), Path(lake.full_path("logs/b.txt"))]


def test_mode_is_not_part_of_the_key(lake):
    assert dw.Dataset.files("logs").fingerprint() == dw.Dataset.files(
        "logs", mode="mount").fingerprint()
    assert hash_value(dw.Dataset.files("logs")) == hash_value(dw.Dataset.files("logs").as_mount())
    assert hash_value(dw.Dataset.tabular("tables/t.csv")) != hash_value(
        dw.Dataset.tabular("tables/t.csv", usecols=["x"]))


@pytest.mark.parametrize("name, text, options, expected", [
    ("t.tsv", "x\ty\n1\t2\n", {}, [1]),
    ("t.json", '[{"x": 3}, {"x": 4}]', {}, [3, 4]),
    ("t.jsonl", '{"x": 5}\n{"x": 6}\n', {}, [5, 6]),
    ("t.data", "x;y\n7;8\n", {"format": "csv", "sep": ";"}, [7]),
    ("t.csv", "x,y\n9,1\n", {"usecols": ["x"]}, [9]),
])
def test_tabular_formats_and_read_options(remote, tmp_path, name, text, options, expected):
    (tmp_path / name).write_text(text)
    remote.upload_files([tmp_path / name], "tables", overwrite=True)
    frame = dw.Dataset.tabular(f"tables/{name}", datastore=remote, **options).materialize()
    assert frame["x"].tolist() == expected


def test_parquet_and_a_glob_of_tables_concatenated(remote, tmp_path):
    pd.DataFrame({"x": [1, 2]}).to_parquet(tmp_path / "p1.parquet")
    pd.DataFrame({"x": [3]}).to_parquet(tmp_path / "p2.parquet")
    remote.upload_files([tmp_path / "p1.parquet", tmp_path / "p2.parquet"], "pq")
    frame = dw.Dataset.tabular("pq/*.parquet", datastore=remote).materialize()
    assert frame["x"].tolist() == [1, 2, 3] and list(frame.index) == [0, 1, 2]


def test_unknown_extensions_and_unhashable_read_options_are_explained(remote, tmp_path):
    (tmp_path / "t.bin").write_text("x")
    remote.upload_files([tmp_path / "t.bin"])
    with pytest.raises(DatasetError, match=r"format of t.bin .*pass format= one of csv"):
        dw.Dataset.tabular("t.bin", datastore=remote).materialize()
    with pytest.raises(DatasetError, match="no stable hash"):
        dw.Dataset.tabular("t.csv", converters={"x": lambda v: v})
    with pytest.raises(DatasetError, match="mode must be 'download' or 'mount'"):
        dw.Dataset.files("x", mode="stream")


def test_register_and_get_versions(lake, tmp_path):
    ds = dw.Dataset.files("logs/*.txt")
    v1 = ds.register("logs", description="nightly logs")
    assert (v1.name, v1.version) == ("logs", 1)
    assert ds.register("logs").version == 1  # unchanged content: the same version
    record = Path(os.environ["DUCTWORK_STORE"], "datasets", "logs", "1.json")
    assert record.is_file() and "nightly logs" in record.read_text()

    _rewrite(lake, "logs/a.txt", "new\n", tmp_path)
    v2 = ds.register("logs")
    assert v2.version == 2 and v2.fingerprint() == ds.fingerprint()
    assert dw.Dataset.get("logs").version == 2
    assert repr(dw.Dataset.get("logs", version=1)) == "Dataset.get('logs', version=1)"
    assert [v["version"] for v in versions("logs")] == [1, 2]

    old = dw.Dataset.get("logs", version=1)
    with pytest.raises(DatasetError, match=r"pinned .*changed since: changed a.txt"):
        old.materialize()

    @pipeline
    def p(version: int):
        return count_lines(dw.Dataset.get("logs", version=version))

    assert p.run(version=2).outputs == 2
    with pytest.raises(dw.PipelineFailed, match=r"count_lines(.|\n)*version=1.*changed a.txt"):
        p.run(version=1)
    with pytest.raises(DatasetError, match=r"no version 9 .*versions: 1, 2"):
        dw.Dataset.get("logs", version=9)
    with pytest.raises(DatasetError, match="No dataset is registered as 'other'"):
        dw.Dataset.get("other")


def test_concurrent_registers_lose_no_version(lake, tmp_path):
    for i in range(6):
        _rewrite(lake, f"many/{i}.txt", str(i), tmp_path)
    got: list[int] = []
    barrier = threading.Barrier(6)

    def register(i: int) -> None:
        barrier.wait()
        got.append(dw.Dataset.files(f"many/{i}.txt").register("many").version)

    threads = [threading.Thread(target=register, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == [1, 2, 3, 4, 5, 6]


def test_registered_versions_on_a_remote_store(remote):
    store = f"memory://dw-reg-{uuid.uuid4().hex[:8]}"
    ds = dw.Dataset.files("csv/one.csv", datastore=remote)
    assert ds.register("one", store=store).version == 1
    got = dw.Dataset.get("one", store=store)
    assert [p.read_text() for p in got.materialize()] == ["x\n1\n2\n"]


def test_datasets_pickle_without_secrets(tmp_path):
    store = dw.Datastore(tmp_path / "ds", name="lake", account_key="hunter2")
    ds = dw.Dataset.tabular("t.csv", datastore=store, sep=";")
    for data in (pickle.dumps(ds), cloudpickle.dumps(ds)):
        assert b"hunter2" not in data
        assert pickle.loads(data) == ds
    assert "hunter2" not in repr(ds)
    assert repr(dw.Dataset.files("az://c/p?sig=hunter2")) == "Dataset.files('az://c/p')"


class Lazy:
    def __init__(self, value: int) -> None:
        self.value = value

    def __ductwork_materialize__(self, context):
        return self.value * 10


def test_the_materialize_hook_reaches_inside_containers():
    plain = [1, 2, "x"]

    def read(lazy):
        return lazy.__ductwork_materialize__(None)

    assert materialize(plain, read) is plain
    assert materialize({"a": [Lazy(1), (Lazy(2), 3)], "b": plain}, read) == {
        "a": [10, (20, 3)], "b": plain}


@pytest.mark.slow
def test_a_dataset_input_on_the_process_backend(lake, tmp_path):
    run = reads.run(backend="process")
    assert run.outputs == {"lines": 3, "total": 4, "constant": 7}
    assert _ran(run) == {"count_lines", "total", "constant"}
    assert _ran(reads.run(backend="process")) == set()
    _rewrite(lake, "logs/a.txt", "1\n", tmp_path)
    run = reads.run(backend="process")
    assert _ran(run) == {"count_lines"} and run.outputs["lines"] == 2


def test_default_datastore_follows_the_run_store(tmp_path):
    url = f"memory://dw-run-{uuid.uuid4().hex[:8]}"
    (tmp_path / "a.txt").write_text("1\n")
    with run_store(ArtifactStore(url)):
        dw.datastore().upload_files([tmp_path / "a.txt"], "logs")

    @pipeline
    def p():
        return count_lines(dw.Dataset.files("logs/*.txt"))

    assert p.run(store=url).outputs == 1


def test_a_step_called_as_a_plain_function_receives_what_a_run_gives_it(tmp_path):
    (tmp_path / "a.txt").write_text("1\n2\n")
    (tmp_path / "b.txt").write_text("3\n")
    files = dw.Dataset.files(str(tmp_path / "*.txt"))
    assert count_lines(files) == 3  # paths, as in a run: no pipeline needed in a unit test
    assert names(files=files) == ["a.txt", "b.txt"]


@step
def shapes(one, many: list, by_name: dict) -> list:
    """What the step received, with each local path shown by its file name."""
    def shape(value):
        if isinstance(value, list | tuple):
            return [shape(v) for v in value]
        if isinstance(value, dict):
            return {k: shape(v) for k, v in value.items()}
        return value.name if isinstance(value, Path) else type(value).__name__
    return [shape(one), shape(many), shape(by_name)]


def test_a_plain_call_reads_datasets_inside_containers_as_a_run_does(lake):
    ds = dw.Dataset.files("logs/b.txt")

    @pipeline
    def p():
        return shapes(ds, [ds, (ds, 1)], {"k": ds, "n": [ds]})

    expected = [["b.txt"], [["b.txt"], [["b.txt"], "int"]], {"k": ["b.txt"], "n": [["b.txt"]]}]
    assert p.run().outputs == expected
    assert shapes(ds, [ds, (ds, 1)], {"k": ds, "n": [ds]}) == expected
    assert shapes(one=1, many=[2], by_name={}) == ["int", ["int"], {}]
    assert names.map([ds, dw.Dataset.files("logs")]) == [["b.txt"], ["a.txt", "b.txt"]]


def test_a_lazy_value_without_materialize_is_explained_outside_a_run():
    with pytest.raises(dw.DuctworkError, match=r"Lazy has __ductwork_materialize__ but no "
                                                r"materialize\(\) method"):
        shapes(1, [Lazy(1)], {})


def test_registering_in_another_store_reads_that_stores_datastore(lake, tmp_path):
    other = str(tmp_path / "other-store")
    (tmp_path / "x.txt").write_text("7\n8\n9\n")
    with run_store(ArtifactStore(other)):
        dw.datastore().upload_files([tmp_path / "x.txt"], "logs")
    ds = dw.Dataset.files("logs/*.txt")  # the default store's datastore has a.txt, b.txt

    version = ds.register("logs", store=other)
    assert [p.name for p in version.materialize()] == ["x.txt"]
    assert [e[0] for e in versions("logs", store=other)[0]["files"]] == ["x.txt"]
    assert count_lines(dw.Dataset.get("logs", store=other)) == 3
    assert ds.register("logs", store=other).version == 1
    with pytest.raises(DatasetError, match="No dataset is registered"):
        dw.Dataset.get("logs")  # nothing went to the default store


def test_the_same_bytes_at_another_path_or_datastore_are_a_new_version(lake, tmp_path):
    v1 = dw.Dataset.files("logs/b.txt").register("b")
    assert dw.Dataset.get("b").register("b").version == 1  # read back: the same definition
    lake.upload_files([lake.full_path("logs/b.txt")], "copy")
    v2 = dw.Dataset.files("copy/b.txt").register("b")
    assert (v1.version, v2.version) == (1, 2) and v2.fingerprint() == v1.fingerprint()
    assert v2.materialize() == [Path(lake.full_path("copy/b.txt"))]

    elsewhere = dw.Datastore(tmp_path / "elsewhere")
    elsewhere.upload_files([lake.full_path("logs/b.txt")], "copy")
    v3 = dw.Dataset.files("copy/b.txt", datastore=elsewhere).register("b")
    assert v3.version == 3
    assert v3.materialize() == [Path(elsewhere.full_path("copy/b.txt"))]
    assert dw.Dataset.files("copy/b.txt", datastore=elsewhere).register("b").version == 3
    assert dw.Dataset.files("copy/b.txt").register("b").version == 4


def test_a_dataset_changed_after_its_key_is_not_read_under_that_key(tmp_path):
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "a.txt").write_text("1\n")
    ds = dw.Dataset.files(str(folder))
    hash_value(ds)  # the step's cache key is computed (by the scheduler, say)
    (folder / "a.txt").write_text("1\n2\n")  # ... and the file changes before the step reads it
    shipped = cloudpickle.loads(cloudpickle.dumps(ds))  # as sent to a worker process

    for dataset in (ds, shipped):
        result = execute(Job("count_lines", count_lines, (dataset,), {}, key="k"), None)
        assert result.values is None
        assert "changed while the run was starting" in result.error
        assert "Rerun" in result.error
    # No key (cache=False), or a plain call: nothing is stored under a key; read what is there.
    assert execute(Job("count_lines", count_lines, (ds,), {}), None).values == {"output": 2}
    assert count_lines(ds) == 2
    hash_value(shipped)  # the next run keys the new content
    assert execute(Job("count_lines", count_lines, (shipped,), {}, key="k2"), None).values == {
        "output": 2}


SHARED = dw.Dataset.files("shared/*.txt")


def _lines(path) -> list[str]:
    return Path(path).read_text().splitlines()


SOURCES = {"data": [SHARED], "parse": _lines}  # no hash as a whole: walked by element


@step
def count_shared() -> int:
    return sum(len(Path(f).read_text().splitlines()) for f in SHARED.materialize())


@step
def count_sources() -> int:
    return sum(len(SOURCES["parse"](f)) for f in SOURCES["data"][0].materialize())


def test_a_dataset_read_as_a_module_constant_is_keyed_by_its_content_now(tmp_path):
    store = dw.datastore()
    _rewrite(store, "shared/a.txt", "1\n", tmp_path)

    @pipeline
    def p():
        return count_shared(), count_sources()

    assert p.run().outputs == (1, 1)
    assert _ran(p.run()) == set()
    _rewrite(store, "shared/a.txt", "1\n2\n", tmp_path)
    run = p.run()
    assert run.outputs == (2, 2) and _ran(run) == {"count_shared", "count_sources"}
    assert "SHARED changed" in run.steps["count_shared"].why
    assert _ran(p.run()) == set()

    os.remove(store.full_path("shared/a.txt"))
    with pytest.raises(dw.PipelineFailed,
                       match=r"count_shared(.|\n)*reads .*SHARED(.|\n)*matches no file"):
        p.run()


def test_reading_for_a_key_refuses_content_other_than_the_keys(tmp_path):
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "a.txt").write_text("1\n")
    ds = dw.Dataset.files(str(folder))
    hash_value(ds)
    (folder / "a.txt").write_text("2\n")
    assert not materializing_for_key()
    with reading_for_key(True):
        assert materializing_for_key()
        with pytest.raises(DatasetError, match="changed while the run was starting"):
            ds.materialize()
        with reading_for_key(False):  # a job without a key reads what is there now
            assert ds.materialize() == [folder / "a.txt"]
        assert materializing_for_key()
    assert not materializing_for_key()
    assert ds.materialize() == [folder / "a.txt"]
