"""A SAS token in a store's URL is used and never shown; a pickled datastore carries no
secret at any depth. Against Azurite, with the SDK's and its transport's DEBUG logs on."""

from __future__ import annotations

import datetime
import logging
import pickle
import subprocess
import sys
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import cloudpickle
import pytest

import ductwork as dw
from ductwork import pipeline, step
from ductwork.dsl.core import DuctworkError
from ductwork.runtime.engine.driver import store_config
from ductwork.runtime.store.artifacts import ArtifactStore
from ductwork.runtime.store.azure import AzureStoreError


@step
def numbers(n: int) -> list[int]:
    return list(range(n))


@step
def total(xs: list[int]) -> int:
    return sum(xs)


@pipeline
def sums(n: int = 5):
    return total(numbers(n))


def _sas(azurite, **permissions: bool) -> str:
    from azure.storage.blob import ContainerSasPermissions, generate_container_sas

    allowed = dict(read=True, add=True, create=True, write=True, delete=True, list=True)
    allowed.update(permissions)
    return generate_container_sas(
        azurite.account_name, azurite.container, account_key=azurite.account_key,
        permission=ContainerSasPermissions(**allowed),
        expiry=datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=1),
    )


def _signature(sas: str) -> tuple[str, str]:
    """The SAS's ``sig`` value as it travels (URL-encoded) and decoded."""
    sent = next(p.partition("=")[2] for p in sas.split("&") if p.startswith("sig="))
    return sent, urllib.parse.unquote(sent)


@pytest.fixture
def sas_only(azurite, monkeypatch):
    """Only the account's name and endpoint in the environment: no key, no connection
    string, so the store can authenticate only with a SAS it is given."""
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING")
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT_NAME", azurite.account_name)
    monkeypatch.setenv("DUCTWORK_AZURE_ACCOUNT_URL", azurite.blob_endpoint)
    return azurite


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    @property
    def text(self) -> str:
        fmt = logging.Formatter("%(name)s %(levelname)s %(message)s")
        return "\n".join(fmt.format(r) for r in self.records)


@pytest.fixture
def debug_logs() -> Iterator[_Capture]:
    """Every record of the Azure SDK and of urllib3 (its HTTP transport), at DEBUG."""
    handler = _Capture()
    loggers = [logging.getLogger(n) for n in ("azure", "urllib3", "adlfs")]
    old = [log.level for log in loggers]
    for log in loggers:
        log.setLevel(logging.DEBUG)
        log.addHandler(handler)
    try:
        yield handler
    finally:
        for log, level in zip(loggers, old, strict=True):
            log.removeHandler(handler)
            log.setLevel(level)


def _assert_nowhere(secrets: tuple[str, ...], texts: list[str], folders: list[Path]) -> None:
    for secret in secrets:
        for text in texts:
            assert secret not in text, text[:2000]
        for folder in folders:
            for path in folder.rglob("*"):
                if path.is_file():
                    assert secret.encode() not in path.read_bytes(), path


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["inline", "process"])
def test_a_sas_in_the_store_url_is_used_and_shown_nowhere(sas_only, backend, debug_logs,
                                                          capfd, tmp_path):
    azurite = sas_only
    sas = _sas(azurite)
    plain = f"{azurite.url}/runs"
    url = f"{plain}?{sas}"

    store = ArtifactStore(url)
    assert store._azure.auth.method == "SAS token"
    assert store.url == plain
    config = store_config(store)
    run = sums.run(n=5, store=url, backend=backend)
    assert run.status == "succeeded" and run.outputs == 10
    again = sums.run(n=5, store=url, backend=backend)
    assert all(s.cached for s in again.steps.values())

    assert run.store == plain
    assert [r.id for r in dw.runs(store=url)][:2] == [again.id, run.id]
    assert dw.get_run(run.id, store=url).store == plain
    assert debug_logs.records, "the SDK logged nothing at DEBUG: the test would prove nothing"
    # What the container holds: every blob's name and bytes.
    container = azurite.container_client()
    blobs = [f"{b.name}\n{container.download_blob(b.name).readall()!r}"
             for b in container.list_blobs()]
    # Written through the SAS: the cache entries (these small values live inside them).
    assert any(b.startswith("runs/keys/") for b in blobs), blobs
    out, err = capfd.readouterr()
    texts = [repr(store), store.url, repr(config), repr(run.store), debug_logs.text, out, err,
             *blobs, *(s.logs or "" for s in run.steps.values())]
    _assert_nowhere(_signature(sas), texts, [tmp_path / "home"])


@pytest.mark.slow
def test_a_wrong_sas_in_the_url_is_a_clear_error_without_it(sas_only, debug_logs, capfd,
                                                           tmp_path):
    azurite = sas_only
    good = _sas(azurite)
    wrong = good.replace(_signature(good)[0], "A" * 43 + "%3D")
    assert wrong != good
    url = f"{azurite.url}/p?{wrong}"

    store = ArtifactStore(url)
    with pytest.raises(AzureStoreError) as info:
        store.check()  # Azurite answers a HEAD of a missing blob 404 even with a bad SAS,
        store.put([1, 2])  # so the first write is where it refuses
    message = str(info.value)
    assert "SAS token from the store URL" in message and azurite.container in message
    with pytest.raises(DuctworkError) as run_info:
        sums.run(n=3, store=url, backend="process")
    out, err = capfd.readouterr()
    texts = [message, repr(info.value), str(run_info.value), repr(run_info.value),
             debug_logs.text, out, err]
    _assert_nowhere(("A" * 43, *_signature(good)), texts, [tmp_path / "home"])


def test_a_sas_on_the_account_url_is_used_and_shown_nowhere(azurite, monkeypatch, debug_logs):
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING")
    sas = _sas(azurite)
    store = ArtifactStore(azurite.url, account_url=f"{azurite.blob_endpoint}?{sas}")
    auth = store._azure.auth
    assert (auth.method, auth.account_name) == ("SAS token", azurite.account_name)
    assert auth.account_url == azurite.blob_endpoint
    ref = store.put([1, 2, 3])
    assert store.get(ref) == [1, 2, 3]

    monkeypatch.setenv("DUCTWORK_AZURE_ACCOUNT_URL", f"{azurite.blob_endpoint}?{sas}")
    from_env = ArtifactStore(f"{azurite.url}/env")
    assert from_env._azure.auth.describe() == "the SAS token from $DUCTWORK_AZURE_ACCOUNT_URL"
    assert from_env.get(from_env.put("x")) == "x"
    texts = [repr(store), repr(auth), auth.describe(), repr(store_config(store)),
             repr(from_env), debug_logs.text]
    _assert_nowhere(_signature(sas), texts, [])


def test_a_query_that_is_not_a_sas_is_refused_without_showing_it(azurite):
    with pytest.raises(AzureStoreError, match="query") as info:
        ArtifactStore(f"{azurite.url}/p?secretish=value-0123456789")
    assert "value-0123456789" not in str(info.value)
    with pytest.raises(ValueError, match="names no container") as info:
        ArtifactStore("az://?sv=1&sig=s1gnature-0123456789")
    assert "s1gnature" not in str(info.value)


def test_a_pickled_datastore_keeps_no_nested_secret_and_works_on_a_worker(azurite, tmp_path):
    (tmp_path / "a.txt").write_text("a")
    secret_header = "Bearer nested-header-secret-0123"
    lake = dw.Datastore(
        f"{azurite.url}/lake", name=None, connection_string=azurite.connection_string,
        headers={"Authorization": secret_header, "Accept": "*/*"},
        client_kwargs={"credential": "nested-credential-0123", "timeout": 30},
    )
    assert lake.upload_files([tmp_path / "a.txt"]) == ["a.txt"]
    assert lake.public_options == {"headers": {"Accept": "*/*"},
                                   "client_kwargs": {"timeout": 30}}
    for dumps in (pickle.dumps, cloudpickle.dumps):
        data = dumps(lake)
        for secret in (azurite.account_key, "nested-header-secret-0123",
                       "nested-credential-0123"):
            assert secret.encode() not in data
    # A worker process with its own credentials in its environment (the fixture set
    # AZURE_STORAGE_CONNECTION_STRING) opens the datastore it was sent.
    code = "import pickle, sys; print(pickle.loads(sys.stdin.buffer.read()).list())"
    done = subprocess.run([sys.executable, "-c", code], input=pickle.dumps(lake),
                          capture_output=True, check=True)
    assert done.stdout.decode().strip() == "['a.txt']", done.stderr.decode()
