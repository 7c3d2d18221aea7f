"""Fixtures for tests against Azurite, the Azure Storage emulator: real blobs, no mocks.

Azurite must be running (``bash scripts/services.sh up azurite``); when it is not, the
tests skip, which tests/conftest.py turns into a failure under CI=true.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator

import attrs
import pytest

# The emulator's well-known development account, published in Microsoft's Azurite docs;
# it is not a secret, and it only opens the local emulator.
ACCOUNT_NAME = "devstoreaccount1"
ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
HOST = "127.0.0.1"


def blob_port() -> int:
    """Return Azurite's blob port: ``$DUCTWORK_AZURITE_BLOB_PORT`` or 10000."""
    return int(os.environ.get("DUCTWORK_AZURITE_BLOB_PORT") or 10000)


def blob_endpoint() -> str:
    """Return the emulator's blob endpoint URL (path-style: the account is in the path)."""
    return f"http://{HOST}:{blob_port()}/{ACCOUNT_NAME}"


def connection_string() -> str:
    """Return the connection string of the emulator's development account."""
    return (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT_NAME};AccountKey={ACCOUNT_KEY};"
        f"BlobEndpoint={blob_endpoint()};"
    )


def _reachable(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=1.0):
            return True
    except OSError:
        return False


@attrs.frozen
class Azurite:
    """A fresh container on a running Azurite, and how to reach it."""

    connection_string: str
    account_name: str
    account_key: str
    blob_endpoint: str
    container: str

    @property
    def url(self) -> str:
        """The ``az://`` URL of the container."""
        return f"az://{self.container}"

    def service_client(self):
        """Return a plain azure-storage-blob BlobServiceClient for the account."""
        from azure.storage.blob import BlobServiceClient

        return BlobServiceClient.from_connection_string(self.connection_string)

    def container_client(self):
        """Return a plain azure-storage-blob ContainerClient for the test's container."""
        return self.service_client().get_container_client(self.container)


@pytest.fixture(scope="session")
def _azurite_up() -> int:
    port = blob_port()
    if not _reachable(port):
        pytest.skip(
            f"Azurite is not running on {HOST}:{port}: start it with "
            "`bash scripts/services.sh up azurite`"
        )
    return port


@pytest.fixture
def azurite(_azurite_up, monkeypatch) -> Iterator[Azurite]:
    """A fresh uniquely named container on Azurite, deleted afterwards; sets
    ``AZURE_STORAGE_CONNECTION_STRING`` for the test."""
    from azure.storage.blob import BlobServiceClient

    # Credentials other tests or the developer's shell set must not leak into these.
    for name in (
        "AZURE_STORAGE_ACCOUNT_NAME",
        "AZURE_STORAGE_ACCOUNT_KEY",
        "AZURE_STORAGE_SAS_TOKEN",
        "AZURE_STORAGE_CONNECTION_STRING",
    ):
        monkeypatch.delenv(name, raising=False)
    conn = connection_string()
    container = f"dw-test-{uuid.uuid4().hex[:16]}"
    service = BlobServiceClient.from_connection_string(conn)
    service.create_container(container)
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", conn)
    try:
        yield Azurite(conn, ACCOUNT_NAME, ACCOUNT_KEY, blob_endpoint(), container)
    finally:
        try:
            service.delete_container(container)
        except Exception:  # already gone (a test deleted it): nothing to clean
            pass
        service.close()
