"""The studio's server time: the runs page with 10,000 runs, and a run page of 2,000 steps.

Targets (issue [11]): a runs page in <= 100 ms of server time with 10,000 runs in the
store (first page, a page deep in the history by its keyset cursor, and a filtered
page); a 2,000-step run's page (read, graph drawn, HTML rendered) in <= 1 s. Measured
in process, through the same functions the routes call, on real SQLite files:

    PYTHONPATH=. python benchmarks/studio_bench.py
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from ductwork.runtime.records.run import Run, StepRun
from ductwork.runtime.records.runstore import RunStore
from ductwork.runtime.status import Status


def _timed(fn, repeat: int = 7) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def runs_page_bench(root: Path) -> list[tuple[str, float, float]]:
    """Fill a history with 10,000 runs; time three pages of the runs page."""
    from ductwork.server.state import ServerState
    from ductwork.server.studio.queries import runs_page

    history = RunStore(root / "runs.sqlite")
    for i in range(10_000):
        run = Run(f"run-{i:05d}", f"p{i % 7}", {"i": i}, "inline", started=1e9 + i,
                  status=Status.SUCCEEDED if i % 5 else Status.FAILED, finished=1e9 + i + 1)
        history.finish_run(run)
    history.close()
    state = ServerState(root / "server.sqlite")
    first = runs_page(state.path, root / "runs.sqlite")
    cursor = None
    for _ in range(100):  # 5,000 runs deep
        cursor = runs_page(state.path, root / "runs.sqlite", after=cursor).after
    return [
        ("runs page, first 50 of 10,000", _timed(
            lambda: runs_page(state.path, root / "runs.sqlite")), 0.1),
        ("runs page, 5,000 runs deep (keyset)", _timed(
            lambda: runs_page(state.path, root / "runs.sqlite", after=cursor)), 0.1),
        ("runs page, pipeline + status filter", _timed(
            lambda: runs_page(state.path, root / "runs.sqlite", pipeline="p3",
                              status="failed")), 0.1),
    ] if first.rows else []


def run_page_bench(root: Path) -> list[tuple[str, float, float]]:
    """Record a 2,000-step chain; time reading it and rendering its page."""
    from ductwork.runtime.store.artifacts import open_store
    from ductwork.server.state import ServerState
    from ductwork.server.studio.render import page
    from ductwork.server.studio.runview import load_run
    from ductwork.server.studio.sessions import Who
    from ductwork.server.views import RunSource

    store = open_store(str(root / "store"))
    n = 2000
    graph = {"name": "chain", "nodes": [{"id": f"s{i}", "kind": "step"} for i in range(n)],
             "edges": [{"source": f"s{i}", "target": f"s{i + 1}", "argument": "x"}
                       for i in range(n - 1)]}
    run = Run("big-run", "chain", {}, "inline", status=Status.SUCCEEDED, started=1e9,
              finished=1e9 + 60, graph=graph)
    for i in range(n):
        run.steps[f"s{i}"] = StepRun(f"s{i}", "s", Status.SUCCEEDED, cached=bool(i % 2),
                                     started=1e9 + i * 0.01, finished=1e9 + i * 0.01 + 0.005)
    history = RunStore(root / "store" / "runs.sqlite")
    history.finish_run(run)

    class Srv:
        artifacts = store
        state = ServerState(root / "store" / "server.sqlite")
        runs = RunSource(state, store)

    who = Who("bench", "viewer", "x")
    return [("run page, 2,000 steps (read + graph + HTML)", _timed(
        lambda: page("run.html", who, view=load_run(Srv, "big-run"), title="r").body,
        repeat=3), 1.0)]


def main() -> int:
    """Print each measurement against its target; exit 1 if one is missed."""
    missed = 0
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "a").mkdir()
        rows = runs_page_bench(root / "a") + run_page_bench(root)
    for name, seconds, target in rows:
        ok = seconds <= target
        missed += not ok
        print(f"{name:<48} {seconds * 1000:8.1f} ms  target <= {target * 1000:.0f} ms  "
              f"{'PASS' if ok else 'MISS'}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
