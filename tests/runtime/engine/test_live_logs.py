"""A running step's output written through to a log file, for a watcher (the studio's step page).

Real runs: the inline backend in this process, the process backend in real worker
processes. The step prints, then waits for the test to open a gate, so the test reads
the log file while the step is still running.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ductwork as dw
from ductwork.runtime.engine.livelog import log_file
from ductwork.runtime.runner import run_pipeline


@dw.step(cache=False)
def chatty(gate: str) -> str:
    import sys
    import time as clock

    print("loading the data")
    print("warming up", file=sys.stderr)
    os.system("echo from a child process")  # fds: a child's output is kept too
    deadline = clock.monotonic() + 30
    while not os.path.exists(gate) and clock.monotonic() < deadline:
        clock.sleep(0.02)
    print("done")
    return "ok"


@dw.pipeline
def talk(gate: str):
    return chatty(gate)


def _wait_for(path: Path, text: str, timeout: float = 15) -> str:
    deadline = time.monotonic() + timeout
    found = ""
    while time.monotonic() < deadline:
        found = path.read_text() if path.exists() else ""
        if text in found:
            return found
        time.sleep(0.02)
    raise AssertionError(f"{text!r} never reached {path}: {found!r}")


@pytest.mark.parametrize("backend", ["inline", "process"])
def test_a_running_steps_output_reaches_its_log_file_while_it_runs(tmp_path, backend):
    gate, logs = tmp_path / "gate", tmp_path / "live"
    done: dict[str, object] = {}

    def go() -> None:
        done["run"] = run_pipeline(talk, {"gate": str(gate)}, backend=backend,
                                   store=str(tmp_path / "store"), progress=False,
                                   logs=str(logs))

    runner = threading.Thread(target=go)
    runner.start()
    try:
        path = Path(log_file(str(logs), "chatty"))
        seen = _wait_for(path, "warming up")
        assert "loading the data" in seen and "done" not in seen  # the step still runs
        if backend == "process":
            _wait_for(path, "from a child process")
    finally:
        gate.touch()
        runner.join(timeout=60)
    run = done["run"]
    assert "loading the data" in run.steps["chatty"].logs  # the record keeps them as ever
    assert "done" in run.steps["chatty"].logs
    assert "done" in path.read_text()


def test_without_a_log_folder_nothing_is_written(tmp_path):
    gate = tmp_path / "gate"
    gate.touch()
    run = run_pipeline(talk, {"gate": str(gate)}, backend="inline",
                       store=str(tmp_path / "store"), progress=False)
    assert "loading the data" in run.steps["chatty"].logs
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gate", "store"]


@settings(max_examples=300)
@given(st.text())
def test_log_file_names_are_quoted_as_urllib_quotes_them(step_id: str) -> None:
    """livelog spells out quote() to spare a run urllib.parse; names must not change."""
    from urllib.parse import quote as urllib_quote

    from ductwork.runtime.engine.livelog import quote

    try:
        expected = urllib_quote(step_id, safe="")
    except UnicodeEncodeError:  # a lone surrogate: both refuse it
        with pytest.raises(UnicodeEncodeError):
            quote(step_id)
        return
    assert quote(step_id) == expected
    assert log_file("logs", step_id) == f"logs/{expected}.log"
