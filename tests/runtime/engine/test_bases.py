"""A step's input-independent key parts (its basis) are computed once per run and shared
by every call of that step, except where they may change during the run: files named by
``hash_paths`` (an upstream step may write them) and ``env_vars`` (one may set them)."""

from __future__ import annotations

import os

import ductwork as dw
from ductwork.runtime.keys import cache_key


@dw.step
def bump(v: int) -> int:
    return v + 1


@dw.pipeline
def ten():
    v = 0
    for _ in range(10):
        v = bump(v)
    return v


@dw.step(env_vars=["DW_TEST_BASIS_MODE"])
def probe(v: int) -> int:
    return v + 1


@dw.step
def switch(v: int) -> int:
    os.environ["DW_TEST_BASIS_MODE"] = "b"
    return v


@dw.pipeline
def switched():
    return probe(switch(probe(0)))


def test_a_chain_of_one_step_computes_its_basis_once(tmp_path, monkeypatch):
    calls = []
    real = cache_key.fingerprint
    monkeypatch.setattr(cache_key, "fingerprint", lambda fn: calls.append(fn) or real(fn))
    run = ten.run(store=str(tmp_path / "s"), progress=False)
    assert run.outputs == 10
    assert len(calls) == 1
    keys = {s.key for s in run.steps.values()}
    assert len(keys) == 10  # one basis, ten different keys: the inputs differ


def test_a_step_reading_an_environment_variable_keys_each_call_with_its_value(
        tmp_path, monkeypatch):
    monkeypatch.setenv("DW_TEST_BASIS_MODE", "a")
    run = switched.run(store=str(tmp_path / "s"), progress=False)
    first, second = (s for s in run.steps.values() if s.step == "probe")
    component = "env_var:DW_TEST_BASIS_MODE"
    assert first.components[component] != second.components[component]
