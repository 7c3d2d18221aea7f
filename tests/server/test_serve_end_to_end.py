"""End to end through the command line: publish, token create, serve in a subprocess, trigger
over HTTP, poll, read logs and outputs; versions and the default; the published snapshot,
never the working copy; disable and enable."""

from __future__ import annotations

import pytest
from harness import Served, ductwork, token, write_flow

pytestmark = pytest.mark.slow


@pytest.fixture
def root(tmp_path):
    return tmp_path


def test_publish_serve_trigger_poll_logs_outputs_and_a_cached_rerun(root):
    flow = write_flow(root)
    assert "version 1" in ductwork(root, "publish", f"{flow}:flow", "--name", "flow").stdout
    runner = token(root, "ci", "runner")
    server = Served(root, "--max-runs", "2")
    try:
        status, answer = server.call("POST", "/pipelines/flow/runs", runner,
                                     {"parameters": {"x": 5, "tag": "a"}})
        assert status == 202, answer
        assert answer["status"] == "queued" and answer["version"] == 1
        run_id = answer["run_id"]
        stamp, _, secret = run_id.rpartition("-")
        assert len(secret) == 32 and int(secret, 16) >= 0 and len(stamp) == 15

        run = server.wait(runner, run_id)
        assert run["status"] == "succeeded", run
        assert (run["pipeline"], run["version"]) == ("flow", 1)
        assert run["parameters"] == {"x": 5, "tag": "a"}
        assert run["trigger"] == {"via": "api", "token": "ci", "schedule": None}
        assert run["started"] <= run["finished"] and run["duration"] >= 0
        steps = {s["id"]: s for s in run["steps"]}
        assert set(steps) == {"double", "label"}
        assert not steps["double"]["cached"] and steps["double"]["status"] == "succeeded"
        output = steps["label"]["outputs"]["output"]
        assert len(output["digest"]) == 64 and output["size"] > 0 and output["serializer"]

        status, logs = server.call("GET", f"/runs/{run_id}/steps/double/logs", runner)
        assert status == 200 and "doubling 5" in logs

        # The run is in the store's history, as the command line shows it.
        shown = ductwork(root, "show", run_id).stdout
        assert run_id in shown and "succeeded" in shown

        again = server.call("POST", "/pipelines/flow/runs", runner,
                            {"parameters": {"x": 5, "tag": "a"}})[1]["run_id"]
        rerun = server.wait(runner, again)
        assert rerun["status"] == "succeeded"
        assert all(s["cached"] for s in rerun["steps"]), rerun["steps"]
        assert {s["id"]: s["outputs"] for s in rerun["steps"]} == {
            s["id"]: s["outputs"] for s in run["steps"]}

        status, listed = server.call("GET", "/runs?pipeline=flow&limit=10", runner)
        assert status == 200 and [r["run_id"] for r in listed] == [again, run_id]
        assert server.call("GET", "/runs?status=failed", runner)[1] == []
        assert [r["run_id"] for r in server.call("GET", "/runs?limit=1", runner)[1]] == [again]
    finally:
        server.kill()


def test_versions_pinning_the_snapshot_and_disable(root):
    flow = write_flow(root, "one")
    ductwork(root, "publish", f"{flow}:flow", "--name", "flow")
    admin = token(root, "boss", "admin")
    server = Served(root)
    try:
        # The working copy changes after publishing: a trigger still runs version 1's code.
        write_flow(root, "edited")
        run = server.wait(admin, server.call("POST", "/pipelines/flow/runs", admin,
                                             {"parameters": {"x": 1}})[1]["run_id"])
        assert run["status"] == "succeeded", run
        status, pipe = server.call("GET", "/pipelines/flow", admin)
        assert status == 200 and pipe["versions"] == [1] and pipe["default_version"] == 1
        assert pipe["records"][0]["parameters"]["properties"]["x"]["type"] == "integer"

        write_flow(root, "two")
        assert "version 2" in ductwork(root, "publish", f"{flow}:flow", "--name", "flow").stdout
        status, summary = server.call("PUT", "/pipelines/flow/default", admin, {"version": 2})
        assert status == 200 and summary["default_version"] == 2
        write_flow(root, "three")  # neither version is this

        pinned = server.call("POST", "/pipelines/flow/runs", admin,
                             {"parameters": {"x": 7}, "version": 1})[1]
        default = server.call("POST", "/pipelines/flow/runs", admin,
                              {"parameters": {"x": 7}})[1]
        assert (pinned["version"], default["version"]) == (1, 2)
        results = {}
        for answer in (pinned, default):
            run = server.wait(admin, answer["run_id"])
            assert run["status"] == "succeeded" and run["version"] == answer["version"]
            results[answer["version"]] = answer["run_id"]
        # Each run's label step produced its own version's text.
        from ductwork.runtime.records.history import get_run

        store = str(root / "store")
        assert get_run(results[1], store=store).steps["label"].output == "t-14-one"
        assert get_run(results[2], store=store).steps["label"].output == "t-14-two"

        assert server.call("POST", "/pipelines/flow/disable", admin)[0] == 200
        status, refused = server.call("POST", "/pipelines/flow/runs", admin, {})
        assert status == 409 and refused["error"]["code"] == "conflict"
        assert "disabled" in refused["error"]["message"]
        assert server.call("GET", "/pipelines", admin)[1][0]["enabled"] is False
        assert server.call("POST", "/pipelines/flow/enable", admin)[0] == 200
        status, taken = server.call("POST", "/pipelines/flow/runs", admin, {})
        assert status == 202 and taken["version"] == 2
        assert server.wait(admin, taken["run_id"])["status"] == "succeeded"
    finally:
        server.kill()
