"""Suite-wide rules (under CI=true a skipped test is a failure), isolation, and the fixtures
for services (Dask, Docker): absent, they skip -- and so fail under CI."""

from __future__ import annotations

import os
import socket
import sys
from typing import Any

import pytest
from hypothesis import settings

from tests.calls import calls_made

# These machines are shared and noisy: a property's examples are judged by their results,
# never by how long one took (speed lives in benchmarks/).
settings.register_profile("ductwork", deadline=None)
settings.load_profile("ductwork")

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if IN_CI and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, where every component must be present: {reason}"


@pytest.fixture(autouse=True)
def _isolated_store(tmp_path, monkeypatch):
    """Every test gets its own store and home, so no test sees another's cache."""
    monkeypatch.setenv("DUCTWORK_STORE", str(tmp_path / "store"))
    monkeypatch.setenv("DUCTWORK_HOME", str(tmp_path / "home"))


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


@pytest.fixture(scope="session")
def docker_engine():
    """A reachable Docker engine with ductwork's base image."""
    from ductwork.backends.docker import connect
    from ductwork.backends.docker_env import default_base
    from ductwork.runtime.engine.backend import BackendError

    try:
        client = connect()
    except BackendError as exc:
        pytest.skip(f"no Docker engine: {exc}")
    try:
        client.images.get(default_base())
    except Exception:
        pytest.skip(f"base image {default_base()} missing: bash scripts/services.sh up docker")
    return client



def _count_calls(fn: Any) -> int:
    """The Python and C calls ``fn()`` makes: a cost that a shared machine's load cannot
    change, for tests that check how work grows (timings belong in benchmarks/)."""
    return len(calls_made(fn, c_calls=True))


@pytest.fixture
def count_calls():
    """``count_calls(fn)``: how many calls ``fn()`` makes (see ``_count_calls``)."""
    return _count_calls


@pytest.fixture
def import_file(monkeypatch):
    """``import_file(path, name)``: import the module at ``path`` as ``name``, registered in
    ``sys.modules`` for the test (pickling, dataclasses and fingerprints look it up there)."""
    import importlib.util

    def load(path: Any, name: str) -> Any:
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        monkeypatch.setitem(sys.modules, name, module)
        spec.loader.exec_module(module)
        return module

    return load
