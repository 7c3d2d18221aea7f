"""The command line, run as a user would: a real subprocess on a real file."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from ductwork.cli import main


@pytest.fixture
def pipeline_file(tmp_path):
    path = tmp_path / "flow.py"
    path.write_text(textwrap.dedent('''
        from ductwork import pipeline, step

        @step
        def double(x: int) -> int:
            return 2 * x

        @step
        def fail_if(x: int, flag: bool) -> int:
            if flag:
                raise RuntimeError("asked to fail")
            return x

        @pipeline
        def flow(x: int = 1, flag: bool = False, ratio: float = 0.5, tags: list = ()):
            return {"y": fail_if(double(x), flag), "ratio": ratio, "tags": tags}
    '''))
    return path


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "ductwork", *args], capture_output=True,
                          text=True, timeout=60)


def test_run_converts_parameters_by_annotation(pipeline_file):
    out = _cli("run", f"{pipeline_file}:flow", "-p", "x=21", "-p", "ratio=0.25",
               "-p", 'tags=["a"]')
    assert out.returncode == 0, out.stderr
    assert '"y": 42' in out.stdout and '"ratio": 0.25' in out.stdout and '"a"' in out.stdout
    assert "succeeded" in out.stdout


def test_failed_run_exits_nonzero_with_short_message(pipeline_file):
    out = _cli("run", f"{pipeline_file}:flow", "-p", "flag=true")
    assert out.returncode == 1
    assert "step fail_if failed: RuntimeError: asked to fail" in out.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-p", "x=abc"], "Parameter 'x' expects int, got 'abc'"),
        (["-p", "nope=1"], "has no parameter 'nope'"),
        (["-p", "x"], "-p takes name=value"),
        (["-p", "flag=maybe"], "Parameter 'flag' expects bool"),
    ],
)
def test_bad_parameters_are_usage_errors(pipeline_file, args, message, capsys):
    assert main(["run", f"{pipeline_file}:flow", *args]) == 2
    assert message in capsys.readouterr().err


def test_bad_targets(pipeline_file, tmp_path, capsys):
    assert main(["run", f"{pipeline_file}:nothere"]) == 2
    assert "no pipeline named 'nothere'; it defines: flow" in capsys.readouterr().err
    assert main(["run", str(pipeline_file)]) == 2
    assert "Expected FILE.py:PIPELINE" in capsys.readouterr().err
    assert main(["run", f"{tmp_path}/missing.py:flow"]) == 2
    assert "No such file" in capsys.readouterr().err


def test_graph_formats(pipeline_file):
    out = _cli("graph", f"{pipeline_file}:flow", "--format", "dot")
    assert out.returncode == 0 and '"double" -> "fail_if"' in out.stdout
    out = _cli("graph", f"{pipeline_file}:flow")
    assert out.returncode == 0 and out.stdout.startswith("flowchart TD")


def test_help_on_every_command():
    for args in (["--help"], ["run", "--help"], ["graph", "--help"]):
        out = _cli(*args)
        assert out.returncode == 0 and "usage: ductwork" in out.stdout


def test_console_script_is_installed():
    import shutil
    from pathlib import Path

    script = Path(sys.executable).parent / "ductwork"
    exe = str(script) if script.exists() else shutil.which("ductwork")
    assert exe, "the 'ductwork' console script is not installed"
    out = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0


def test_failed_run_points_at_the_traceback(pipeline_file, tmp_path):
    store = str(tmp_path / "s")
    out = _cli("run", f"{pipeline_file}:flow", "-p", "flag=true", "--store", store)
    assert out.returncode == 1
    line = next(x for x in out.stderr.splitlines() if "traceback: ductwork logs" in x)
    logs = _cli(*line.split("ductwork ", 1)[1].split())
    assert logs.returncode == 0
    assert "RuntimeError: asked to fail" in logs.stdout and "Traceback" in logs.stdout


def test_history_commands(pipeline_file, tmp_path):
    store = str(tmp_path / "s")
    assert _cli("run", f"{pipeline_file}:flow", "--store", store).returncode == 0
    runs = _cli("runs", "--store", store)
    assert runs.returncode == 0 and "flow" in runs.stdout and "succeeded" in runs.stdout
    run_id = runs.stdout.splitlines()[1].split()[0]
    show = _cli("show", run_id, "--store", store)
    assert show.returncode == 0 and "double" in show.stdout and "parameters" in show.stdout
    why = _cli("why", run_id, "double", "--store", store)
    assert why.returncode == 0 and "no earlier run" in why.stdout
    missing = _cli("why", run_id, "nope", "--store", store)
    assert missing.returncode == 2 and "has no step 'nope'" in missing.stderr
    unknown = _cli("show", "nope", "--store", store)
    assert unknown.returncode == 1 and "No run 'nope'" in unknown.stderr


def test_run_on_the_process_backend(pipeline_file, tmp_path):
    out = _cli("run", f"{pipeline_file}:flow", "-p", "x=4", "--backend", "process",
               "--store", str(tmp_path / "s"))
    assert out.returncode == 0, out.stderr
    assert '"y": 8' in out.stdout


@pytest.mark.slow
def test_run_on_a_local_dask_cluster_and_a_clear_error_for_a_missing_scheduler(
        pipeline_file, tmp_path):
    # The pipeline file has no __main__ guard: `ductwork run` imports it as a module,
    # so the cluster's worker processes do not run it again.
    out = _cli("run", f"{pipeline_file}:flow", "-p", "x=5", "--backend", "dask",
               "--store", str(tmp_path / "s"))
    assert out.returncode == 0, out.stderr
    assert '"y": 10' in out.stdout
    gone = _cli("run", f"{pipeline_file}:flow", "--backend", "dask", "--address",
                "tcp://127.0.0.1:9", "--shared-filesystem", "--store", str(tmp_path / "s"))
    assert gone.returncode != 0
    assert "Cannot reach the Dask scheduler at tcp://127.0.0.1:9" in gone.stderr
    assert "Traceback" not in gone.stderr


def test_a_step_calling_sys_exit_fails_the_run_with_a_nonzero_exit(tmp_path):
    # A CI job runs `ductwork run`: a step's sys.exit(0) must not make it pass.
    path = tmp_path / "exits.py"
    path.write_text(textwrap.dedent('''
        import sys
        from ductwork import pipeline, step

        @step
        def quits(x: int) -> int:
            sys.exit(0)

        @step
        def fine(x: int) -> int:
            return x + 1

        @pipeline
        def p():
            return {"q": quits(1), "f": fine(1)}
    '''))
    for backend in ("inline", "process"):
        out = _cli("run", f"{path}:p", "--backend", backend, "--store", str(tmp_path / backend))
        assert out.returncode == 1, (backend, out.stdout, out.stderr)
        assert "step quits failed" in out.stderr, out.stderr
        assert "called sys.exit(0): a step must return a value or raise" in out.stderr


def test_gc_dry_run_and_grace_say_what_would_go_and_what_is_kept(pipeline_file, tmp_path):
    store = str(tmp_path / "gcstore")
    assert _cli("run", f"{pipeline_file}:flow", "-p", "x=1", "--store", store).returncode == 0
    assert _cli("run", f"{pipeline_file}:flow", "-p", "x=2", "--store", store).returncode == 0
    objects = sorted(p for p in (tmp_path / "gcstore" / "objects").rglob("*") if p.is_file())
    out = _cli("gc", "--store", store, "--keep-last", "1", "--dry-run", "--grace", "0")
    assert out.returncode == 0, out.stderr
    assert "would remove 1 runs" in out.stdout and "dry run: nothing was removed" in out.stdout
    assert "grace period (0s)" in out.stdout and "used by kept runs" in out.stdout
    assert store in out.stderr  # which store it read
    assert sorted(p for p in (tmp_path / "gcstore" / "objects").rglob("*")
                  if p.is_file()) == objects
    out = _cli("gc", "--store", store, "--keep-last", "1", "--grace", "30m")
    assert out.returncode == 0, out.stderr
    assert "removed 1 runs, 0 artifacts" in out.stdout and "grace period (30m)" in out.stdout
    out = _cli("gc", "--store", store, "--keep-last", "1", "--grace", "soon")
    assert out.returncode == 2 and "--grace" in out.stderr and "1h" in out.stderr


def test_runs_says_which_store_it_read_and_refuses_a_missing_one(pipeline_file, tmp_path):
    store = str(tmp_path / "listed")
    assert _cli("run", f"{pipeline_file}:flow", "--store", store).returncode == 0
    out = _cli("runs", "--store", store)
    assert out.returncode == 0 and store in out.stderr and "flow" in out.stdout
    out = _cli("runs", "--store", str(tmp_path / "typo"))
    assert out.returncode == 1 and "No store exists at" in out.stderr
    assert not (tmp_path / "typo").exists()


# -- -p values and run options that were accepted, or refused, wrongly ([8] item 16 d) -------

PARAMS_FILE = '''
import enum
from typing import Literal, Optional
from ductwork import pipeline, step

class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"

class Size(enum.IntEnum):
    SMALL = 1
    LARGE = 2

@step
def echo(x):
    return repr(x)

@pipeline
def typed(n: int = 1, name: str | None = "x", mode: Literal["a", "b"] = "a",
          color: Color = Color.RED, size: Size = Size.SMALL, label: Optional[str] = None):
    return {"n": echo(n), "name": echo(name), "mode": echo(mode), "color": echo(color),
            "size": echo(size), "label": echo(label)}
'''


@pytest.fixture
def typed_file(tmp_path):
    path = tmp_path / "typed.py"
    path.write_text(PARAMS_FILE)
    return path


def test_optional_literal_and_enum_parameters_take_their_values(typed_file, tmp_path):
    out = _cli("run", f"{typed_file}:typed", "--store", str(tmp_path / "s"), "-p", "name=None",
               "-p", "mode=b", "-p", "color=BLUE", "-p", "size=2", "-p", "label=null")
    assert out.returncode == 0, out.stderr
    for shown in ('"name": "None"', '"mode": "\'b\'"', '"color": "<Color.BLUE: \'blue\'>"',
                  '"size": "<Size.LARGE: 2>"', '"label": "None"'):
        assert shown in out.stdout


@pytest.mark.parametrize(("pair", "message"), [
    ("mode=c", "Parameter 'mode' must be one of 'a', 'b'; got 'c'"),
    ("color=green", "Parameter 'color' must be a Color: RED, BLUE (or a value: 'red', 'blue')"),
    ("size=3", "Parameter 'size' must be a Size: SMALL, LARGE (or a value: 1, 2)"),
    ("n=" + "1" * 5000, "Parameter 'n' has 5000 digits"),
])
def test_values_outside_a_literal_or_enum_or_too_long_are_usage_errors(typed_file, pair,
                                                                        message):
    out = _cli("run", f"{typed_file}:typed", "--store", "memory://", "-p", pair)
    assert out.returncode == 2 and message in out.stderr, out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr) < 1000


def test_a_parameter_given_twice_is_an_error_naming_it(pipeline_file):
    out = _cli("run", f"{pipeline_file}:flow", "--store", "memory://", "-p", "x=1", "-p", "x=2")
    assert out.returncode == 2
    assert "Parameter 'x' is given twice (-p x=1, -p x=2)" in out.stderr


@pytest.mark.parametrize("value", ["0", "-3", "two"])
def test_max_workers_below_one_is_an_argparse_error(pipeline_file, value):
    out = _cli("run", f"{pipeline_file}:flow", "--store", "memory://", "--max-workers", value)
    assert out.returncode == 2
    assert "--max-workers: must be a whole number >= 1" in out.stderr
    assert "run " not in out.stdout


def test_an_empty_store_option_is_refused_not_dropped(pipeline_file, tmp_path):
    out = subprocess.run([sys.executable, "-m", "ductwork", "run", f"{pipeline_file}:flow",
                          "--store", ""], capture_output=True, text=True, timeout=60,
                         cwd=tmp_path)
    assert out.returncode != 0 and "store=''" in out.stderr
    assert not (tmp_path / ".ductwork").exists()


def _typed():
    import enum
    from typing import Literal

    class Color(enum.Enum):
        RED = "red"
        BLUE = "blue"

    return Color, Literal["a", "b", 3]


def test_convert_param_is_a_plain_function():
    from ductwork.cli import UsageError, convert_param

    color, literal = _typed()
    assert convert_param("x", "None", str | None) is None
    assert convert_param("x", "null", str | None) is None
    assert convert_param("x", "none", str | None) == "none"  # only None/null mean None
    assert convert_param("x", "7", int | None) == 7
    assert convert_param("x", "7", int | str) == 7
    assert convert_param("x", "seven", int | str) == "seven"
    assert convert_param("x", "a", literal) == "a"
    assert convert_param("x", "3", literal) == 3
    assert convert_param("x", "RED", color) is color.RED
    assert convert_param("x", "blue", color) is color.BLUE
    assert convert_param("x", "1e3", float) == 1000.0
    assert convert_param("x", "anything", None) == "anything"
    with pytest.raises(UsageError, match=r"one of 'a', 'b', 3; got 'c'"):
        convert_param("x", "c", literal)
    with pytest.raises(UsageError, match=r"must be a Color: RED, BLUE"):
        convert_param("x", "GREEN", color)
    with pytest.raises(UsageError, match=r"expects int \| None, got 'x'"):
        convert_param("x", "x", int | None)
    with pytest.raises(UsageError, match=r"1e999.* is out of float range"):
        convert_param("x", "1e999", float)
    assert convert_param("x", "inf", float) == float("inf")  # asked for by name
    with pytest.raises(UsageError, match=r"has 5000 digits, more than Python converts"):
        convert_param("n", "9" * 5000, int)
    with pytest.raises(UsageError) as info:
        convert_param("n", "x" * 5000, int)
    assert len(str(info.value)) < 300  # a long value is shortened, not echoed whole


# -- ductwork diff ([10] item 2) --------------------------------------------------------------

def test_diff_of_two_runs_as_text_and_as_json(pipeline_file, tmp_path):
    import json

    import ductwork as dw

    store = str(tmp_path / "s")
    for x in ("1", "2"):
        ran = _cli("run", f"{pipeline_file}:flow", "-p", f"x={x}", "--store", store)
        assert ran.returncode == 0, ran.stderr
    b, a = (r.id for r in dw.runs(store=store))
    text = _cli("diff", a, b, "--store", store)
    assert text.returncode == 0, text.stderr
    assert "x: 1 -> 2" in text.stdout and "parameter x 1 -> 2" in text.stdout
    assert "step double" in text.stdout and "step fail_if" in text.stdout
    assert "from step double" in text.stdout and "outputs: output different" in text.stdout
    as_json = _cli("diff", a, b, "--store", store, "--json")
    assert as_json.returncode == 0, as_json.stderr
    facts = json.loads(as_json.stdout)
    assert facts == json.loads(json.dumps(dw.diff(a, b, store=store).to_dict(), default=repr))
    assert facts["parameters"]["changed"] == {"x": [1, 2]} and facts["differs"] is True
    assert set(facts["steps"]) == {"double", "fail_if"}
    assert facts["steps"]["double"]["outputs"] == {"output": "different"}
    itself = _cli("diff", a, a, "--store", store, "--json")
    assert json.loads(itself.stdout)["differs"] is False
    assert json.loads(itself.stdout)["steps"] == {}
    assert "no differences" in _cli("diff", b, b, "--store", store).stdout
    unknown = _cli("diff", a, "nope", "--store", store)
    assert unknown.returncode == 1 and "No run 'nope'" in unknown.stderr
    assert str(tmp_path / "s") in unknown.stderr  # names the store it looked in


def test_plan_as_a_table_and_as_json_runs_nothing(pipeline_file, tmp_path):
    import json

    store = str(tmp_path / "s")
    fresh = _cli("plan", f"{pipeline_file}:flow", "--store", store, "--json")
    assert fresh.returncode == 0, fresh.stderr
    assert json.loads(fresh.stdout) == {
        "double": {"status": "run", "why": "no earlier run of this step to compare with"},
        "fail_if": {"status": "pending", "why": "waits for 'double' (not cached), so its "
                                                "inputs are not known yet"},
    }
    # flag=true would make fail_if raise: planning it runs no step.
    ran = _cli("run", f"{pipeline_file}:flow", "--store", store)
    assert ran.returncode == 0, ran.stderr
    table = _cli("plan", f"{pipeline_file}:flow", "--store", store, "-p", "flag=true")
    assert table.returncode == 0, table.stderr
    head, double, fail_if, change = table.stdout.splitlines()
    assert head.split() == ["step", "status", "why"]
    assert double.split()[:2] == ["double", "cached"] and "cache hit: stored by run" in double
    assert fail_if.split()[:2] == ["fail_if", "run"] and "the key differs from run" in fail_if
    assert change.strip().startswith("- input 'flag' changed")
    forced = _cli("plan", f"{pipeline_file}:flow", "--store", store, "--regenerate", "all",
                  "--json")
    assert {entry["status"] for entry in json.loads(forced.stdout).values()} == {"run"}
