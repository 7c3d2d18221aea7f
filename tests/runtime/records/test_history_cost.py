"""What a run's history costs, counted, not timed: statements and Python calls per step.

A run's history is two writes (begun, finished) plus its leases. Their cost per step
is counted as the Python-level calls made in ``runtime/records`` -- deterministic,
unlike a wall time on a shared machine (timings live in ``benchmarks/``) -- as the
difference between a 30-step and a 10-step chain, over 20, so what a run costs once
cancels out. What is written is checked by the SQL SQLite is given.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from ductwork.runtime.records.runstore import open_history, open_runstore
from ductwork.runtime.store.artifacts import open_store
from tests.calls import calls_made, chain_module, in_ductwork

# (SQLite virtual-machine instructions, Python calls in runtime/records) per step; "cold"
# is an empty store, its keys written before by the same process (so their text is known).
WARM_BUDGET = (77, 5)
COLD_BUDGET = (81, 8)


def _chain(tmp_path: Path, n: int) -> object:
    return chain_module(tmp_path, n, f"history_cost_chain_{n}")


def _calls_of_a_run(module: object, store: str) -> Counter[str]:
    calls: Counter[str] = Counter()
    history = open_runstore(open_store(store))
    if history is not None:  # SQLite's own work: virtual-machine instructions it runs

        def opcode() -> int:
            calls["sqlite opcodes"] += 1
            return 0

        history._db.set_progress_handler(opcode, 1)

    runs = []
    try:
        calls.update(calls_made(lambda: runs.append(module.chain.run(  # type: ignore[attr-defined]
            n=0, store=store, progress=False)), name=in_ductwork("runtime/records/")))
    finally:
        if history is not None:
            history._db.set_progress_handler(None, 1)
    assert runs[0].status == "succeeded"
    return calls


def _per_step(tmp_path: Path, warm: bool) -> tuple[float, float, str]:
    counted = {}
    for n in (10, 30):
        module = _chain(tmp_path, n)
        for i in range(3):  # the third run is measured; the first two warm the process
            store = str(tmp_path / (f"warm{n}" if warm else f"cold{n}-{i}"))
            if i == 2:
                counted[n] = _calls_of_a_run(module, store)
            else:
                module.chain.run(n=0, store=store, progress=False)  # type: ignore[attr-defined]
    per_step = {name: (counted[30][name] - counted[10][name]) / 20 for name in counted[30]}
    where = ", ".join(f"{name} {n:g}" for name, n in
                      sorted(per_step.items(), key=lambda item: -item[1]) if n)
    opcodes = per_step.pop("sqlite opcodes", 0)
    return opcodes, sum(per_step.values()), where


def test_a_warm_step_makes_few_python_calls_in_the_history(tmp_path: Path) -> None:
    opcodes, calls, where = _per_step(tmp_path, warm=True)
    assert opcodes <= WARM_BUDGET[0] and calls <= WARM_BUDGET[1], (
        f"{opcodes:g} opcodes, {calls:g} calls: {where}")


def test_a_cold_step_makes_few_python_calls_in_the_history(tmp_path: Path) -> None:
    opcodes, calls, where = _per_step(tmp_path, warm=False)
    assert opcodes <= COLD_BUDGET[0] and calls <= COLD_BUDGET[1], (
        f"{opcodes:g} opcodes, {calls:g} calls: {where}")


def test_a_runs_graph_is_written_once_and_its_row_updated_at_its_end(tmp_path: Path) -> None:
    # begin_run writes the run's row with its graph; finish_run used to write the whole
    # row again (INSERT OR REPLACE: the graph encoded and written twice, the old row
    # deleted); now it updates what changed.
    module = _chain(tmp_path, 5)
    store = str(tmp_path / "store")
    module.chain.run(n=0, store=store, progress=False)  # type: ignore[attr-defined]
    history = open_history(open_store(store))
    assert history is not None
    said: list[str] = []
    history._db.set_trace_callback(said.append)
    try:
        run = module.chain.run(n=0, store=store, progress=False)  # type: ignore[attr-defined]
    finally:
        history._db.set_trace_callback(None)
    graph_writes = [s for s in said if '"edges"' in s]
    assert len(graph_writes) == 1, graph_writes
    assert not [s for s in said if s.startswith("INSERT OR REPLACE INTO runs")][1:]
    again = history.get_run(run.id)
    assert again is not None
    assert (again.status, again.graph, again.params, again.result, again.finished) == (
        run.status, run.graph, run.params, run.result, run.finished)
    assert (again.git_commit, again.git_dirty, again.module) == (
        run.git_commit, run.git_dirty, run.module)
