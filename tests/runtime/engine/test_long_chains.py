"""Nothing in the engine recurses with the graph's size: long chains run cold and cached.

Each test runs the chain in a fresh interpreter (a cached rerun in a new process is
what a user's second `python pipe.py` is) and checks the last value and that the
rerun was served from the cache.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent('''
    import json, sys
    import ductwork as dw
    from ductwork import pipeline, step

    @step
    def inc(x: int) -> int:
        return x + 1

    @pipeline
    def chain(n: int = 10):
        x = 0
        for _ in range(n):
            x = inc(x)
        return x

    if __name__ == "__main__":
        n, backend, store = int(sys.argv[1]), sys.argv[2], sys.argv[3]
        options = {"backend": backend, "store": store, "progress": False}
        if len(sys.argv) > 4:
            options.update(address=sys.argv[4], shared_filesystem=True)
        run = chain.run(n=n, **options)
        cached = sum(1 for s in run.steps.values() if s.cached)
        print(json.dumps({"out": run.outputs, "cached": cached, "status": run.status}))
''')


def _run(tmp_path, n: int, backend: str, *extra: str) -> dict:
    script = tmp_path / "chain.py"
    script.write_text(SCRIPT)
    out = subprocess.run(
        [sys.executable, str(script), str(n), backend, str(tmp_path / "store"), *extra],
        capture_output=True, text=True, timeout=900, cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def _cold_then_cached(tmp_path, n: int, backend: str, *extra: str) -> None:
    cold = _run(tmp_path, n, backend, *extra)
    assert cold == {"out": n, "cached": 0, "status": "succeeded"}
    warm = _run(tmp_path, n, backend, *extra)
    assert warm == {"out": n, "cached": n, "status": "succeeded"}


@pytest.mark.slow
def test_a_10000_step_chain_runs_and_reruns_cached_inline(tmp_path):
    _cold_then_cached(tmp_path, 10_000, "inline")


@pytest.mark.slow
def test_a_2000_step_chain_runs_and_reruns_cached_on_process(tmp_path):
    _cold_then_cached(tmp_path, 2_000, "process")


@pytest.mark.slow
@pytest.mark.dask
def test_a_2000_step_chain_runs_and_reruns_cached_on_dask(tmp_path, dask_cluster):
    _cold_then_cached(tmp_path, 2_000, "dask", dask_cluster)
