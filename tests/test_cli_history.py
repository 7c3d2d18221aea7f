"""The history commands as a user meets them: ``runs``, ``show``, ``logs`` and ``gc``,
with ``--json`` -- through the real command line."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap

import pytest

from ductwork.cli import main

FLOW = '''
import ductwork as dw
from ductwork import pipeline, step

@step
def load(n: int) -> list:
    print("loading", n)
    return list(range(n))

@step
def blob(n: int) -> bytes:
    return b"x" * 200_000

@step
def score(xs: list, b: bytes) -> float:
    dw.context().log_metric("accuracy", 0.9)
    return sum(xs) / max(len(xs), 1)

@pipeline
def p(n: int = 3):
    xs = load(n)
    return {"mean": score(xs, blob(n))}
'''


@pytest.fixture
def flow(tmp_path):
    path = tmp_path / "flow.py"
    path.write_text(textwrap.dedent(FLOW))
    return f"{path}:p"


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "ductwork", *args], capture_output=True,
                          text=True, timeout=120)


def _run(flow, store, *extra):
    out = _cli("run", flow, "--store", store, "--json", *extra)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_show_has_metrics_small_values_and_marks_cached_steps(flow, tmp_path, capsys):
    store = str(tmp_path / "s")
    first = _run(flow, store)
    second = _run(flow, store)
    assert main(["show", first["run_id"], "--store", store]) == 0
    text = capsys.readouterr().out
    assert "accuracy=0.9" in text
    assert "[0, 1, 2]" in text and "1.0" in text
    blob = next(line for line in text.splitlines() if line.lstrip().startswith("blob"))
    assert "bytes" in blob and "200.0 kB" in blob and "xxxx" not in blob
    assert main(["show", second["run_id"], "--store", store]) == 0
    text = capsys.readouterr().out
    load = next(line for line in text.splitlines() if line.startswith("load"))
    assert "cached" in load and "succeeded" not in load and "0.000s" not in load
    assert f"cached (from run {first['run_id']})" in load
    # The table stays a table with the long state: durations end under DURATION.
    header = next(line for line in text.splitlines() if line.startswith("STEP"))
    end = header.index("DURATION") + len("DURATION")
    assert load[end - 1] == "-" and load[end:end + 2] == "  ", (header, load)


def test_show_never_loads_a_large_output(flow, tmp_path, capsys):
    store = str(tmp_path / "s")
    run = _run(flow, store)
    digest = next(s for s in run["steps"] if s["id"] == "blob")["outputs"]
    digest = next(iter(digest.values()))["digest"]
    for path in (tmp_path / "s" / "objects").rglob(f"*{digest[4:]}*"):
        path.unlink()  # were it loaded, show would fail to read it
    assert main(["show", run["run_id"], "--store", store]) == 0
    assert "200.0 kB" in capsys.readouterr().out


def test_show_and_runs_json_agree_with_the_rest_api(flow, tmp_path, capsys):
    from ductwork.runtime.records.history import get_run
    from ductwork.server.views import run_detail

    store = str(tmp_path / "s")
    run_id = _run(flow, store)["run_id"]
    assert main(["show", run_id, "--store", store, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    rest = run_detail(get_run(run_id, store=store), None)
    for key in ("run_id", "pipeline", "status", "started", "finished", "duration",
                "parameters", "backend"):
        assert shown[key] == rest[key], key
    assert [{k: s[k] for k in r} for s, r in zip(shown["steps"], rest["steps"],
                                                  strict=True)] == rest["steps"]
    assert main(["runs", "--store", store, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [r["run_id"] for r in listed] == [run_id]
    assert listed[0]["module"] == "flow" and listed[0]["source_file"].endswith("flow.py")


def test_runs_tells_two_pipelines_of_one_name_apart(tmp_path, capsys):
    store = str(tmp_path / "s")
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / f"{folder}_flow.py").write_text(textwrap.dedent(FLOW))
        _run(f"{tmp_path / folder / f'{folder}_flow.py'}:p", store)
    assert main(["runs", "--store", store]) == 0
    text = capsys.readouterr().out
    assert "a_flow.py" in text and "b_flow.py" in text


def test_runs_reads_a_history_written_before_runs_recorded_their_file(flow, tmp_path, capsys):
    store = str(tmp_path / "s")
    run_id = _run(flow, store)["run_id"]
    with sqlite3.connect(tmp_path / "s" / "runs.sqlite") as db:
        db.execute("ALTER TABLE runs DROP COLUMN module")
        db.execute("ALTER TABLE runs DROP COLUMN source_file")
    assert main(["runs", "--store", store]) == 0
    assert run_id in capsys.readouterr().out
    assert main(["runs", "--store", store, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["source_file"] is None


def test_logs_of_a_cached_step_says_where_its_logs_are(flow, tmp_path, capsys):
    store = str(tmp_path / "s")
    _run(flow, store)
    second = _run(flow, store)["run_id"]
    assert main(["logs", second, "load", "--store", store]) == 0
    err = capsys.readouterr().err
    assert "load" in err and "cache" in err


def test_the_cached_from_note_names_the_producing_run():
    from ductwork.cli.history import cached_note
    from ductwork.runtime.records.run import StepRun
    from ductwork.runtime.status import Status
    from ductwork.runtime.ui.tally import step_state as state_of

    record = StepRun("load", "load", status=Status.SUCCEEDED, cached=True)
    assert state_of(record) == "cached"
    record.cached_from = "20261206-101500-abcdef"
    assert state_of(record) == "cached (from run 20261206-101500-abcdef)"
    assert "20261206-101500-abcdef" in cached_note(record, "r2")


def test_gc_says_what_the_grace_kept_and_how_to_remove_it_now(flow, tmp_path, capsys):
    store = str(tmp_path / "s")
    _run(flow, store)
    _run(flow, store, "-p", "n=4")
    assert main(["gc", "--store", store, "--keep-last", "1"]) == 0
    text = capsys.readouterr().out
    assert "younger than the 1h grace" in text
    assert "ductwork gc --keep-last 1 --grace 0s" in text
    assert main(["gc", "--store", store, "--keep-last", "1", "--grace", "0s", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["runs_removed"] == 0 and report["kept_by_grace"] == 0
    # The dropped run's outputs were small: inlined in its entries, which go.
    assert report["grace_seconds"] == 0 and report["keys_removed"] > 0
