"""Schedules that need more than one server or a change of data, against real servers on
loopback: a data change fires one run (a second write within the interval fires no
other), two servers on one store fire each time once, a restart keeps schedules, and
``--catch-up`` runs the last time missed while no server ran (without it, none)."""

from __future__ import annotations

import json
import time

import pytest
from harness import Served, ductwork, token, write_flow
from test_schedules import scheduled_runs, until


@pytest.fixture
def root(tmp_path):
    write_flow(tmp_path)
    ductwork(tmp_path, "publish", f"{tmp_path / 'flow.py'}:flow", "--name", "flow")
    return tmp_path


def test_a_data_change_fires_one_run_however_many_writes_in_an_interval(root):
    viewer = token(root, "dash", "viewer")
    incoming = root / "store" / "datastore" / "incoming"
    incoming.mkdir(parents=True)
    (incoming / "a.csv").write_text("x\n1\n")
    ductwork(root, "schedule", "create", "fresh", "--pipeline", "flow",
             "--on-change", ":incoming/*.csv", "--interval", "1")
    server = Served(root)
    try:
        time.sleep(3)  # unchanged data fires nothing
        assert scheduled_runs(server, viewer, "fresh") == []
        (incoming / "a.csv").write_text("x\n2\n")
        time.sleep(0.3)
        (incoming / "b.csv").write_text("x\n3\n")  # the same burst
        until(lambda: scheduled_runs(server, viewer, "fresh"), timeout=15)
        time.sleep(3.5)  # three more polls: the burst has settled, nothing else fires
        assert len(scheduled_runs(server, viewer, "fresh")) == 1
        (incoming / "b.csv").write_text("x\n4\n")
        until(lambda: len(scheduled_runs(server, viewer, "fresh")) == 2, timeout=15)
        shown = server.call("GET", "/schedules/fresh", viewer)[1]
        assert [f["outcome"] for f in shown["firings"]] == ["fired", "fired"]
        assert shown["firings"][0]["fingerprint"] != shown["firings"][1]["fingerprint"]
    finally:
        server.kill()


def test_two_servers_on_one_store_fire_each_time_once_and_a_restart_keeps_schedules(root):
    viewer = token(root, "dash", "viewer")
    ductwork(root, "schedule", "create", "tick", "--pipeline", "flow", "--cron",
             "* * * * * *", "--overlap", "queue")
    one, two = Served(root), Served(root)
    try:
        until(lambda: len(scheduled_runs(one, viewer, "tick")) >= 4, timeout=40)
    finally:
        one.kill()
        two.kill()
    shown = ductwork(root, "schedule", "show", "tick", "--json").stdout
    firings = json.loads(shown)["firings"]
    keys = [f["key"] for f in firings]
    assert len(keys) == len(set(keys))
    again = Served(root)
    try:
        # Both servers looked at every time; one run per time fired, none twice (the
        # servers share this local store's queue, so a second run would be listed).
        runs = scheduled_runs(again, viewer, "tick")
        fired = {f["run_id"] for f in firings if f["outcome"] == "fired"}
        assert fired <= {r["run_id"] for r in runs}
        # (a firing left waiting when they stopped may have started since)
        assert {r["run_id"] for r in runs} <= {f["run_id"] for f in firings if f["run_id"]}
        # Every run the schedule started belongs to exactly one firing.
        later = until(lambda: len(scheduled_runs(again, viewer, "tick")) > len(runs) and
                      scheduled_runs(again, viewer, "tick"), timeout=20)
        assert len({r["run_id"] for r in later}) == len(later)
    finally:
        again.kill()


def test_catch_up_runs_the_last_time_missed_and_only_with_the_option(root):
    viewer = token(root, "dash", "viewer")
    for name, extra in (("eager", ["--catch-up"]), ("lazy", [])):
        ductwork(root, "schedule", "create", name, "--pipeline", "flow", "--cron",
                 "0 0 1 1 *", *extra)  # once a year: never due during the test
    # Made "a year ago": their last fire time (1 January) passed while no server ran.
    for name in ("eager", "lazy"):
        path = root / "store" / "schedules" / name / "schedule.json"
        made = json.loads(path.read_text())
        path.write_text(json.dumps({**made, "created": made["created"] - 400 * 86400}))
    server = Served(root)
    try:
        until(lambda: scheduled_runs(server, viewer, "eager"), timeout=15)
        time.sleep(1)
        assert scheduled_runs(server, viewer, "lazy") == []
        eager = server.call("GET", "/schedules/eager", viewer)[1]["firings"]
        assert len(eager) == 1 and eager[0]["catch_up"] is True
    finally:
        server.kill()
