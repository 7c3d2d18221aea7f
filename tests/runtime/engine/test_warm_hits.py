"""What a cache hit costs the engine, counted, not timed: Python calls per warm step.

A warm step (every input an upstream hit) is keyed, looked up and served. The cost of
that path is counted as the Python-level calls it makes in the engine, the keys and the
store -- deterministic, unlike a wall time on a shared machine (timings live in
``benchmarks/``). The count per step is the difference between a 30-step and a 10-step
chain, over 20, so what a run costs once (its records, its trace) cancels out. The
process has run the chain before: its fingerprints, serializers and parsed entries are
what a second ``run()`` in a notebook or a server finds.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

from tests.calls import calls_made, chain_module, in_ductwork

# The modules the hit path goes through on this side of the trace and the run's records.
MINE = ("runtime/engine/", "runtime/keys/", "runtime/store/", "backends/inline")
# 58 calls per warm step at 6b9610a, 25 since; what is left is about one call per decision.
BUDGET = 30


def _chain(tmp_path: Path, n: int) -> object:
    return chain_module(tmp_path, n, f"warm_hits_chain_{n}")


def _calls_of_a_warm_run(module: object, store: str) -> Counter[str]:
    runs = []
    calls = calls_made(lambda: runs.append(module.chain.run(  # type: ignore[attr-defined]
        n=0, store=store, progress=False)), name=in_ductwork(*MINE))
    assert runs[0].status == "succeeded" and all(s.cached for s in runs[0].steps.values())
    return Counter(calls)


def test_a_warm_hit_makes_few_python_calls(tmp_path: Path) -> None:
    counted = {}
    for n in (10, 30):
        module = _chain(tmp_path, n)
        store = str(tmp_path / f"store{n}")
        module.chain.run(n=0, store=store, progress=False)  # type: ignore[attr-defined]
        module.chain.run(n=0, store=store, progress=False)  # type: ignore[attr-defined]
        counted[n] = _calls_of_a_warm_run(module, store)
    per_step = {name: (counted[30][name] - counted[10][name]) / 20 for name in counted[30]}
    total = sum(per_step.values())
    where = ", ".join(f"{name} {n:g}" for name, n in
                      sorted(per_step.items(), key=lambda item: -item[1]) if n)
    assert total <= BUDGET, f"{total:g} calls per warm step: {where}"


def test_a_rerun_in_the_same_process_sees_a_changed_step(tmp_path: Path) -> None:
    # The keys of hits are remembered by the identities of a step's basis, options and
    # input refs: new code (a new fingerprint) must make new keys, here and downstream
    # only where the bytes change.
    module = _chain(tmp_path, 4)
    store = str(tmp_path / "store")
    for _ in range(2):
        warm = module.chain.run(n=0, store=store, progress=False)  # type: ignore[attr-defined]
    assert all(s.cached for s in warm.steps.values()) and warm.outputs == 4

    def plus_two(x: int) -> int:
        return x + 2

    module.s001.fn.__code__ = plus_two.__code__  # type: ignore[attr-defined]
    rerun = module.chain.run(n=0, store=store, progress=False)  # type: ignore[attr-defined]
    assert rerun.outputs == 5
    assert {sid: s.cached for sid, s in rerun.steps.items()} == {
        "s000": True, "s001": False, "s002": False, "s003": False}
    again = module.chain.run(n=0, store=store, progress=False)  # type: ignore[attr-defined]
    assert again.outputs == 5 and all(s.cached for s in again.steps.values())


def test_a_rerun_in_the_same_process_is_all_hits_from_a_store_of_another_process(
        tmp_path: Path) -> None:
    # The keys this process remembers are the keys a fresh process computes.
    import subprocess

    module = _chain(tmp_path, 6)
    store = str(tmp_path / "store")
    module.chain.run(n=0, store=store, progress=False)  # type: ignore[attr-defined]
    module.chain.run(n=0, store=store, progress=False)  # type: ignore[attr-defined]
    other = str(tmp_path / "other")
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import warm_hits_chain_6 as m; "
            "r = m.chain.run(n=0, store=sys.argv[2], progress=False); "
            "r = m.chain.run(n=0, store=sys.argv[2], progress=False); "
            "print(sorted(s.key for s in r.steps.values()))")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path), other],
                         capture_output=True, text=True, check=True)
    here = module.chain.run(n=0, store=store, progress=False)  # type: ignore[attr-defined]
    assert out.stdout.strip() == str(sorted(s.key for s in here.steps.values()))
