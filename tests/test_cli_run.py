"""``ductwork run`` in scripts and CI: progress lines, stdout for the result only, a
closed pipe, ``--json`` and ``--regenerate`` -- through the real command line."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import textwrap
import time

import pytest

FLOW = '''
import time
import ductwork as dw
from ductwork import pipeline, step

@step
def load(n: int) -> list:
    print("loading", n)
    return list(range(n))

@step
def score(xs: list) -> float:
    dw.context().log_metric("accuracy", 0.9)
    print("scoring")
    time.sleep(float(__import__("os").environ.get("SCORE_SLEEP", "0")))
    return sum(xs) / max(len(xs), 1)

@pipeline
def p(n: int = 3):
    xs = load(n)
    return {"mean": score(xs), "xs": xs}
'''


@pytest.fixture
def flow(tmp_path):
    path = tmp_path / "flow.py"
    path.write_text(textwrap.dedent(FLOW))
    return f"{path}:p"


def _cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "ductwork", *args], capture_output=True,
                          text=True, timeout=120, env={**os.environ, **(env or {})})


def test_a_plain_line_per_step_as_it_finishes_when_not_a_terminal(flow, tmp_path):
    store = str(tmp_path / "s")
    proc = subprocess.Popen([sys.executable, "-m", "ductwork", "run", flow, "--store", store],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "SCORE_SLEEP": "3"})
    try:
        for line in proc.stderr:  # load's line comes while score still sleeps
            if line.startswith("step load "):
                assert proc.poll() is None, "the line came only at the end"
                assert "succeeded" in line and line.rstrip().endswith("s"), line
                break
        else:
            pytest.fail("no line for step load")
        rest = proc.stderr.read()
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == 0, rest
    assert "step score succeeded" in rest
    again = _cli("run", flow, "--store", store)
    assert again.returncode == 0, again.stderr
    assert "step load cached" in again.stderr and "step score cached" in again.stderr
    quiet = _cli("run", flow, "--store", store, "--no-progress")
    assert quiet.returncode == 0 and "step load" not in quiet.stderr
    forced = _cli("run", flow, "--store", store, "--progress", env={"DUCTWORK_PROGRESS": "0"})
    assert "step load cached" in forced.stderr
    off = _cli("run", flow, "--store", store, env={"DUCTWORK_PROGRESS": "0"})
    assert "step load" not in off.stderr


def test_a_live_display_on_a_terminal(flow, tmp_path):
    import pty

    leader, follower = pty.openpty()
    try:
        out = subprocess.run([sys.executable, "-m", "ductwork", "run", flow, "--store",
                              str(tmp_path / "s")], stdout=subprocess.PIPE, stderr=follower,
                             text=True, timeout=120)
        os.close(follower)
        seen = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
    finally:
        os.close(leader)
    assert out.returncode == 0
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", seen.decode("utf-8", "replace"))
    assert "pipeline p run" in text and "━" in text  # rich's bar
    assert "step load succeeded" not in text


@pytest.mark.parametrize("backend", ["inline", "process"])
def test_step_prints_go_to_stderr_and_a_closed_pipe_ends_quietly(flow, tmp_path, backend):
    # 30000 numbers make the result larger than a pipe's buffer, so `head -1` closes it
    # while the result is still being written.
    store = str(tmp_path / "s")
    command = (f"set -o pipefail; {shlex.quote(sys.executable)} -m ductwork run "
               f"{shlex.quote(flow)} -p n=30000 --backend {backend} --store "
               f"{shlex.quote(store)} | head -1")
    out = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("run ") and " succeeded in " in out.stdout, out.stdout
    assert "Traceback" not in out.stderr and "BrokenPipe" not in out.stderr, out.stderr
    whole = _cli("run", flow, "--backend", backend, "--store", store, "--regenerate", "all")
    assert "loading" not in whole.stdout and "scoring" not in whole.stdout
    # inline: as the step prints; process: its captured logs, after the step's line
    assert "loading 3" in whole.stderr and "scoring" in whole.stderr
    run_id = whole.stdout.split()[1]
    logs = _cli("logs", run_id, "load", "--store", store)
    assert "loading 3" in logs.stdout


def test_run_json_is_one_document_on_stdout(flow, tmp_path):
    store = str(tmp_path / "s")
    out = _cli("run", flow, "--store", store, "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["status"] == "succeeded" and doc["outputs"] == {"mean": 1.0, "xs": [0, 1, 2]}
    assert doc["pipeline"] == "p" and doc["module"] == "flow"
    assert doc["source_file"].endswith("flow.py")
    steps = {s["id"]: s for s in doc["steps"]}
    assert steps["score"]["metrics"] == {"accuracy": 0.9} and steps["score"]["cached"] is False
    shown = json.loads(_cli("show", doc["run_id"], "--store", store, "--json").stdout)
    assert shown["steps"] == doc["steps"] and shown["run_id"] == doc["run_id"]


def test_regenerate_on_run(flow, tmp_path):
    store = str(tmp_path / "s")
    assert _cli("run", flow, "--store", store).returncode == 0

    def cached(*extra):
        out = _cli("run", flow, "--store", store, "--json", *extra)
        assert out.returncode == 0, out.stderr
        return {s["id"]: s["cached"] for s in json.loads(out.stdout)["steps"]}

    assert cached() == {"load": True, "score": True}
    assert cached("--regenerate", "score") == {"load": True, "score": False}
    assert cached("--regenerate", "load") == {"load": False, "score": False}
    assert cached("--regenerate", "all") == {"load": False, "score": False}
    plan = json.loads(_cli("plan", flow, "--store", store, "--json",
                           "--regenerate", "score").stdout)
    assert plan["load"]["status"] == "cached" and plan["score"]["status"] == "run"
    bad = _cli("run", flow, "--store", store, "--regenerate", "nope")
    assert bad.returncode != 0 and "'nope'" in bad.stderr and "Traceback" not in bad.stderr


def test_progress_lines_mark_cached_steps_with_the_run_that_made_them():
    import io

    from ductwork.runtime.records.run import Run, StepRun
    from ductwork.runtime.status import Status
    from ductwork.runtime.ui.terminal import StepLines

    out = io.StringIO()
    lines = StepLines(out)
    run = Run("r2", "p", {}, "inline", started=time.time())
    run.steps = {"a": StepRun("a", "a"), "b": StepRun("b", "b"), "c": StepRun("c", "c")}
    lines.started(run)
    run.steps["a"].status, run.steps["a"].cached = Status.SUCCEEDED, True
    run.steps["a"].cached_from = "20261206-101500-abcdef"
    lines.changed(run.steps["a"])
    run.steps["b"].status, run.steps["b"].cached = Status.SUCCEEDED, True
    lines.changed(run.steps["b"])
    run.steps["c"].status, run.steps["c"].started, run.steps["c"].finished = \
        Status.FAILED, 1.0, 1.25
    run.steps["c"].error = "Traceback (most recent call last):\n  ...\nValueError: bad\n"
    lines.changed(run.steps["c"])
    lines.changed(run.steps["c"])  # reported twice: written once
    assert out.getvalue().splitlines() == [
        "step a cached (from run 20261206-101500-abcdef)",
        "step b cached",
        "step c failed in 0.250s: ValueError: bad",
    ]
