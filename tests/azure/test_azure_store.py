"""The az:// artifact store against Azurite: pipelines, plain-SDK readability, credentials,
secret-free errors, and uploads that are invisible until complete. No mocks."""

from __future__ import annotations

import base64
import datetime
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest

import ductwork as dw
from ductwork import pipeline, step
from ductwork.dsl.core import DuctworkError
from ductwork.runtime.keys.hashing import new_hasher
from ductwork.runtime.store.artifacts import ArtifactStore
from ductwork.runtime.store.azure import AzureStoreError, resolve_auth
from ductwork.runtime.store.secrets import redact

# Shaped like a real account key (64 bytes, base64), so redaction by shape is exercised too.
WRONG_KEY = base64.b64encode((b"not the key of devstoreaccount1 " * 2)[:64]).decode()


@step
def numbers(n: int) -> list[int]:
    return list(range(n)) + [0] * 600  # over INLINE_MAX: a blob, for tests to read and damage


@step
def payload(n: int) -> bytes:
    return bytes(range(256)) * (n // 256)


@step
def total(xs: list[int]) -> int:
    return sum(xs)


@step
def length(b: bytes) -> int:
    return len(b)


@pipeline
def sums(n: int = 10, size: int = 2 << 20):
    xs = numbers(n)
    return {"total": total(xs), "length": length(payload(size))}


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["inline", "process"])
def test_pipeline_on_an_az_store_reruns_as_cache_hits(azurite, backend, tmp_path):
    url = f"{azurite.url}/runs"
    run = sums.run(n=10, store=url, backend=backend)
    assert run.status == "succeeded"
    assert run.outputs == {"total": 45, "length": 2 << 20}
    assert not any(s.cached for s in run.steps.values())

    again = sums.run(n=10, store=url, backend=backend)
    assert again.outputs == run.outputs
    assert all(s.cached for s in again.steps.values()), {k: s.cached
                                                         for k, s in again.steps.items()}

    # Run metadata of a remote store lives in $DUCTWORK_HOME, and names the store's URL.
    assert (tmp_path / "home" / "runs.sqlite").exists()
    assert [r.id for r in dw.runs(store=url)][:2] == [again.id, run.id]
    assert dw.get_run(run.id, store=url).store == url
    names = [b.name for b in azurite.container_client().list_blobs(name_starts_with="runs/")]
    assert any(n.startswith("runs/objects/") for n in names)
    assert any(n.startswith("runs/keys/") for n in names)


def test_objects_are_readable_and_verifiable_with_the_plain_sdk(azurite):
    run = sums.run(n=5, size=1 << 20, store=azurite.url)
    container = azurite.container_client()
    checked = 0
    for record in run.steps.values():
        for ref in record.output_refs.values():
            if ref.inline is not None:  # a small output: its bytes ride in its ref, no blob
                data = ref.inline
            else:
                name = ArtifactStore(azurite.url).object_path(ref.digest).split("/", 1)[1]
                data = container.download_blob(name).readall()
            assert len(data) == ref.size
            assert new_hasher(data).hexdigest() == ref.digest
            checked += 1
    assert checked == 4


@pytest.mark.slow
def test_wrong_account_key_is_a_clear_error_without_the_key(azurite, tmp_path, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    options = {"account_name": azurite.account_name, "account_key": WRONG_KEY,
               "account_url": azurite.blob_endpoint}
    store = ArtifactStore(azurite.url, **options)
    assert WRONG_KEY not in repr(store)
    with pytest.raises(AzureStoreError) as info:
        store.check()
    message = str(info.value)
    assert azurite.account_name in message and azurite.container in message
    assert "account key" in message and WRONG_KEY not in message

    with pytest.raises(DuctworkError) as info:
        sums.run(n=3, store=store, backend="process")
    assert azurite.account_name in str(info.value) and azurite.container in str(info.value)
    out, err = capfd.readouterr()
    for text in (str(info.value), repr(info.value), out, err, caplog.text):
        assert WRONG_KEY not in text
    for path in (tmp_path / "home").rglob("*"):
        if path.is_file():
            assert WRONG_KEY.encode() not in path.read_bytes(), path
            with sqlite3.connect(path) if path.suffix == ".sqlite" else _nothing() as db:
                if db is not None:
                    rows = db.execute("SELECT * FROM runs").fetchall()
                    assert WRONG_KEY not in repr(rows)


class _nothing:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def _roundtrip(store: ArtifactStore) -> None:
    store.check()
    ref = store.put({"a": [1, 2, 3]})
    big = store.put(os.urandom(5 << 20))  # the streamed, prefetched read path
    assert store.get(ref) == {"a": [1, 2, 3]}
    assert len(store.get(big)) == 5 << 20
    store.put_key("k" * 10, {"out": ref})
    assert store.get_key("k" * 10) == {"out": ref}


def test_connection_string_from_the_environment(azurite):
    store = ArtifactStore(azurite.url + "/cs")
    assert store._azure.auth.method == "connection string"
    assert store._azure.auth.source == "environment"
    _roundtrip(store)


def test_account_key_from_the_environment(azurite, monkeypatch):
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING")
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT_NAME", azurite.account_name)
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT_KEY", azurite.account_key)
    monkeypatch.setenv("DUCTWORK_AZURE_ACCOUNT_URL", azurite.blob_endpoint)
    store = ArtifactStore(azurite.url)
    assert store._azure.auth.method == "account key"
    _roundtrip(store)
    assert store.fs.exists(store.root + "/keys")  # adlfs gets the same credential


def test_sas_token_from_the_environment_with_process_workers(azurite, monkeypatch):
    from azure.storage.blob import ContainerSasPermissions, generate_container_sas

    sas = generate_container_sas(
        azurite.account_name, azurite.container, account_key=azurite.account_key,
        permission=ContainerSasPermissions(read=True, add=True, create=True, write=True,
                                           delete=True, list=True),
        expiry=datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=1),
    )
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING")
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT_NAME", azurite.account_name)
    monkeypatch.setenv("AZURE_STORAGE_SAS_TOKEN", sas)
    monkeypatch.setenv("DUCTWORK_AZURE_ACCOUNT_URL", azurite.blob_endpoint)
    store = ArtifactStore(azurite.url)
    assert store._azure.auth.method == "SAS token"
    assert store.storage_options == {}  # the secret stays in the environment
    _roundtrip(store)
    run = sums.run(n=4, size=1 << 20, store=azurite.url + "/sas", backend="process")
    assert run.outputs == {"total": 6, "length": 1 << 20}


def test_explicit_options_win_and_reach_process_workers(azurite, monkeypatch):
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING",
                       "AccountName=nobody;AccountKey=" + WRONG_KEY)
    options = {"account_name": azurite.account_name, "account_key": azurite.account_key,
               "account_url": azurite.blob_endpoint}
    store = ArtifactStore(azurite.url, **options)
    assert store._azure.auth.source == "storage options"
    assert azurite.account_key not in repr(store) and azurite.account_key not in repr(
        store._azure.auth)
    run = sums.run(n=3, size=1 << 20, store=store, backend="process")
    assert run.outputs == {"total": 3, "length": 1 << 20}


def test_a_missing_container_is_created_when_the_store_is_opened(azurite):
    azurite.service_client().delete_container(azurite.container)
    fresh = f"{azurite.container}-new"
    try:
        store = ArtifactStore(f"az://{fresh}/p")
        store.check()
        ref = store.put([1, 2])
        assert store.get(ref) == [1, 2]
    finally:
        azurite.service_client().delete_container(fresh)


def test_no_credentials_says_what_to_set(monkeypatch):
    for name in ("AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGE_ACCOUNT_NAME"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(AzureStoreError, match="AZURE_STORAGE_CONNECTION_STRING"):
        ArtifactStore("az://somewhere")


def _only_an_account_name(monkeypatch, url: str) -> None:
    for name in ("AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGE_ACCOUNT_KEY",
                 "AZURE_STORAGE_SAS_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT_NAME", "devstoreaccount1")
    monkeypatch.setenv("DUCTWORK_AZURE_ACCOUNT_URL", url)
    # DefaultAzureCredential's chain cut to the environment, so the test does not spend
    # ~20 s probing for a managed identity that is not there.
    monkeypatch.setenv("AZURE_TOKEN_CREDENTIALS", "EnvironmentCredential")


def test_default_credential_without_a_sign_in_fails_at_once_saying_what_to_do(
        monkeypatch, tmp_path):
    _only_an_account_name(monkeypatch, "https://127.0.0.1:9/devstoreaccount1")
    t0 = time.time()
    with pytest.raises(AzureStoreError, match="DefaultAzureCredential found no sign-in") as err:
        sums.run(store="az://nope/x")
    assert "container 'nope'" in str(err.value) and "az login" in str(err.value)
    assert time.time() - t0 < 10  # one token request, not the blob client's retries


def test_a_token_credential_over_http_is_refused_with_the_reason(monkeypatch):
    _only_an_account_name(monkeypatch, "http://127.0.0.1:10000/devstoreaccount1")
    with pytest.raises(AzureStoreError, match="only sent over https.*connection string"):
        ArtifactStore("az://somewhere")


def test_redact_strips_keys_signatures_and_known_secrets():
    text = (f"DefaultEndpointsProtocol=http;AccountName=acct;AccountKey={WRONG_KEY};"
            "BlobEndpoint=http://h/acct; url https://a.blob.core.windows.net/c/b?sv=2024&sig=abc%2Fdef"
            "&se=2030 Authorization: SharedKey acct:c2lnbmF0dXJl bare " + WRONG_KEY +
            " SharedAccessSignature=sv=1&sig=xyz token Bearer eyJ0eXAi.abc.def mysecretvalue")
    out = redact(text, ("mysecretvalue",))
    for secret in (WRONG_KEY, "abc%2Fdef", "c2lnbmF0dXJl", "eyJ0eXAi", "mysecretvalue", "xyz"):
        assert secret not in out
    assert "AccountName=acct" in out and "se=2030" in out


def test_auth_repr_and_description_hold_no_secret():
    auth = resolve_auth({"account_name": "acct", "account_key": WRONG_KEY}, environ={})
    assert WRONG_KEY not in repr(auth) and WRONG_KEY not in auth.describe()
    assert auth.account_url == "https://acct.blob.core.windows.net"


CHILD = textwrap.dedent("""
    import sys
    from ductwork import pipeline, step
    from ductwork.runtime.store.artifacts import ArtifactStore

    @step
    def big(n: int) -> bytes:
        import random
        return random.Random(7).randbytes(n)

    @step
    def size(b: bytes) -> int:
        return len(b)

    @pipeline
    def upload(n: int = 24 << 20):
        return size(big(n))

    # Small blocks, one at a time: the upload takes long enough to be caught mid-way.
    store = ArtifactStore(sys.argv[1], max_single_put_size=1 << 20, max_block_size=1 << 20,
                          max_concurrency=1)
    run = upload.run(store=store)
    print("RESULT", run.outputs, sorted(s.id for s in run.steps.values() if s.cached), flush=True)
""")


@pytest.mark.slow
def test_an_upload_killed_midway_leaves_nothing_visible_and_the_rerun_recomputes(
        azurite, tmp_path):
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    url = f"{azurite.url}/killed"
    container = azurite.container_client()
    child = subprocess.Popen([sys.executable, str(script), url], stdout=subprocess.PIPE,
                             text=True, env={**os.environ, "PYTHONPATH": os.getcwd()})
    try:
        deadline = time.monotonic() + 60
        staged = []
        while not staged:
            assert child.poll() is None, "the child finished before it could be interrupted"
            assert time.monotonic() < deadline, "no upload was seen in progress"
            staged = [b.name for b in container.list_blobs(name_starts_with="killed/objects/",
                                                           include=["uncommittedblobs"])]
            time.sleep(0.01)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait(10)

    # Staged blocks are there, but no reader can see an object, and no key refers to one.
    committed = list(container.list_blobs(name_starts_with="killed/"))
    assert committed == [], [b.name for b in committed]
    store = ArtifactStore(url)
    assert list(store.iter_objects()) == [] and list(store.iter_keys()) == []
    assert not store.has(staged[0].rsplit("/", 2)[-2] + staged[0].rsplit("/", 1)[-1])

    def rerun() -> str:
        out = subprocess.run([sys.executable, str(script), url], capture_output=True, text=True,
                             timeout=120, env={**os.environ, "PYTHONPATH": os.getcwd()})
        assert out.returncode == 0, out.stderr[-3000:]
        return out.stdout

    assert f"RESULT {24 << 20} []" in rerun()  # recomputed, nothing taken from the cache
    assert f"RESULT {24 << 20} ['big', 'size']" in rerun()
    digest = staged[0].split("/objects/", 1)[1].replace("/", "")
    data = container.download_blob(staged[0]).readall()
    assert new_hasher(data).hexdigest() == digest


def test_gc_removes_what_no_kept_run_refers_to_on_blob(azurite):
    from ductwork.runtime.records.gc import collect

    url = f"{azurite.url}/gc"
    old = sums.run(n=3, size=1 << 16, store=url)
    new = sums.run(n=4, size=1 << 16, store=url)
    before = set(ArtifactStore(url).iter_objects())
    report = collect(url, keep_last=1, grace=0)
    after = set(ArtifactStore(url).iter_objects())
    assert report.runs_removed == 1 and after < before
    assert [r.id for r in dw.runs(store=url)] == [new.id]
    assert old.steps["numbers"].output_refs["output"].digest not in after
    assert all(s.cached for s in sums.run(n=4, size=1 << 16, store=url).steps.values())


def test_a_corrupt_blob_is_refused_and_recomputed(azurite):
    url = f"{azurite.url}/corrupt"
    first = sums.run(n=6, size=1 << 16, store=url)
    ref = first.steps["numbers"].output_refs["output"]
    blob = azurite.container_client().get_blob_client(
        ArtifactStore(url).object_path(ref.digest).split("/", 1)[1])
    data = bytearray(blob.download_blob().readall())
    data[len(data) // 2] ^= 1
    blob.upload_blob(bytes(data), overwrite=True)

    with pytest.warns(RuntimeWarning, match=f"{ref.digest[:12]}.*failed verification"):
        second = sums.run(n=6, size=1 << 16, store=url, regenerate=["total"])
    assert second.outputs == first.outputs
    assert not second.steps["numbers"].cached
    assert new_hasher(blob.download_blob().readall()).hexdigest() == ref.digest
