"""``ductwork serve --backend dask --address A``: triggered runs use that scheduler."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from harness import Served, ductwork, token

import ductwork as dw

pytestmark = [pytest.mark.slow, pytest.mark.dask]

FLOW = '''
import os

import ductwork as dw


@dw.step(cache=False)
def where() -> int:
    return os.getpid()


@dw.pipeline
def pids():
    return where()
'''


def test_triggered_runs_use_the_named_scheduler(tmp_path: Path, dask_cluster):
    from dask.distributed import Client

    (tmp_path / "pids.py").write_text(FLOW)
    ductwork(tmp_path, "publish", "pids.py:pids")
    runner = token(tmp_path, "ci", "runner")
    server = Served(tmp_path, "--backend", "dask", "--address", dask_cluster,
                    "--shared-filesystem")
    try:
        status, answer = server.call("POST", "/pipelines/pids/runs", runner, {})
        assert status == 202, answer
        run = server.wait(runner, answer["run_id"], timeout=120)
        assert run["status"] == "succeeded", (run, server.output())
    finally:
        server.kill()
    with Client(dask_cluster, timeout=10) as client:
        workers = set(client.run(os.getpid).values())
    made = dw.get_run(answer["run_id"], store=str(tmp_path / "store")).outputs
    assert made in workers, (made, workers)


def test_address_is_refused_without_the_dask_backend(tmp_path: Path):
    done = ductwork(tmp_path, "serve", "--address", "tcp://x:8786", check=False)
    assert done.returncode == 1 and "--backend dask" in done.stderr, done.stderr
