"""Warm starts: runs are forked from the server's zygote, a process that has already imported
the runtime, and keep every property of a freshly started child -- their own session,
cancel, surviving the server, adoption after a restart -- with a plain subprocess when the
zygote is gone. Real servers, real processes."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from harness import Served, publish_slow, token

pytestmark = pytest.mark.slow



@pytest.fixture
def root(tmp_path):
    return publish_slow(tmp_path)


def _trigger(server: Served, tok: str, **params: object) -> str:
    status, answer = server.call("POST", "/pipelines/slow/runs", tok, {"parameters": params})
    assert status == 202, answer
    return answer["run_id"]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _ppid(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rpartition(")")[2].split()[1])


def zygotes(server: Served) -> list[int]:
    """The zygote processes the server started (its children running the zygote module)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and "ductwork.server.zygote" in _cmdline(int(entry.name)):
            try:
                if _ppid(int(entry.name)) == server.proc.pid:
                    found.append(int(entry.name))
            except (OSError, ValueError, IndexError):
                continue
    return found


def wait_for_zygote(server: Served, seconds: float = 60) -> int:
    """The server's zygote, once it has started and said it is ready."""
    deadline = time.monotonic() + seconds
    while True:
        found = zygotes(server)
        if found and "zygote ready" in server.output():
            return found[0]
        assert time.monotonic() < deadline, f"no zygote: {found}\n{server.output()}"
        time.sleep(0.1)


def run_pid(root: Path, run_id: str, seconds: float = 30) -> int:
    """The pid of the run's process, once the server has recorded it."""
    import sqlite3

    deadline = time.monotonic() + seconds
    while True:
        db = sqlite3.connect(root / "store" / "server.sqlite")
        try:
            (pid,) = db.execute("SELECT pid FROM queue WHERE run_id = ?", (run_id,)).fetchone()
        finally:
            db.close()
        if pid is not None:
            return int(pid)
        assert time.monotonic() < deadline, f"run {run_id} has no pid"
        time.sleep(0.05)


def begun(server: Served, tok: str, run_id: str) -> None:
    """Wait until the run's process has recorded it in the run history."""
    deadline = time.monotonic() + 30
    while server.call("GET", f"/runs/{run_id}", tok)[1]["backend"] is None:
        assert time.monotonic() < deadline, server.output()
        time.sleep(0.05)
    time.sleep(0.3)


def test_a_run_is_forked_from_the_zygote_in_its_own_session(root):
    tok = token(root, "ci", "runner")
    server = Served(root, "--max-runs", "2")
    try:
        zygote = wait_for_zygote(server)
        run_id = _trigger(server, tok, seconds=2, n=1)
        pid = run_pid(root, run_id)
        assert _ppid(pid) == zygote
        assert os.getsid(pid) == pid and os.getpgid(pid) == pid  # a session of its own
        run = server.wait(tok, run_id)
        assert run["status"] == "succeeded", run
        status, logs = server.call("GET", f"/runs/{run_id}/steps/nap/logs", tok)
        assert status == 200 and "napping 1" in logs
        # A quick run is seen as succeeded well under a fresh interpreter's start-up.
        fast = _trigger(server, tok, seconds=0, n=2)
        assert server.wait(tok, fast)["status"] == "succeeded"
        assert "fresh interpreter" not in server.output()
    finally:
        server.kill()


def test_cancel_a_forked_run(root):
    tok = token(root, "ci", "runner")
    server = Served(root, "--max-runs", "1")
    try:
        wait_for_zygote(server)
        run_id = _trigger(server, tok, seconds=30, n=1)
        begun(server, tok, run_id)
        status, answer = server.call("POST", f"/runs/{run_id}/cancel", tok)
        assert (status, answer["status"]) == (202, "cancelling")
        assert server.wait(tok, run_id, timeout=20)["status"] == "cancelled"
    finally:
        server.kill()


def test_a_killed_zygote_falls_back_then_comes_back(root):
    tok = token(root, "ci", "runner")
    server = Served(root, "--max-runs", "1")
    try:
        first = wait_for_zygote(server)
        os.kill(first, signal.SIGKILL)
        time.sleep(0.2)
        run_id = _trigger(server, tok, seconds=0, n=1)
        assert server.wait(tok, run_id)["status"] == "succeeded"
        deadline = time.monotonic() + 60
        while not [z for z in zygotes(server) if z != first]:
            assert time.monotonic() < deadline, server.output()
            time.sleep(0.1)
        assert f"zygote (pid {first}) exited" in server.output()
        again = _trigger(server, tok, seconds=1, n=2)
        pid = run_pid(root, again)
        assert server.wait(tok, again)["status"] == "succeeded"
        assert pid > 0
    finally:
        server.kill()


def test_a_restarted_server_adopts_a_forked_run(root):
    tok = token(root, "ci", "runner")
    server = Served(root, "--max-runs", "1")
    again = None
    try:
        zygote = wait_for_zygote(server)
        run_id = _trigger(server, tok, seconds=4, n=7)
        pid = run_pid(root, run_id)
        assert _ppid(pid) == zygote
        begun(server, tok, run_id)
        server.kill(signal.SIGKILL)
        time.sleep(0.3)
        os.kill(pid, 0)  # the run outlives its server (and the zygote)
        again = Served(root, "--max-runs", "1")
        later = _trigger(again, tok, seconds=0, n=8)
        run = again.wait(tok, run_id, timeout=60)
        assert run["status"] == "succeeded", (run, again.output())
        assert again.wait(tok, later)["status"] == "succeeded"
        # Adopted, not started again: its one step ran once, in the first process.
        _, logs = again.call("GET", f"/runs/{run_id}/steps/nap/logs", tok)
        assert logs.count("napping 7") == 1
    finally:
        server.kill()
        if again is not None:
            again.kill()
