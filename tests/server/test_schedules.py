"""Schedules against a real ``ductwork serve`` on loopback, with second-level cron and
bounded waits: a schedule fires and records its name on the run, stops when disabled,
skips while its previous run goes and says why, does not fire a disabled pipeline;
REST and the command line manage them with the API's roles."""

from __future__ import annotations

import time

import pytest
from harness import Served, ductwork, token, write_flow

SLOW = '''
import time
import ductwork as dw

@dw.step(cache=False)
def nap(seconds: float) -> float:
    time.sleep(seconds)
    return seconds

@dw.pipeline
def slow(seconds: float = 3.0):
    return nap(seconds)
'''


def until(check, timeout: float = 30.0, every: float = 0.2):
    """Poll ``check()`` until it answers something true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s; last: {found!r}")
        time.sleep(every)


def scheduled_runs(server: Served, tok: str, name: str) -> list[dict]:
    status, runs = server.call("GET", "/runs?limit=1000", tok)
    assert status == 200, runs
    return [r for r in runs if r["trigger"].get("schedule") == name]


@pytest.fixture
def root(tmp_path):
    write_flow(tmp_path)
    ductwork(tmp_path, "publish", f"{tmp_path / 'flow.py'}:flow", "--name", "flow")
    (tmp_path / "slow.py").write_text(SLOW)
    ductwork(tmp_path, "publish", f"{tmp_path / 'slow.py'}:slow", "--name", "slow")
    return tmp_path


def test_a_schedule_fires_is_disabled_and_stops_and_a_disabled_pipeline_says_why(root):
    admin, viewer = token(root, "ops", "admin"), token(root, "dash", "viewer")
    server = Served(root)
    try:
        body = {"name": "often", "pipeline": "flow", "cron": "* * * * * *",
                "parameters": {"x": 5}}
        status, refused = server.call("POST", "/schedules", viewer, body)
        assert status == 403, refused
        status, bad = server.call("POST", "/schedules", admin, {**body, "parameters": {"x": "a"}})
        assert status == 422 and "'x'" in bad["error"]["message"], bad
        status, made = server.call("POST", "/schedules", admin, body)
        assert status == 201, made
        assert made["next_fire"] is not None and made["blocked"] is None

        first = until(lambda: scheduled_runs(server, viewer, "often"))[-1]
        status, run = server.call("GET", f"/runs/{first['run_id']}", viewer)
        assert run["trigger"] == {"via": "schedule", "token": None, "schedule": "often"}
        # Before the run records itself, the queue's row answers (the parameters as given);
        # after, the run record (defaults filled in): either way x is the schedule's 5.
        assert run["parameters"]["x"] == 5 and set(run["parameters"]) <= {"x", "tag"}
        assert server.wait(viewer, first["run_id"])["status"] == "succeeded"

        status, off = server.call("POST", "/schedules/often/disable", admin)
        assert status == 200 and off["enabled"] is False and "disabled" in off["blocked"]
        time.sleep(0.6)  # a turn under way when it was disabled may still fire once
        count = len(scheduled_runs(server, viewer, "often"))
        time.sleep(2.5)
        assert len(scheduled_runs(server, viewer, "often")) == count

        # A disabled pipeline's schedule does not fire, and its firings say why.
        ductwork(root, "pipelines", "disable", "flow")
        server.call("POST", "/schedules/often/enable", admin)
        until(lambda: [f for f in server.call("GET", "/schedules/often", viewer)[1]["firings"]
                       if "Pipeline 'flow' is disabled" in (f["reason"] or "")])
        listed = ductwork(root, "schedule", "list").stdout
        assert "often" in listed and "not firing: Pipeline 'flow' is disabled" in listed
        assert len(scheduled_runs(server, viewer, "often")) <= count + 1

        status, _ = server.call("DELETE", "/schedules/often", viewer)
        assert status == 403
        status, _ = server.call("DELETE", "/schedules/often", admin)
        assert status == 204
        assert server.call("GET", "/schedules", viewer)[1] == []
    finally:
        server.kill()


def test_a_schedule_skips_while_its_previous_run_goes_and_records_it(root):
    viewer = token(root, "dash", "viewer")
    ductwork(root, "schedule", "create", "nightly", "--pipeline", "slow",
             "--cron", "* * * * * *", "-p", "seconds=3")
    server = Served(root)
    try:
        def skips():
            shown = server.call("GET", "/schedules/nightly", viewer)[1]
            return [f for f in shown["firings"] if f["outcome"] == "skipped"]

        skipped = until(skips)
        assert "still running" in skipped[0]["reason"] or "still queued" in skipped[0]["reason"]
        runs = scheduled_runs(server, viewer, "nightly")
        assert len(runs) == 1, runs  # the 3-second run holds the others back
        ductwork(root, "schedule", "disable", "nightly")
        shown = ductwork(root, "schedule", "show", "nightly").stdout
        assert "skipped" in shown and "still" in shown
    finally:
        server.kill()


def test_overlap_queue_starts_the_firing_when_the_previous_run_ends(root):
    viewer = token(root, "dash", "viewer")
    ductwork(root, "schedule", "create", "q", "--pipeline", "slow", "--cron",
             "* * * * * */2", "-p", "seconds=2.5", "--overlap", "queue")
    server = Served(root, "--max-runs", "4")
    try:
        runs = until(lambda: len(scheduled_runs(server, viewer, "q")) >= 2 and
                     scheduled_runs(server, viewer, "q"), timeout=40)
        ductwork(root, "schedule", "disable", "q")
        firsts = sorted(runs, key=lambda r: r["submitted"])[:2]
        done = [server.wait(viewer, r["run_id"]) for r in firsts]
        # Queued behind: the second began only after the first had finished.
        assert done[1]["started"] >= done[0]["finished"], done
        firings = server.call("GET", "/schedules/q", viewer)[1]["firings"]
        assert any("started after run" in (f["reason"] or "") for f in firings), firings
    finally:
        server.kill()
