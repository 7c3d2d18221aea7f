"""Fixtures for backends that need a service: skip (fail under CI=true) when it is absent."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def docker_engine():
    """A reachable Docker engine with ductwork's base image."""
    from ductwork.backends.docker import connect
    from ductwork.backends.docker_env import default_base
    from ductwork.runtime.backend import BackendError

    try:
        client = connect()
    except BackendError as exc:
        pytest.skip(f"no Docker engine: {exc}")
    try:
        client.images.get(default_base())
    except Exception:
        pytest.skip(f"base image {default_base()} missing: bash scripts/services.sh up docker")
    return client

