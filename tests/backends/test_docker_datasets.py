"""Registered datasets on local folders, read by steps in containers (a real engine).

A container sees the host's files only where they are mounted: the docker backend mounts,
read-only, the local datastore folders (and the stores holding snapshot copies) that a job's
dataset arguments read, and hands the step the dataset at the mounted paths.
"""

from __future__ import annotations

import shutil

import pytest

import ductwork as dw
from ductwork import pipeline, step
from ductwork.backends.docker import DATA_MOUNT, container_config


@step
def read_all(files: list) -> dict:
    """Each file's name and text, and whether the step could write beside them."""
    import os

    texts = {os.path.basename(f): open(f).read() for f in files}
    try:
        with open(os.path.join(os.path.dirname(files[0]), "written-by-step"), "w") as f:
            f.write("x")
        writable = True
    except OSError:
        writable = False
    return {"texts": texts, "writable": writable, "where": str(files[0])}


def _lake(tmp_path, name: str = "lake") -> dw.Datastore:
    source = tmp_path / f"{name}-src"
    source.mkdir()
    (source / "a.txt").write_text("alpha")
    (source / "b.txt").write_text("beta")
    lake = dw.Datastore(tmp_path / name)
    lake.upload_dir(source, target_path="logs")
    return lake


def _run_docker(dataset: dw.Dataset, store: str):
    @pipeline
    def p():
        return read_all(dataset)

    return p.run(backend="docker", store=store)


@pytest.mark.docker
def test_a_registered_dataset_in_a_local_datastore_reads_in_a_container(docker_engine, tmp_path):
    store = str(tmp_path / "store")
    lake = _lake(tmp_path)
    dw.Dataset.files("logs", datastore=lake).register("logs", store=store)

    run = _run_docker(dw.Dataset.get("logs", store=store), store)
    assert run.outputs["texts"] == {"a.txt": "alpha", "b.txt": "beta"}
    assert run.outputs["where"].startswith(DATA_MOUNT)  # the mounted folder, not the host's
    assert not run.outputs["writable"]  # mounted read-only
    assert not (tmp_path / "lake" / "logs" / "written-by-step").exists()
    assert _run_docker(dw.Dataset.get("logs", store=store), store).steps["read_all"].cached


@pytest.mark.docker
def test_a_registered_dataset_in_the_run_stores_datastore(docker_engine, tmp_path):
    # examples/iris's way: upload to dw.datastore(), register, get() it in the pipeline.
    store = str(tmp_path / "store")
    source = tmp_path / "src"
    source.mkdir()
    (source / "a.txt").write_text("alpha")
    # The default store (the suite sets DUCTWORK_STORE to tmp_path / "store") is the run's.
    dw.datastore().upload_files([source / "a.txt"], target_path="tables")
    dw.Dataset.files("tables").register("tables")
    run = _run_docker(dw.Dataset.get("tables", store=store), store)
    assert run.outputs["texts"] == {"a.txt": "alpha"}


@pytest.mark.docker
def test_a_snapshot_version_reads_its_copy_in_a_container(docker_engine, tmp_path):
    store = str(tmp_path / "store")
    lake = _lake(tmp_path)
    dw.Dataset.files("logs", datastore=lake).register("logs", store=store, snapshot=True)
    shutil.rmtree(tmp_path / "lake")  # a snapshot never reads its original files

    run = _run_docker(dw.Dataset.get("logs", store=store), store)
    assert run.outputs["texts"] == {"a.txt": "alpha", "b.txt": "beta"}


@pytest.mark.docker
def test_a_snapshot_held_in_another_store_is_mounted_read_only(docker_engine, tmp_path):
    registry = str(tmp_path / "registry")
    lake = _lake(tmp_path)
    dw.Dataset.files("logs", datastore=lake).register("logs", store=registry, snapshot=True)

    run = _run_docker(dw.Dataset.get("logs", store=registry), str(tmp_path / "run-store"))
    assert run.outputs["texts"] == {"a.txt": "alpha", "b.txt": "beta"}


@pytest.mark.docker
def test_a_configured_local_datastore_reads_in_a_container(docker_engine, tmp_path,
                                                          monkeypatch):
    # The container has no ductwork.toml: the name is resolved here, the folder mounted.
    lake = _lake(tmp_path)
    (tmp_path / "ductwork.toml").write_text(f'[datastores.lake]\nurl = "{lake.root}"\n')
    monkeypatch.chdir(tmp_path)
    run = _run_docker(dw.Dataset.files("logs/a.txt", datastore="lake"), str(tmp_path / "store"))
    assert run.outputs["texts"] == {"a.txt": "alpha"}


@pytest.mark.docker
def test_a_dataset_at_an_absolute_local_path_reads_in_a_container(docker_engine, tmp_path):
    lake = _lake(tmp_path)
    run = _run_docker(dw.Dataset.files(lake.full_path("logs")), str(tmp_path / "store"))
    assert run.outputs["texts"] == {"a.txt": "alpha", "b.txt": "beta"}


@pytest.mark.docker
def test_a_missing_snapshot_store_fails_the_step_naming_the_argument(docker_engine, tmp_path):
    registry = tmp_path / "registry"
    lake = _lake(tmp_path)
    dw.Dataset.files("logs", datastore=lake).register("logs", store=str(registry), snapshot=True)
    version = dw.Dataset.get("logs", store=str(registry))
    shutil.rmtree(registry)  # moved or deleted after the version was read

    with pytest.raises(dw.PipelineFailed) as err:
        _run_docker(version, str(tmp_path / "store"))
    message = str(err.value)
    assert "Step 'read_all'" in message and "argument 'files'" in message
    assert str(registry) in message and "does not exist" in message
    assert not registry.exists()  # nothing was created in its place by the engine


def test_container_config_mounts_dataset_folders_read_only():
    config = container_config("img", "/tmp/job", "/src/ductwork", "/data/store", 1, 1,
                              data_mounts={"/data/lake": f"{DATA_MOUNT}/0"})
    [mount] = config["mounts"]
    assert (mount["Source"], mount["Target"]) == ("/data/lake", f"{DATA_MOUNT}/0")
    assert mount["Type"] == "bind" and mount["ReadOnly"]
    assert config["volumes"]["/data/store"] == {"bind": "/ductwork/store", "mode": "rw"}
    assert "mounts" not in container_config("img", "/tmp/job", "/src/ductwork", None, 1, 1)
