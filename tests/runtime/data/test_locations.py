"""Which local folders a dataset reads, and the dataset read through other paths (a copy of
the folder stands in for a container's mount: real files, no engine)."""

from __future__ import annotations

import shutil

import pytest

import ductwork as dw


class Places:
    """A ``place`` that copies each folder elsewhere, as a mount would show it, and records
    what it was asked."""

    def __init__(self, root) -> None:
        self.root, self.asked = root, []

    def __call__(self, folder: str, what: str) -> str:
        self.asked.append((folder, what))
        target = self.root / f"m{len(self.asked)}"
        shutil.copytree(folder, target)
        return str(target)


@pytest.fixture
def lake(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    (source / "a.txt").write_text("alpha")
    (source / "b.csv").write_text("x\n1\n")
    store = dw.Datastore(tmp_path / "lake")
    store.upload_dir(source, target_path="logs")
    return store


def test_a_local_datastore_is_read_where_it_is_placed(lake, tmp_path):
    data = dw.Dataset.files("logs/*.txt", datastore=lake)
    key = data.__ductwork_hash__()
    places = Places(tmp_path / "mounts")

    moved = data.relocated(places)
    assert places.asked == [(lake.root, f"the folder of {lake!r}")]
    assert moved.datastore.root == str(tmp_path / "mounts" / "m1")
    assert moved.materialize() == [tmp_path / "mounts" / "m1" / "logs" / "a.txt"]
    # The same content, so the same key, and the check against the key passes there.
    assert moved.__ductwork_hash__() == key and moved._keyed == data._keyed


def test_a_configured_local_datastore_is_resolved_here_and_placed(lake, tmp_path, monkeypatch):
    (tmp_path / "ductwork.toml").write_text(f'[datastores.lake]\nurl = "{lake.root}"\n')
    monkeypatch.chdir(tmp_path)
    moved = dw.Dataset.files("logs", datastore="lake").relocated(Places(tmp_path / "mounts"))
    assert moved.datastore.name == "lake"
    assert moved.datastore.root == str(tmp_path / "mounts" / "m1")
    assert [p.name for p in moved.materialize()] == ["a.txt", "b.csv"]


def test_absolute_paths_and_file_urls_place_their_folder(lake, tmp_path):
    folder = lake.full_path("logs")
    cases = {f"{folder}/*.txt": ["alpha"], f"{folder}/a.txt": ["alpha"],
             folder: ["alpha", "x\n1\n"], f"file://{folder}/a.txt": ["alpha"]}
    for n, (path, texts) in enumerate(cases.items()):
        places = Places(tmp_path / f"mounts{n}")
        moved = dw.Dataset.files(path).relocated(places)
        assert [f for f, _ in places.asked] == [folder]
        assert moved.path.startswith(str(places.root))
        assert [p.read_text() for p in moved.materialize()] == texts


def test_a_snapshot_places_its_store_not_its_original_files(lake, tmp_path):
    registry = tmp_path / "registry"
    dw.Dataset.files("logs", datastore=lake).register("logs", store=str(registry), snapshot=True)
    version = dw.Dataset.get("logs", store=str(registry))
    shutil.rmtree(lake.root)
    places = Places(tmp_path / "mounts")

    moved = version.relocated(places)
    assert [f for f, _ in places.asked] == [str(registry)]
    assert moved.snapshot[0] == str(tmp_path / "mounts" / "m1")
    assert [p.read_text() for p in moved.materialize()] == ["alpha", "x\n1\n"]


def test_remote_datastores_urls_and_the_run_stores_datastore_stay_as_they_are(tmp_path):
    def refuse(folder: str, what: str) -> str:
        raise AssertionError(f"placed {folder} ({what})")

    remote = dw.Datastore("az://raw/lake", account_name="devstoreaccount1")
    for data in (dw.Dataset.files("logs", datastore=remote),
                 dw.Dataset.tabular("memory://somewhere/t.csv"),
                 dw.Dataset.files("logs")):  # the run store's own datastore
        moved = data.relocated(refuse)
        assert moved == data and moved.datastore is data.datastore
