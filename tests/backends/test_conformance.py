"""The conformance suite: every backend must pass these, unchanged.

Later backends (docker, dask) join by adding their name, and a fixture that
provides what they need, to ``BACKENDS``.
"""

from __future__ import annotations

import os
import time
import uuid

import pytest

import ductwork as dw
from ductwork import pipeline, step
from ductwork.runtime.context import context

BACKENDS = [
    "inline",
    "threads",  # a third party's: tests/backends/threads_backend.py, through its entry point
    "process",
    pytest.param("docker", marks=pytest.mark.docker),
    "dask",  # a LocalCluster that ductwork starts
    pytest.param("dask-cli", marks=pytest.mark.dask),  # `dask scheduler` + `dask worker`
]
STORES = ["local", "memory"]
# A memory:// store cannot reach another process's workers: that case is an error by design
# (tests/backends/test_dask.py), not a run.


def _name(b) -> str:
    return b.values[0] if hasattr(b, "values") else b


CASES = [pytest.param((_name(b), s), id=f"{_name(b)}-{s}", marks=getattr(b, "marks", ()))
         for b in BACKENDS for s in STORES if not (s == "memory" and _name(b) == "dask-cli")]


@pytest.fixture(params=CASES)
def case(request, tmp_path):
    name, kind = request.param
    options: dict = {"backend": name}
    if name == "docker":
        request.getfixturevalue("docker_engine")
    if name == "threads":
        request.getfixturevalue("threads_entry_point")
    if name == "dask-cli":
        address = request.getfixturevalue("dask_cluster")
        options = {"backend": "dask", "address": address, "shared_filesystem": True}
    if kind == "local":
        return options, str(tmp_path / "store")
    return options, f"memory://conformance-{uuid.uuid4().hex}"


@pytest.fixture
def threads_entry_point(tmp_path, monkeypatch):
    """Install ``threads_backend`` the way a package would: a distribution on sys.path
    whose metadata names it under the ``ductwork.backends`` entry-point group."""
    site = tmp_path / "site"
    info = site / "ductwork_threads-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: ductwork-threads\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[ductwork.backends]\nthreads = threads_backend:ThreadsBackend\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.syspath_prepend(os.path.dirname(__file__))


@pytest.fixture
def backend(case):
    """The run options naming the backend (and its settings)."""
    return case[0]


@pytest.fixture
def store(case):
    return case[1]


@step
def make(n: int) -> list[int]:
    print(f"making {n}")
    return list(range(n))


@step(outputs=("evens", "odds"))
def split(xs: list[int]):
    return [x for x in xs if x % 2 == 0], [x for x in xs if x % 2]


@step
def square(x: int, k: int = 1) -> int:
    context().log_metric("x", x)
    return x * x * k


@step
def total(xs: list[int]) -> int:
    return sum(xs)


@step(cache=False)  # it reports on the run it is in, so it must run in each
def whoami() -> dict:
    ctx = context()
    return {"run": ctx.run_id, "step": ctx.step_id, "scratch": ctx.scratch_dir.is_dir()}


@step
def boom(x: int) -> int:
    raise ValueError(f"boom on {x}")


@pipeline
def flow(n: int = 6, k: int = 2):
    evens, odds = split(make(n))
    return {"evens": total(square.map(evens, k=k)), "odds": total(odds), "who": whoami()}


def test_outputs_match_plain_evaluation(backend, store):
    run = flow.run(**backend, store=store)
    assert run.status == "succeeded"
    expected = flow()
    assert run.outputs["evens"] == expected["evens"] == 2 * (0 + 4 + 16)
    assert run.outputs["odds"] == 9
    assert run.backend == backend["backend"]


def test_context_names_run_and_step_and_scratch(backend, store):
    run = flow.run(**backend, store=store)
    assert run.outputs["who"] == {"run": run.id, "step": "whoami", "scratch": True}


def test_logs_and_metrics_are_kept(backend, store):
    run = flow.run(**backend, store=store)
    assert "making 6" in run.steps["make"].logs
    assert run.steps["square[1]"].metrics == {"x": 2}
    again = dw.get_run(run.id, store=store)
    assert "making 6" in again.steps["make"].logs
    assert again.steps["square[2]"].metrics == {"x": 4}


def test_second_run_is_served_from_cache(backend, store):
    flow.run(**backend, store=store)
    run = flow.run(**backend, store=store)
    assert all(s.cached for s in run.steps.values() if s.map_index is None and s.id != "whoami")
    assert run.outputs["evens"] == 40


def test_failure_is_contained(backend, store):
    @pipeline
    def p():
        xs = make(3)
        return {"bad": total([boom(1)]), "good": total(xs)}

    with pytest.raises(dw.PipelineFailed) as err:
        p.run(**backend, store=store)
    run = err.value.run
    assert "ValueError: boom on 1" in str(err.value)
    assert run.steps["boom"].status == "failed"
    assert run.steps["total"].status == "skipped"
    assert run.steps["total-2"].status == "succeeded"
    assert run.steps["total-2"].output == 3


def test_retries(backend, store):
    @step(retries=2, cache=False)
    def flaky() -> str:
        if context().attempt < 3:  # the step cannot keep state between attempts
            raise RuntimeError("not yet")
        return "ok"

    @pipeline
    def p():
        return flaky()

    run = p.run(**backend, store=store)
    assert run.outputs == "ok" and run.steps["flaky"].attempts == 3


def test_a_large_value_passes_between_steps(backend, store):
    @step
    def big() -> bytes:
        return os.urandom(8 << 20)

    @step
    def size(b: bytes) -> int:
        return len(b)

    @pipeline
    def p():
        return size(big())

    assert p.run(**backend, store=store).outputs == 8 << 20


def test_map_over_a_runtime_list_and_an_empty_one(backend, store):
    @pipeline
    def p(n: int = 5):
        return square.map(make(n)), square.map(make(0))

    assert p.run(**backend, store=store, n=4).outputs == ([0, 1, 4, 9], [])


def test_context_outside_a_run_is_local():
    ctx = context()
    assert ctx.run_id == "local" and ctx.step_id is None
    ctx.log_metric("loss", 0.5)
    assert square(3) == 9  # a step as a plain call logs to the local context
    assert ctx.metrics["x"] == 3 or ctx.metrics["x"][-1] == 3
    with pytest.raises(dw.DuctworkError, match="takes a finite number"):
        ctx.log_metric("bad", float("nan"))


def test_a_step_over_its_timeout_is_stopped_and_fails(backend, store, tmp_path):
    marker = str(tmp_path / "still-running")

    @step(timeout=1, cache=False)
    def spin() -> int:
        deadline = time.time() + 30
        while time.time() < deadline:  # Python code: every backend can stop it
            if os.path.isdir(os.path.dirname(marker)):  # not inside a container
                with open(marker, "w") as f:
                    f.write(str(time.time()))
        return 1

    @step
    def fine() -> int:
        return 2

    @pipeline
    def p():
        return spin(), fine()

    t0 = time.time()
    with pytest.raises(dw.PipelineFailed, match="timed out after 1 s") as err:
        p.run(**backend, store=store)
    assert time.time() - t0 < 25
    assert err.value.run.steps["fine"].status == "succeeded"
    # It was stopped, not left running: the marker stops changing.
    time.sleep(1.5)
    before = open(marker).read() if os.path.exists(marker) else None
    time.sleep(1.0)
    assert (open(marker).read() if os.path.exists(marker) else None) == before
