"""The studio's fixtures: one real ``ductwork serve`` per test module (``studio``)."""

from __future__ import annotations

import pytest
from studio_helpers import Studio


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    """A running server with ``flow`` and ``sleepy`` published and a token per role."""
    served = Studio(tmp_path_factory.mktemp("studio"))
    try:
        yield served
    finally:
        served.stop()
