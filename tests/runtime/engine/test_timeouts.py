"""A step past its timeout on the inline backend: stopped when it can be, and said honestly
when it cannot (a call blocked in C runs on in its thread)."""

from __future__ import annotations

import os
import time

import pytest

import ductwork as dw
from ductwork import pipeline, step
from ductwork.runtime.store.artifacts import ArtifactStore


@step(timeout=1)
def spins(n: int) -> int:
    total = 0
    while True:  # pure Python: interrupted at its next instruction
        total += n


@step(timeout=1)
def sleeps(seconds: float) -> float:
    time.sleep(seconds)  # blocked in C: nothing can interrupt it before it returns
    return seconds


def test_a_pure_python_step_past_its_timeout_is_stopped(tmp_path):
    @pipeline
    def p():
        return spins(1)

    started = time.time()
    with pytest.raises(dw.PipelineFailed) as err:
        p.run(store=str(tmp_path), progress=False)
    assert time.time() - started < 4
    error = err.value.run.steps["spins"].error
    assert "Step 'spins' timed out after 1 s and was stopped (timeout=1)" in error
    assert "keeps running" not in error


def test_a_step_blocked_in_c_is_not_said_to_be_stopped_and_its_result_is_never_cached():
    @step
    def independent(x: int) -> int:
        return x + 1

    @pipeline
    def p():
        return sleeps(5), independent(1)

    started = time.time()
    with pytest.raises(dw.PipelineFailed) as err:
        p.run(progress=False)  # the default store, which plan() reads too
    assert time.time() - started < 4  # the run does not wait for the sleep
    run = err.value.run
    error = run.steps["sleeps"].error
    assert "Step 'sleeps' timed out after 1 s; it is blocked in code ductwork cannot " \
           "interrupt" in error
    assert "keeps running in the background until that call returns" in error
    assert "its result will be discarded and not cached" in error
    assert "backend='process'" in error
    assert "was stopped" not in error
    assert run.steps["independent"].output == 2
    key = run.steps["sleeps"].key
    assert key is not None
    time.sleep(max(0.0, started + 6.5 - time.time()))  # the sleep has returned by now
    store = ArtifactStore(os.environ["DUCTWORK_STORE"])
    assert store.get_key(key) is None  # nothing was indexed for it
    assert store.get_key(run.steps["independent"].key) is not None
