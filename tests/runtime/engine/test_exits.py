"""A step that calls ``sys.exit`` fails as a step, on every backend; it never ends the run."""

from __future__ import annotations

import sys

import pytest

import ductwork as dw
from ductwork import pipeline, step


@step(cache=False)
def quits(code: int | str | None) -> int:
    sys.exit(code)


@step
def independent(x: int) -> int:
    return x + 1


@pytest.fixture(params=[
    "inline",
    pytest.param("process", marks=pytest.mark.slow),
    pytest.param("dask", marks=[pytest.mark.slow, pytest.mark.dask]),
])
def backend(request, tmp_path):
    """Run options for each backend whose steps go through ``job.call``."""
    if request.param == "dask":
        address = request.getfixturevalue("dask_cluster")
        return {"backend": "dask", "address": address, "shared_filesystem": True,
                "store": str(tmp_path / "s")}
    return {"backend": request.param, "store": str(tmp_path / "s")}


@pytest.mark.parametrize(("code", "shown"), [(0, "sys.exit(0)"), (None, "sys.exit()"),
                                             ("bye", "sys.exit('bye')")])
def test_sys_exit_in_a_step_fails_that_step_and_the_rest_finishes(backend, code, shown):
    @pipeline
    def p():
        return quits(code), independent(1)

    with pytest.raises(dw.PipelineFailed) as err:
        p.run(progress=False, **backend)
    run = err.value.run
    assert run.status == "failed"
    error = run.steps["quits"].error
    assert f"Step 'quits' called {shown}: a step must return a value or raise" in error
    assert "quits" in str(err.value)
    assert run.steps["independent"].status == "succeeded"
    assert run.steps["independent"].output == 2
