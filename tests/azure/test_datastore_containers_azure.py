"""An ``az://`` datastore on Azurite: a missing container, and errors that say which datastore."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

import ductwork as dw
from ductwork.runtime.data.dataset import DatasetError
from ductwork.runtime.data.errors import DatastoreAccessError, DatastoreError

# The emulator's account with a wrong key (base64 of the alphabet): every request is refused.
WRONG_KEY = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0NTY3ODk="


@pytest.fixture
def new_container(azurite):
    """A container name no one has made yet; deleted after the test if it was."""
    name = f"dw-new-{uuid.uuid4().hex[:16]}"
    yield name
    service = azurite.service_client()
    try:
        service.delete_container(name)
    except Exception:  # never made: nothing to clean
        pass
    service.close()


def _exists(azurite, container: str) -> bool:
    service = azurite.service_client()
    try:
        return service.get_container_client(container).exists()
    finally:
        service.close()


def test_the_first_upload_creates_the_container(azurite, new_container, tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.txt").write_text("1\n2\n")
    lake = dw.Datastore(f"az://{new_container}/lake", name="lake")
    assert lake.upload_files([tmp_path / "src" / "a.txt"], "logs") == ["logs/a.txt"]
    assert _exists(azurite, new_container)
    assert lake.list() == ["logs/a.txt"]
    # Another datastore object in the same, now existing, container: no error either.
    assert dw.Datastore(f"az://{new_container}/other").upload_dir(tmp_path / "src") == ["a.txt"]
    paths = dw.Dataset.files("logs", datastore=lake).materialize()
    assert [Path(p).read_text() for p in paths] == ["1\n2\n"]


def test_reading_a_missing_container_names_the_datastore(azurite, new_container, tmp_path):
    lake = dw.Datastore(f"az://{new_container}/lake", name="lake")
    url = f"az://{new_container}/lake"
    for read in (lake.list, lambda: lake.download(tmp_path / "out", "logs")):
        with pytest.raises(DatastoreError) as caught:
            read()
        message = str(caught.value)
        assert "'lake'" in message and url in message
        assert f"container {new_container!r} does not exist" in message
    assert lake.exists("logs") is False  # a question, not a read: nothing is there
    with pytest.raises(DatasetError, match=f"container {new_container!r} does not exist"):
        dw.Dataset.files("logs", datastore=lake).materialize()
    assert not _exists(azurite, new_container)  # reading never creates it


def test_azure_errors_name_the_datastore_url_and_path(azurite, tmp_path):
    connection = azurite.connection_string.replace(azurite.account_key, WRONG_KEY)
    url = f"{azurite.url}/lake"
    lake = dw.Datastore(url, name="lake", connection_string=connection)
    (tmp_path / "a.txt").write_text("x")
    operations = {
        "list": lambda: lake.list("logs"),
        "exists": lambda: lake.exists("logs/a.txt"),
        "upload": lambda: lake.upload_files([tmp_path / "a.txt"], "logs"),
        "download": lambda: lake.download(tmp_path / "out", "logs"),
    }
    for name, operation in operations.items():
        with pytest.raises(DatastoreAccessError) as caught:
            operation()
        message = str(caught.value)
        assert "'lake'" in message and url in message, name
        assert "logs" in message and "AuthorizationFailure" in message, name
        assert caught.value.__cause__ is not None, name  # the original, for debugging
        assert WRONG_KEY not in message and "AccountKey" not in message, name


def test_a_snapshot_version_in_a_blob_store_outlives_its_blob(azurite, tmp_path):
    (tmp_path / "t.csv").write_text("x\n1\n2\n")
    lake = dw.Datastore(f"{azurite.url}/lake", name="lake")
    lake.upload_files([tmp_path / "t.csv"])
    registry = f"{azurite.url}/artifacts"
    dw.Dataset.tabular("t.csv", datastore=lake).register("t", store=registry, snapshot=True)
    azurite.container_client().upload_blob("lake/t.csv", b"x\n40\n", overwrite=True)
    assert dw.Dataset.get("t", store=registry).materialize()["x"].tolist() == [1, 2]
    azurite.container_client().delete_blob("lake/t.csv")
    again = dw.Dataset.get("t", store=registry)
    assert again.materialize()["x"].tolist() == [1, 2]
    blobs = [b.name for b in azurite.container_client().list_blobs("artifacts/objects/")]
    assert len(blobs) == 1  # the file's bytes, once
