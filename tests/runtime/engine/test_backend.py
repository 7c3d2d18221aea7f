"""The backend registry and Protocols: every member the engine uses is declared."""

from __future__ import annotations

import pytest

from ductwork.runtime.engine import backend as registry
from ductwork.runtime.engine.backend import Backend, BackendError, GraphBackend, get_backend


class _Half:
    """A backend that forgot ``environment`` and ``cancel``."""

    name = "half"
    capacity = 1
    reads_store = False
    schedules_graph = False

    def __init__(self, store, **options):
        self.store = store

    def submit(self, job):
        raise NotImplementedError

    def close(self):
        pass


def test_a_backend_missing_a_protocol_member_is_refused_naming_it(monkeypatch):
    monkeypatch.setitem(registry.BUILTIN, "half", (f"{__name__}:_Half", None))
    with pytest.raises(BackendError, match=r"does not implement environment, cancel of the "
                                           r"Backend protocol"):
        get_backend("half", store=None)


@pytest.mark.parametrize("name", ["inline", "process"])
def test_builtin_loop_backends_implement_the_protocol(name, tmp_path):
    from ductwork.runtime.store.artifacts import ArtifactStore

    made = get_backend(name, store=ArtifactStore(str(tmp_path / "s")))
    try:
        assert isinstance(made, Backend) and not made.schedules_graph
        assert not isinstance(made, GraphBackend)
    finally:
        made.close()
