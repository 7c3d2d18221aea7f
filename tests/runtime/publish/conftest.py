"""Pipelines written to real files and loaded as ``ductwork run`` loads them."""

from __future__ import annotations

import textwrap
import uuid
from pathlib import Path

import pytest

from ductwork.cli import load_pipeline

FLOW = '''
from ductwork import pipeline, step

FACTOR = {factor}


def helper(x):
    return x * FACTOR


@step
def scale(x: int) -> int:
    return helper(x)


@step
def add(a: int, b: int = 1) -> int:
    return a + b


@pipeline
def flow(x: int = 2, b: int = 1):
    return {{"y": add(scale(x), b)}}
'''


def write_flow(folder: Path, factor: int = 10, stem: str | None = None) -> Path:
    """Write a pipeline file whose result is ``x * factor + b``; return its path."""
    path = folder / f"{stem or 'flow_' + uuid.uuid4().hex[:8]}.py"
    path.write_text(textwrap.dedent(FLOW.format(factor=factor)))
    return path


@pytest.fixture
def make_flow(tmp_path):
    """Return a function that writes a pipeline file and loads its pipeline."""

    def make(factor: int = 10):
        return load_pipeline(f"{write_flow(tmp_path, factor)}:flow")

    return make


@pytest.fixture
def flow_file(tmp_path):
    """Return a function that writes a pipeline file (``write_flow``) in the test's folder."""
    return lambda factor=10: write_flow(tmp_path, factor)


@pytest.fixture(params=["local", "memory"])
def store(request, tmp_path):
    """A local store and a memory:// one."""
    if request.param == "local":
        return str(tmp_path / "store")
    return f"memory://publish-{uuid.uuid4().hex}"
