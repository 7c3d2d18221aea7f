"""What running one small cold step costs in ``engine/job``, and that it still does it all.

A cold step is called under its ``dw.context()`` and the run's store, its output stored
inline and its key's entry written. Those are set and reset per step; done with generator
context managers they were two thirds of the per-step bookkeeping here (~17k of ~25k
instructions for the two), so the step's context is entered by plain calls.
"""

from __future__ import annotations

from typing import Any

import ductwork as dw
from ductwork.runtime.context import current_run_store
from ductwork.runtime.engine.job import Job, execute
from ductwork.runtime.store.artifacts import ArtifactStore
from tests.calls import calls_made

KEY = "ab" + "e" * 62
SEEN: dict[str, Any] = {}



@dw.step
def add_one(x: int) -> int:
    ctx = dw.context()
    SEEN.update(run_id=ctx.run_id, step_id=ctx.step_id, store=current_run_store())
    ctx.log_metric("x", x)
    print("adding")
    return x + 1


def test_a_cold_step_runs_under_its_context_and_store_and_is_stored(tmp_path):
    store = ArtifactStore(str(tmp_path / "store"))
    job = Job("add_one", add_one, (41,), {}, key=KEY, run_id="run-1")
    result = execute(job, store)
    assert result.error is None, result.error
    assert result.values == {"output": 42} and result.metrics == {"x": 41}
    assert "adding" in result.logs
    assert SEEN == {"run_id": "run-1", "step_id": "add_one", "store": store}
    assert store.get_key(KEY) == result.refs
    assert store.get(result.refs["output"]) == 42
    # Outside the step again: no context, no run store left behind.
    assert dw.context().run_id != "run-1" and current_run_store() is None


def test_a_failing_step_leaves_no_context_behind(tmp_path):
    store = ArtifactStore(str(tmp_path / "store"))

    @dw.step
    def boom(x: int) -> int:
        raise ValueError("no")

    result = execute(Job("boom", boom, (1,), {}, key=KEY, run_id="run-2"), store)
    assert "ValueError: no" in result.error
    assert current_run_store() is None and dw.context().run_id != "run-2"
    assert store.get_key(KEY) is None


def test_a_cold_step_enters_its_context_without_generator_context_managers(tmp_path):
    store = ArtifactStore(str(tmp_path / "store"))
    execute(Job("add_one", add_one, (0,), {}, key="ab" + "f" * 62), store)  # warm-up
    made = calls_made(lambda: execute(Job("add_one", add_one, (1,), {}, key=KEY), store))
    assert not {"running", "run_store"} & set(made), made
