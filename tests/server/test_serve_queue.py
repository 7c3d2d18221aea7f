"""The durable queue against a real server: a restart loses no queued run, a run whose server
died is never left running, cancel works queued and running, and 50 concurrent triggers
are each recorded once."""

from __future__ import annotations

import signal
import threading
import time

import pytest
from harness import Served, ductwork, publish_slow, token, write_flow

pytestmark = pytest.mark.slow



@pytest.fixture
def root(tmp_path):
    return publish_slow(tmp_path)


def _trigger(server, tok, **params) -> str:
    status, answer = server.call("POST", "/pipelines/slow/runs", tok, {"parameters": params})
    assert status == 202, answer
    return answer["run_id"]


def test_a_restart_loses_no_queued_run(root):
    tok = token(root, "ci", "runner")
    server = Served(root, "--max-runs", "1")
    ids = [_trigger(server, tok, seconds=0.3, n=i) for i in range(4)]
    time.sleep(0.5)
    server.kill(signal.SIGKILL)
    states = [server_state(root, i) for i in ids]
    assert states.count("queued") >= 2, states

    again = Served(root, "--max-runs", "1")
    try:
        runs = [again.wait(tok, i) for i in ids]
        assert [r["status"] for r in runs] == ["succeeded"] * 4, runs
        assert [r["parameters"]["n"] for r in runs] == [0, 1, 2, 3]
        # FIFO: each began after the one queued before it.
        starts = [r["started"] for r in runs]
        assert starts == sorted(starts)
    finally:
        again.kill()


def begun(server, tok: str, run_id: str) -> None:
    """Wait until the run's child has recorded it in the run history (its backend shows)."""
    deadline = time.monotonic() + 30
    while server.call("GET", f"/runs/{run_id}", tok)[1]["backend"] is None:
        assert time.monotonic() < deadline, server.output()
        time.sleep(0.05)
    time.sleep(0.3)  # into the step


def server_state(root, run_id: str) -> str:
    """A queue row's state, read from the server's SQLite file as a restart would."""
    import sqlite3

    db = sqlite3.connect(root / "store" / "server.sqlite")
    try:
        return db.execute("SELECT state FROM queue WHERE run_id = ?", (run_id,)).fetchone()[0]
    finally:
        db.close()


def test_a_running_run_whose_child_was_killed_is_died_never_running(root):
    tok = token(root, "ci", "runner")
    server = Served(root, "--max-runs", "1")
    run_id = _trigger(server, tok, seconds=30, n=1)
    begun(server, tok, run_id)
    server.kill(signal.SIGKILL)
    import os
    import sqlite3

    db = sqlite3.connect(root / "store" / "server.sqlite")
    (pid,) = db.execute("SELECT pid FROM queue WHERE run_id = ?", (run_id,)).fetchone()
    db.close()
    os.killpg(pid, signal.SIGKILL)  # the machine lost the run too
    again = Served(root, "--max-runs", "1")
    try:
        assert again.wait(tok, run_id)["status"] == "died"
        assert "died" in ductwork(root, "runs").stdout
    finally:
        again.kill()


def test_cancel_queued_and_running(root):
    tok = token(root, "ci", "runner")
    viewer = token(root, "look", "viewer")
    server = Served(root, "--max-runs", "1")
    try:
        running = _trigger(server, tok, seconds=30, n=1)
        queued = _trigger(server, tok, seconds=30, n=2)
        status, answer = server.call("POST", f"/runs/{queued}/cancel", viewer)
        assert status == 403
        assert server.call("POST", f"/runs/{queued}/cancel", tok)[1]["status"] == "cancelled"
        assert server.wait(tok, queued)["status"] == "cancelled"
        begun(server, tok, running)
        status, answer = server.call("POST", f"/runs/{running}/cancel", tok)
        assert (status, answer["status"]) == (202, "cancelling")
        run = server.wait(tok, running, timeout=20)
        assert run["status"] == "cancelled", run
    finally:
        server.kill()


def test_fifty_concurrent_triggers_each_recorded_once(root):
    flow = write_flow(root)
    ductwork(root, "publish", f"{flow}:flow", "--name", "flow")
    tok = token(root, "ci", "runner")
    server = Served(root, "--max-runs", "8")
    try:
        answers, errors = [], []

        def trigger(i: int) -> None:
            try:
                answers.append(server.call("POST", "/pipelines/flow/runs", tok,
                                           {"parameters": {"x": i % 5}}))
            except Exception as exc:  # collected: the assertion below names it
                errors.append(exc)

        threads = [threading.Thread(target=trigger, args=(i,)) for i in range(50)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors and [s for s, _ in answers] == [202] * 50, (errors, answers)
        ids = [a["run_id"] for _, a in answers]
        assert len(set(ids)) == 50
        runs = [server.wait(tok, i, timeout=120) for i in ids]
        assert all(r["status"] == "succeeded" for r in runs), runs
        listed = server.call("GET", "/runs?pipeline=flow&limit=1000", tok)[1]
        assert sorted(r["run_id"] for r in listed) == sorted(ids)
        history = ductwork(root, "runs", "--limit", "1000").stdout
        assert all(history.count(i) == 1 for i in ids)
    finally:
        server.kill()
