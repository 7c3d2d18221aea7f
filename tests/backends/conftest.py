"""Fixtures for backends that need a service: skip (fail under CI=true) when it is absent."""

from __future__ import annotations

import os
import socket

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


DASK_PORT = int(os.environ.get("DUCTWORK_DASK_PORT", "18786"))


@pytest.fixture(scope="session")
def dask_cluster():
    """The address of the loopback cluster `scripts/services.sh up dask` starts."""
    address = f"tcp://127.0.0.1:{DASK_PORT}"
    try:
        with socket.create_connection(("127.0.0.1", DASK_PORT), timeout=2):
            pass
    except OSError:
        pytest.skip(f"no Dask scheduler at {address}: bash scripts/services.sh up dask")
    return address
