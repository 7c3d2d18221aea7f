"""Remote backends with the store in Azure Blob storage: Dask workers, containers.

The loopback cluster's workers have their own credentials in their environment
(scripts/services.sh gives them Azurite's development account); the driver sends
none through the scheduler.
"""

from __future__ import annotations

import os

import pytest

from ductwork import pipeline, step
from ductwork.runtime.keys.hashing import new_hasher
from ductwork.runtime.store.artifacts import ArtifactStore

pytestmark = pytest.mark.slow


@step
def chunk(i: int) -> bytes:
    return bytes([i]) * (1 << 20)


@step
def digest_all(parts: list[bytes]) -> str:
    return new_hasher(b"".join(parts)).hexdigest()


@step
def where() -> int:
    return os.getpid()


def test_a_pipeline_on_dask_with_its_store_on_blob(azurite, dask_cluster):
    @pipeline
    def p():
        return {"digest": digest_all(chunk.map([1, 2, 3])), "pid": where()}

    store = f"{azurite.url}/runs"
    run = p.run(backend="dask", address=dask_cluster, store=store)
    expected = new_hasher(b"".join(bytes([i]) * (1 << 20) for i in (1, 2, 3))).hexdigest()
    assert run.outputs["digest"] == expected
    assert run.outputs["pid"] != os.getpid()  # it ran on a worker
    # Every object the workers wrote is a committed blob a plain SDK client can read.
    container = azurite.container_client()
    names = [b.name for b in container.list_blobs(name_starts_with="runs/objects/")]
    assert len(names) >= 3  # the chunks; digest_all's and where's small outputs are inlined
    ref = run.steps["chunk[2]"].output_refs["output"]
    blob = ArtifactStore(store).object_path(ref.digest).split("/", 1)[1]
    data = container.download_blob(blob).readall()
    assert new_hasher(data).hexdigest() == ref.digest
    again = p.run(backend="dask", address=dask_cluster, store=store)
    assert all(s.cached for s in again.steps.values() if s.id != "where")


@pytest.mark.docker
def test_containers_with_the_store_on_blob(azurite, docker_engine):
    """Containers run with no network: their values travel through the job dir and the
    driver writes them to blob storage."""

    @pipeline
    def p():
        return digest_all(chunk.map([4, 5]))

    store = f"{azurite.url}/docker"
    run = p.run(backend="docker", store=store)
    assert run.outputs == new_hasher(bytes([4]) * (1 << 20) + bytes([5]) * (1 << 20)).hexdigest()
    ref = run.steps["chunk[1]"].output_refs["output"]  # 1 MiB: a blob (small ones inline)
    blob = ArtifactStore(store).object_path(ref.digest).split("/", 1)[1]
    assert azurite.container_client().get_blob_client(blob).exists()
    assert all(s.cached for s in p.run(backend="docker", store=store).steps.values())
