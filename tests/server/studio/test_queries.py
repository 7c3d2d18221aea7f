"""The runs page's SQL over real SQLite files: the run history and the server's queue merged,
newest first, filtered, keyset-paginated."""

from __future__ import annotations

from ductwork.runtime.records.run import Run
from ductwork.runtime.records.runstore import RunStore
from ductwork.runtime.status import Status
from ductwork.server import queue
from ductwork.server.state import ServerState
from ductwork.server.studio.queries import metric_series, pipeline_names, runs_page


def _stores(tmp_path, n):
    history = RunStore(tmp_path / "runs.sqlite")
    for i in range(n):
        run = Run(f"run-{i:04d}", "flow" if i % 2 else "other", {"i": i}, "inline",
                  status=Status.SUCCEEDED if i % 3 else Status.FAILED, started=1000.0 + i,
                  finished=1001.0 + i)
        history.begin_run(run)
        history.finish_run(run)
    history.close()
    state = ServerState(tmp_path / "server.sqlite")
    queued = queue.enqueue(state, "published", 1, {"x": 1}, "runner")
    return state, queued


def test_pages_walk_every_run_once_newest_first(tmp_path):
    state, queued = _stores(tmp_path, 120)
    seen, after = [], None
    while True:
        page = runs_page(state.path, tmp_path / "runs.sqlite", after=after, limit=50)
        seen += [r["run_id"] for r in page.rows]
        after = page.after
        if after is None:
            break
    assert seen[0] == queued  # queued now, after every recorded run
    assert seen[1:] == [f"run-{i:04d}" for i in reversed(range(120))]
    assert len(set(seen)) == 121


def test_filters_by_pipeline_status_and_time(tmp_path):
    state, queued = _stores(tmp_path, 30)
    path = tmp_path / "runs.sqlite"
    flow = runs_page(state.path, path, pipeline="flow", status="failed", limit=100).rows
    assert [r["run_id"] for r in flow] == [f"run-{i:04d}" for i in (27, 21, 15, 9, 3)]
    window = runs_page(state.path, path, since=1010.0, until=1012.0, limit=100).rows
    assert [r["run_id"] for r in window] == ["run-0011", "run-0010"]
    only_queued = runs_page(state.path, path, status="queued").rows
    assert [(r["run_id"], r["via"], r["pipeline"]) for r in only_queued] == [
        (queued, "api", "published")]
    assert pipeline_names(state.path, path) == ["flow", "other", "published"]


def test_a_server_with_no_history_yet_lists_its_queue(tmp_path):
    state = ServerState(tmp_path / "server.sqlite")
    queued = queue.enqueue(state, "p", 1, {}, "runner")
    assert [r["run_id"] for r in runs_page(state.path, tmp_path / "none.sqlite").rows] == [queued]
    assert metric_series(state.path, tmp_path / "none.sqlite", "p") == {}
