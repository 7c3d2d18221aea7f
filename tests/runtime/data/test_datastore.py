"""Datastores: upload, list, download on real filesystems; configured and default stores."""

from __future__ import annotations

import os
import pickle
import textwrap
import uuid

import cloudpickle
import pytest

import ductwork as dw
from ductwork import pipeline, step
from ductwork.runtime.config import ConfigError
from ductwork.runtime.data.datastore import DatastoreError, redact_url


@pytest.fixture(params=["local", "memory"])
def store(request, tmp_path) -> dw.Datastore:
    if request.param == "local":
        return dw.Datastore(tmp_path / "ds")
    return dw.Datastore(f"memory://dw-test-{uuid.uuid4().hex[:8]}")


@pytest.fixture
def data(tmp_path):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_text("alpha")
    (src / "b.txt").write_text("beta")
    (src / "sub" / "c.txt").write_text("gamma")
    return src


def test_upload_list_download_round_trip(store, data, tmp_path):
    assert store.list() == []
    assert store.upload_files([data / "a.txt", data / "b.txt"], target_path="one") == [
        "one/a.txt", "one/b.txt"]
    assert store.upload_dir(data, target_path="tree") == [
        "tree/a.txt", "tree/b.txt", "tree/sub/c.txt"]
    assert store.upload_files(data / "sub" / "c.txt", target_path="kept",
                              relative_root=data) == ["kept/sub/c.txt"]
    assert store.list() == ["kept/sub/c.txt", "one/a.txt", "one/b.txt", "tree/a.txt",
                            "tree/b.txt", "tree/sub/c.txt"]
    assert store.list("tree/sub") == ["tree/sub/c.txt"]
    assert store.list("*/a.txt") == ["one/a.txt", "tree/a.txt"]
    assert store.exists("tree/sub") and not store.exists("nope")

    got = store.download(tmp_path / "out", prefix="tree")
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in got) == [
        "tree/a.txt", "tree/b.txt", "tree/sub/c.txt"]
    assert (tmp_path / "out" / "tree" / "sub" / "c.txt").read_text() == "gamma"
    assert not [p for p in (tmp_path / "out").rglob("*") if ".dwtmp-" in p.name]


def test_overwrite_false_refuses_an_existing_target_and_writes_nothing(store, data, tmp_path):
    store.upload_files([data / "a.txt"], target_path="t")
    (data / "a.txt").write_text("changed")
    with pytest.raises(DatastoreError, match=r"already has 't/a.txt'.*overwrite=True"):
        store.upload_files([data / "b.txt", data / "a.txt"], target_path="t")
    assert store.list("t") == ["t/a.txt"]  # b.txt was not uploaded either
    store.upload_files([data / "a.txt"], target_path="t", overwrite=True)
    store.download(tmp_path / "out")
    assert (tmp_path / "out" / "t" / "a.txt").read_text() == "changed"

    with pytest.raises(DatastoreError, match=r"a.txt already exists; pass overwrite=True"):
        store.download(tmp_path / "out")
    store.download(tmp_path / "out", overwrite=True)


def test_bad_sources_and_paths_are_named(store, data):
    with pytest.raises(DatastoreError, match="missing.txt is not a file"):
        store.upload_files([data / "missing.txt"])
    with pytest.raises(DatastoreError, match="is not a folder"):
        store.upload_dir(data / "a.txt")
    with pytest.raises(DatastoreError, match="climbs out of the datastore"):
        store.upload_files([data / "a.txt"], target_path="../up")
    with pytest.raises(DatastoreError, match="no file at or below 'nothing'"):
        store.download("unused", prefix="nothing")


def test_named_datastore_from_ductwork_toml(tmp_path, monkeypatch, data):
    (tmp_path / "ductwork.toml").write_text(textwrap.dedent('''
        [datastores.raw]
        url = "lake/raw"

        [datastores.mem]
        url = "memory://dw-named-mem"
        secret_token = "${DW_TEST_TOKEN}"
    '''))
    sub = tmp_path / "project" / "src"
    sub.mkdir(parents=True)
    monkeypatch.chdir(sub)
    raw = dw.datastore("raw")
    assert raw.name == "raw" and raw.url == str(tmp_path / "lake" / "raw")  # beside the file
    raw.upload_dir(data)
    assert (tmp_path / "lake" / "raw" / "sub" / "c.txt").read_text() == "gamma"

    with pytest.raises(ConfigError, match=r"\$\{DW_TEST_TOKEN\}, which is not set"):
        dw.datastore("mem")
    monkeypatch.setenv("DW_TEST_TOKEN", "s3cr3t-value")
    assert dw.datastore("mem").list() == []
    with pytest.raises(ConfigError, match=r"Datastore 'nope' is not defined .*defined: mem, raw"):
        dw.datastore("nope")


def test_pyproject_table_and_missing_url(tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text(
        '[tool.ductwork.datastores.lake]\naccount_name = "x"\n')
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"Datastore 'lake' in .*needs url ="):
        dw.datastore("lake")


def test_default_datastore_is_the_stores_own_prefix(tmp_path, data):
    default = dw.datastore()
    assert default.url == os.path.join(os.environ["DUCTWORK_STORE"], "datastore")
    default.upload_files([data / "a.txt"])
    assert os.listdir(os.environ["DUCTWORK_STORE"]) == ["datastore"]


@step
def where() -> str:
    return dw.datastore().url


def test_inside_a_step_the_default_datastore_is_the_runs_store(tmp_path):
    @pipeline
    def p():
        return where()

    assert p.run(store=str(tmp_path / "other")).outputs == str(tmp_path / "other" / "datastore")
    assert p.run(store="memory://dw-run-store").outputs == "memory://dw-run-store/datastore"


def test_secrets_stay_out_of_repr_and_pickles(tmp_path):
    secret = "AccountKey=hunter2"
    store = dw.Datastore("memory://dw-secret", name="lake", connection_string=secret,
                         account_name="public")
    assert secret not in repr(store)
    assert store.public_options == {"account_name": "public"}
    for dumps in (pickle.dumps, cloudpickle.dumps):
        data = dumps(store)
        assert b"hunter2" not in data
        back = pickle.loads(data)
        assert back == store and back.public_options == {"account_name": "public"}
    assert redact_url("https://u:pw@host/c/p?sv=1&sig=abc") == "https://u:***@host/c/p"


def test_nested_secrets_stay_out_of_pickles_and_the_worker_keeps_the_rest():
    bearer = "Bearer nested-bearer-0123456789"
    store = dw.Datastore(
        "http://127.0.0.1:9/data", name=None,
        headers={"Authorization": bearer, "Accept": "text/csv"},
        client_kwargs={"credential": "nested-credential-0123", "trust_env": False,
                       "auth_header": {"x-api-key": "nested-api-key-0123"}},
    )
    public = {"headers": {"Accept": "text/csv"},
              "client_kwargs": {"trust_env": False, "auth_header": {}}}
    assert store.public_options == public
    for dumps in (pickle.dumps, cloudpickle.dumps):
        data = dumps(store)
        for secret in ("nested-bearer-0123456789", "nested-credential-0123",
                       "nested-api-key-0123"):
            assert secret.encode() not in data
        back = pickle.loads(data)
        assert back == store and back.public_options == public
