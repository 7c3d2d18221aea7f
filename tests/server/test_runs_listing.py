"""``GET /runs`` with a status filter finds runs however far back they are, newest first, and
``limit`` counts the runs that match, not the runs looked at. A real server over runs
recorded in the store's history (by ``run_pipeline``, as ``ductwork run`` records them)
and runs triggered over HTTP."""

from __future__ import annotations

import importlib.util
import textwrap

import pytest
from harness import Served, ductwork, token

from ductwork.dsl.core import PipelineFailed
from ductwork.runtime.runner import run_pipeline

pytestmark = pytest.mark.slow

FLAKY = textwrap.dedent('''
    import ductwork as dw

    @dw.step(cache=False)
    def check(x: int) -> int:
        if x < 0:
            raise ValueError("negative")
        return x

    @dw.pipeline
    def flaky(x: int = 1):
        return check(x)
''')


@pytest.fixture
def root(tmp_path):
    (tmp_path / "flaky.py").write_text(FLAKY)
    return tmp_path


def _run(root, pipeline, x: int) -> None:
    try:
        run_pipeline(pipeline, {"x": x}, store=str(root / "store"), progress=False)
    except PipelineFailed:
        pass


def test_a_status_filter_reaches_past_the_newest_runs(root):
    spec = importlib.util.spec_from_file_location("flaky_for_listing", root / "flaky.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    _run(root, module.flaky, -1)  # the one failed run, oldest of all
    for x in range(12):
        _run(root, module.flaky, x)
    ductwork(root, "publish", f"{root / 'flaky.py'}:flaky", "--name", "flaky")
    tok = token(root, "look", "runner")
    server = Served(root)
    try:
        status, failed = server.call("GET", "/runs?status=failed&limit=1", tok)
        assert status == 200 and len(failed) == 1, failed
        assert failed[0]["status"] == "failed" and failed[0]["trigger"]["via"] == "cli"

        status, ok = server.call("GET", "/runs?status=succeeded&limit=3", tok)
        assert [r["status"] for r in ok] == ["succeeded"] * 3
        everything = server.call("GET", "/runs?limit=100", tok)[1]
        assert len(everything) == 13
        newest = [r["run_id"] for r in everything if r["status"] == "succeeded"][:3]
        assert [r["run_id"] for r in ok] == newest

        # Runs triggered here are listed with the others, filtered by their own status.
        triggered = server.call("POST", "/pipelines/flaky/runs", tok,
                                {"parameters": {"x": -5}})[1]["run_id"]
        assert server.wait(tok, triggered)["status"] == "failed"
        failed = server.call("GET", "/runs?status=failed&limit=5", tok)[1]
        assert [r["trigger"]["via"] for r in failed] == ["api", "cli"]
        assert failed[0]["run_id"] == triggered and failed[0]["pipeline"] == "flaky"
        only = server.call("GET", "/runs?status=failed&pipeline=flaky&limit=1", tok)[1]
        assert [r["run_id"] for r in only] == [triggered]
        assert server.call("GET", "/runs?status=queued", tok)[1] == []
    finally:
        server.kill()
