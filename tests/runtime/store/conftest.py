"""The store every test here runs against: a local directory, and memory://."""

from __future__ import annotations

import uuid

import pytest

from ductwork.runtime.store.artifacts import ArtifactStore


@pytest.fixture(params=["local", "memory"])
def store(request, tmp_path):
    if request.param == "local":
        yield ArtifactStore(str(tmp_path / "store"))
        return
    # fsspec's memory filesystem is global: give every test its own root
    s = ArtifactStore(f"memory://ductwork-tests/{uuid.uuid4().hex}")
    yield s
    if s.fs.exists(s.root):
        s.fs.rm(s.root, recursive=True)
