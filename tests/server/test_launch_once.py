"""A run is never started twice, even by a server that died between starting a run's process
and recording its pid: the restarted server's launcher meets the row as that server left
it (running, no pid) while the first process is alive. Real SQLite, real processes."""

from __future__ import annotations

import sqlite3
import textwrap
import time

import pytest
from harness import ductwork

from ductwork.runtime.store.artifacts import open_store
from ductwork.server import queue
from ductwork.server.launcher import Launcher
from ductwork.server.state import ServerState, state_path
from ductwork.server.views import RunSource

pytestmark = pytest.mark.slow

MARK = textwrap.dedent('''
    import ductwork as dw

    @dw.step(cache=False)
    def mark(path: str) -> int:
        with open(path, "a") as f:
            f.write("ran\\n")
        return 1

    @dw.pipeline
    def marked(path: str = ""):
        return mark(path)
''')


def _launcher(store: str) -> tuple[Launcher, ServerState, RunSource]:
    artifacts = open_store(store)
    state = ServerState(state_path(artifacts))
    runs = RunSource(state, artifacts)
    return Launcher(state, artifacts.url, "inline", 2, recorded=runs.status), state, runs


def _settle(launchers: list[Launcher], seconds: float = 90) -> None:
    """Turn the launchers until none has a child left (each reaps its own)."""
    deadline = time.monotonic() + seconds
    while True:
        for launcher in launchers:
            launcher._turn()
        if all(launcher.running() == 0 for launcher in launchers):
            return
        assert time.monotonic() < deadline, "children still running"
        time.sleep(0.2)


def test_a_row_left_running_without_a_pid_is_not_started_twice(tmp_path):
    (tmp_path / "marked.py").write_text(MARK)
    ductwork(tmp_path, "publish", f"{tmp_path / 'marked.py'}:marked", "--name", "marked")
    store, marker = str(tmp_path / "store"), tmp_path / "ran.txt"
    first, state, runs = _launcher(store)
    first.logs.mkdir(parents=True, exist_ok=True)
    run_id = queue.enqueue(state, "marked", 1, {"path": str(marker)}, "ci")
    with first._lock:
        row = queue.claim_next(state)
        assert row is not None and row["run_id"] == run_id
        first._launch(row)
    # The server dies here, before its pid is on the row: what a restart finds.
    db = sqlite3.connect(state.path)
    with db:
        db.execute("UPDATE queue SET pid = NULL WHERE run_id = ?", (run_id,))
    db.close()

    second, _, _ = _launcher(store)
    try:
        second.recover()
        _settle([first, second])
        deadline = time.monotonic() + 30
        while runs.status(run_id) in (None, "running"):
            assert time.monotonic() < deadline, runs.status(run_id)
            time.sleep(0.1)
        time.sleep(1.0)  # a second process, if any, would have marked by now
        _settle([first, second])
        assert runs.status(run_id) == "succeeded"
        assert marker.read_text().count("ran") == 1, "the run was started twice"
    finally:
        for launcher in (first, second):
            zygote = getattr(launcher, "zygote", None)
            if zygote is not None:
                zygote.stop()
