"""The studio over HTTP, against a real ``ductwork serve``: sign-in, roles, CSRF, pages,
trigger and plan, live events, compare, metrics."""

from __future__ import annotations

import html
import json
import re
import subprocess
import sys
import time

import pytest
from harness import env_for
from studio_helpers import csrf_of

pytestmark = pytest.mark.slow


def test_one_time_link_signs_in_once_with_a_strict_http_only_cookie(studio):
    link = studio.link()
    first = studio.client().get(link.replace(studio.url, ""))
    assert first.status_code == 303
    cookie = first.headers["set-cookie"]
    assert "dw_session=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    again = studio.client().get(link.replace(studio.url, ""))
    assert again.status_code == 403 and "already used" in again.text


def test_pages_need_a_session(studio):
    answer = studio.client().get("/runs?status=failed")
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/signin?next=%2Fruns%3Fstatus%3Dfailed")


def test_token_sign_in_checks_the_token_and_the_forms_csrf(studio):
    client = studio.client()
    form = client.get("/signin")
    bad = client.post("/signin", data={"token": "dw_nope", "csrf": csrf_of(form.text)})
    assert bad.status_code == 401 and "unknown or revoked" in bad.text
    forged = studio.client().post("/signin", data={"token": studio.tokens["admin"]})
    assert forged.status_code == 403


def test_viewer_sees_no_trigger_or_admin_buttons_and_cannot_trigger(studio):
    viewer = studio.client("viewer")
    listed = viewer.get("/pipelines")
    assert listed.status_code == 200 and "flow" in listed.text and "sleepy" in listed.text
    assert "Trigger a run" not in listed.text and "Set default" not in listed.text
    assert viewer.get("/pipelines/flow/trigger").status_code == 403
    refused = viewer.post("/pipelines/flow/trigger",
                          data={"csrf": csrf_of(listed.text), "x": "5", "action": "run"})
    assert refused.status_code == 403
    runner = studio.client("runner").get("/pipelines")
    assert "Trigger a run" in runner.text and "Set default" not in runner.text


def test_forged_post_without_csrf_is_refused_and_queues_nothing(studio):
    runner = studio.client("runner")
    before = runner.get("/runs?pipeline=flow").text.count('data-run="')
    forged = runner.post("/pipelines/flow/trigger", data={"x": "7", "action": "run"})
    assert forged.status_code == 403 and "CSRF" in forged.text
    wrong = runner.post("/pipelines/flow/trigger",
                        data={"x": "7", "action": "run", "csrf": "guessed"})
    assert wrong.status_code == 403
    assert runner.get("/runs?pipeline=flow").text.count('data-run="') == before


def test_trigger_form_from_the_schema_checks_types_plans_and_queues(studio):
    runner = studio.client("runner")
    form = runner.get("/pipelines/flow/trigger")
    assert form.status_code == 200
    assert re.search(r'type="number" step="1" id="param-x" name="x" value="2"', form.text)
    assert 'id="param-tag" name="tag" value="t"' in form.text
    csrf = csrf_of(form.text)
    bad = runner.post("/pipelines/flow/trigger", data={"csrf": csrf, "x": "two", "tag": "t"})
    assert bad.status_code == 422 and "x" in bad.text and "whole number" in bad.text
    plan = runner.post("/pipelines/flow/trigger",
                       data={"csrf": csrf, "x": "3", "tag": "p", "action": "plan"})
    assert plan.status_code == 200, plan.text
    assert "1 step will run, 0 are cached, 1 will be known once upstream steps run" \
        in plan.text, plan.text
    queued = runner.post("/pipelines/flow/trigger",
                         data={"csrf": csrf, "x": "3", "tag": "p", "action": "run"})
    assert queued.status_code == 303
    run_id = queued.headers["location"].rsplit("/", 1)[1]
    assert studio.wait(run_id)["status"] == "succeeded"
    page = runner.get(f"/runs/{run_id}")
    assert page.status_code == 200 and "<svg" in page.text
    assert 'id="step-scale" data-state="succeeded"' in page.text
    listing = runner.get("/runs")
    assert f'data-run="{run_id}"' in listing.text and "API (runner)" in listing.text
    step = runner.get(f"/runs/{run_id}/steps/scale")
    assert "scaling 3" in step.text and "scaled" in step.text
    described = runner.get(f"/runs/{run_id}/steps/describe")
    assert "&#34;tag&#34;: &#34;p&#34;" in described.text or "&quot;tag&quot;" in described.text


def test_admin_disables_and_enables_with_buttons(studio):
    admin = studio.client("admin")
    page = admin.get("/pipelines")
    assert "Set default" in page.text
    done = admin.post("/pipelines/sleepy/disable", data={"csrf": csrf_of(page.text)})
    assert done.status_code == 303
    assert 'id="switch-sleepy">Enable' in admin.get("/pipelines").text
    status, _ = studio.served.call("POST", "/pipelines/sleepy/runs", studio.tokens["runner"],
                                   {"parameters": {}})
    assert status == 409
    runner = studio.client("runner")
    assert runner.post("/pipelines/sleepy/enable",
                       data={"csrf": csrf_of(runner.get("/pipelines").text)}).status_code == 403
    admin.post("/pipelines/sleepy/enable", data={"csrf": csrf_of(page.text)})
    assert 'id="switch-sleepy">Disable' in admin.get("/pipelines").text


def test_a_run_page_streams_its_steps_changing_state_until_the_end(studio):
    run_id = studio.trigger_api("sleepy", {"seconds": 1.5})
    viewer = studio.client("viewer")
    states = []
    with viewer.stream("GET", f"/runs/{run_id}/events") as events:
        assert events.headers["content-type"].startswith("text/event-stream")
        name = None
        for line in events.iter_lines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: ") and name == "update":
                data = json.loads(line[6:])
                nap = re.search(r'id="step-nap" data-state="(\w+)"', data["html"])
                states.append((data["status"], nap.group(1) if nap else None))
            elif name == "end":
                break
    assert ("running", "running") in states, states
    assert states[-1] == ("succeeded", "succeeded"), states


def _events(response) -> list[tuple[str, dict]]:
    """The (event, data) pairs of a server-sent-events stream, until ``end``."""
    found, name = [], None
    for line in response.iter_lines():
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            found.append((name, json.loads(line[6:])))
            if name == "end":
                break
    return found


def test_a_running_steps_logs_show_then_stream_new_lines_until_it_ends(studio):
    run_id = studio.trigger_api("sleepy", {"seconds": 6})
    viewer = studio.client("viewer")
    deadline = time.monotonic() + 30
    while True:  # the step page, while nap has printed its first line and sleeps
        page = viewer.get(f"/runs/{run_id}/steps/nap")
        if page.status_code == 200 and "napping" in page.text:
            break
        assert time.monotonic() < deadline, page.text
        time.sleep(0.05)
    assert "half way" not in page.text and 'data-state="running"' in page.text
    follow = html.unescape(re.search(r'data-follow="([^"]+)"', page.text).group(1))
    with viewer.stream("GET", follow) as answer:
        assert answer.headers["content-type"].startswith("text/event-stream")
        events = _events(answer)
    appended = "".join(data["text"] for name, data in events if name == "append")
    assert "half way" in appended and "napping" not in appended  # only what is new
    name, end = events[-1]
    assert name == "end" and end["state"] == "succeeded" and "half way" in end["logs"]


SLOW = """
import time

import ductwork as dw


@dw.step(cache=False)
def crawl(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


@dw.step(cache=False)
def tidy(s: float) -> str:
    return "tidied"


@dw.pipeline
def slow(seconds: float = 3.0):
    return tidy(crawl(seconds))
"""


def _cli_run_seen_running(studio, viewer) -> tuple[subprocess.Popen, str, str]:
    """Start ``ductwork run slow.py:slow``; answer it, its run id and its run page once the
    studio shows its crawl step running."""
    (studio.root / "slow.py").write_text(SLOW)
    before = set(re.findall(r'data-run="([^"]+)"', viewer.get("/runs?pipeline=slow").text))
    cli = subprocess.Popen([sys.executable, "-m", "ductwork", "run", "slow.py:slow"],
                           cwd=studio.root, env=env_for(studio.root),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not (new := set(re.findall(r'data-run="([^"]+)"',
                                     viewer.get("/runs?pipeline=slow").text)) - before):
        assert time.monotonic() < deadline and cli.poll() is None, cli.communicate()
        time.sleep(0.05)
    run_id = new.pop()
    while 'id="step-crawl" data-state="running"' not in (
            page := viewer.get(f"/runs/{run_id}").text):
        assert time.monotonic() < deadline and cli.poll() is None, page
        time.sleep(0.05)
    return cli, run_id, page


def test_a_run_from_the_command_line_shows_its_steps_live_on_a_shared_store(studio):
    viewer = studio.client("viewer")
    cli, run_id, page = _cli_run_seen_running(studio, viewer)
    try:
        assert 'id="step-tidy" data-state="pending"' in page
        live = studio.root / "store" / "live" / f"{run_id}.json"
        assert live.exists()
    finally:
        _, err = cli.communicate(timeout=60)
    assert cli.returncode == 0, err
    page = viewer.get(f"/runs/{run_id}").text
    assert 'id="step-crawl" data-state="succeeded"' in page
    assert 'id="step-tidy" data-state="succeeded"' in page
    assert not live.exists()  # removed once the run is recorded


def test_a_crashed_command_line_runs_stale_live_file_is_ignored(studio):
    viewer = studio.client("viewer")
    cli, run_id, _ = _cli_run_seen_running(studio, viewer)
    cli.kill()
    cli.communicate(timeout=30)
    assert (studio.root / "store" / "live" / f"{run_id}.json").exists()  # left behind
    page = viewer.get(f"/runs/{run_id}").text
    assert 'class="badge s-died"' in page and 'data-state="running"' not in page


def test_compare_two_runs_side_by_side(studio):
    a = studio.trigger_api("flow", {"x": 4})
    b = studio.trigger_api("flow", {"x": 5})
    studio.wait(a)
    studio.wait(b)
    page = studio.client("viewer").get(f"/compare?a={a}&b={b}")
    assert page.status_code == 200, page.text
    assert "The runs differ." in page.text
    assert re.search(r'<tr class="differs"><th scope="row">x</th><td><code>4</code></td>'
                     r'<td><code>5</code></td>', page.text)
    assert studio.client("viewer").get(f"/compare?a={a}&b=nope").status_code == 404


def test_metrics_over_runs_as_a_chart(studio):
    for x in (6, 8):
        studio.wait(studio.trigger_api("flow", {"x": x}))
    page = studio.client("viewer").get("/pipelines/flow/metrics")
    assert page.status_code == 200
    assert "scale.scaled" in page.text and "<polyline" in page.text


def test_pages_send_a_content_security_policy_and_static_files_are_served(studio):
    client = studio.client("viewer")
    page = client.get("/runs")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert client.get("/static/studio.js").status_code == 200
    assert client.get("/static/studio.css").status_code == 200


def test_a_big_runs_page_links_its_graph_drawn_apart(studio):
    from ductwork.runtime.records.run import Run, StepRun
    from ductwork.runtime.records.runstore import RunStore
    from ductwork.runtime.status import Status

    n = 450  # over the inline limit: inline, 2,000 nodes made a 1.9 MB page
    graph = {"name": "wide", "nodes": [{"id": f"w{i}", "kind": "step"} for i in range(n)],
             "edges": [{"source": f"w{i}", "target": f"w{i + 1}", "argument": "x"}
                       for i in range(n - 1)]}
    run = Run("wide-run", "wide", {}, "inline", status=Status.SUCCEEDED, started=1e9,
              finished=1e9 + 1, graph=graph)
    for i in range(n):
        run.steps[f"w{i}"] = StepRun(f"w{i}", "w", Status.SUCCEEDED, started=1e9,
                                     finished=1e9 + 0.5)
    history = RunStore(studio.root / "store" / "runs.sqlite")
    history.finish_run(run)
    history.close()
    viewer = studio.client("viewer")
    page = viewer.get("/runs/wide-run").text
    assert 'href="/runs/wide-run/graph.svg"' in page and "<svg" not in page
    assert len(page) < 200_000
    drawn = viewer.get("/runs/wide-run/graph.svg")
    assert drawn.headers["content-type"].startswith("image/svg+xml")
    assert drawn.text.startswith("<svg") and 'data-target="w449"' in drawn.text
