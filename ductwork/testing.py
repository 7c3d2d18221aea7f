"""The pytest plugin (entry point ``pytest11``): fixtures for testing pipelines.

``ductwork_store`` gives each test its own in-memory artifact store and run
history, set as the default store for the test, so pipeline tests leave
nothing on disk and share no cache.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest


@pytest.fixture
def ductwork_store(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An isolated ``memory://`` store URL, also made the default (``DUCTWORK_STORE``)."""
    url = f"memory://ductwork-test-{uuid.uuid4().hex}"
    monkeypatch.setenv("DUCTWORK_STORE", url)
    yield url
    from ductwork.runtime.records.runstore import forget_runstore
    from ductwork.runtime.store.artifacts import ArtifactStore

    store = ArtifactStore(url)
    forget_runstore(store)
    if store.fs.exists(store.root):
        store.fs.rm(store.root, recursive=True)
