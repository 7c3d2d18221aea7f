"""In-process runs: order, outputs, failures, retries, and run options checked up front."""

from __future__ import annotations

from typing import NamedTuple

import pytest

import ductwork as dw
from ductwork import pipeline, step
from ductwork.dsl.core import RunOptionError

ORDER: list[str] = []


@step
def load(path: str) -> list[float]:
    ORDER.append("load")
    return [float(i) for i in range(len(path))]


class Split(NamedTuple):
    train: list
    test: list


@step
def split(rows: list[float], frac: float = 0.5) -> Split:
    ORDER.append("split")
    n = int(len(rows) * frac)
    return Split(rows[:n], rows[n:])


@step
def fit(train, c: float = 1.0) -> dict:
    ORDER.append("fit")
    return {"w": sum(train) * c}


@step
def count(xs) -> int:
    ORDER.append("count")
    return len(xs)


@pipeline
def training(path: str = "abcdef", c: float = 1.0):
    rows = load(path)
    train, test = split(rows)
    model = fit(train, c=c)
    return {"model": model, "n_test": count(test)}


def test_run_returns_outputs_in_the_pipeline_structure():
    ORDER.clear()
    run = training.run(c=0.5)
    assert run.status == "succeeded"
    assert run.outputs == {"model": {"w": 1.5}, "n_test": 3}
    assert run.outputs == training(c=0.5)  # the same as calling the plain functions
    assert ORDER.index("load") < ORDER.index("split") < ORDER.index("fit")
    assert run.pipeline == "training" and run.params == {"path": "abcdef", "c": 0.5}
    assert run.backend == "inline"
    assert run.id and run.duration is not None and run.duration >= 0


def test_step_runs_record_status_outputs_and_timing():
    run = training.run()
    s = run.steps["split"]
    assert s.status == "succeeded" and not s.cached and s.error is None
    assert s.outputs == {"train": [0.0, 1.0, 2.0], "test": [3.0, 4.0, 5.0]}
    assert s.duration is not None and s.duration >= 0
    assert run.steps["fit"].output == {"w": 3.0}
    with pytest.raises(AttributeError, match="use .outputs"):
        _ = s.output
    assert set(run.steps) == {"load", "split", "fit", "count"}


def test_return_structures_single_tuple_nested():
    @pipeline
    def single():
        return count(load("abc"))

    @pipeline
    def pair():
        rows = load("abcd")
        return rows, (count(rows), [count(rows), "const"])

    @pipeline
    def nothing():
        load("a")

    assert single.run().outputs == 3
    assert pair.run().outputs == ([0.0, 1.0, 2.0, 3.0], (4, [4, "const"]))
    assert nothing.run().outputs is None


def test_multiple_outputs_as_tuple_dict_and_whole_object():
    @step(outputs=("a", "b"))
    def two(x):
        return {"b": x + 1, "a": x}

    @step
    def ident(v):
        return v

    @pipeline
    def p():
        res = two(1)
        return ident(res), res.b, res[0]

    assert p.run().outputs == ((1, 2), 2, 1)


def test_declared_outputs_not_returned_fail_the_step_clearly():
    @step(outputs=("a", "b"))
    def two(x):
        return x

    @pipeline
    def p():
        return two(1)

    with pytest.raises(dw.PipelineFailed) as err:
        p.run()
    assert "Step 'two' declares 2 outputs (a, b) but returned int" in str(err.value)


def test_map_elements_are_step_runs():
    @step
    def sq(x, k=1):
        return x * x * k

    @pipeline
    def p(n: int = 3):
        xs = load("a" * n)
        return sq.map(xs, k=2), sq.map([], k=1)

    run = p.run(n=4)
    assert run.outputs == ([0.0, 2.0, 8.0, 18.0], [])
    assert run.steps["sq"].outputs == {"output": [0.0, 2.0, 8.0, 18.0]}
    assert [run.steps[f"sq[{i}]"].output for i in range(4)] == [0.0, 2.0, 8.0, 18.0]
    assert run.steps["sq[2]"].map_index == 2
    assert run.steps["sq-2"].status == "succeeded"


def test_map_over_a_non_list_fails_that_step():
    @step
    def one(x):
        return x

    @step
    def not_a_list():
        return 5

    @pipeline
    def p():
        return one.map(not_a_list())

    with pytest.raises(dw.PipelineFailed, match="one.map needs a list to map over.*int"):
        p.run()


def test_failure_raises_with_run_step_and_user_traceback_and_others_finish():
    @step
    def bad(rows):
        helper_that_raises(rows)

    @step
    def after(x):
        raise AssertionError("must not run downstream of a failure")

    @pipeline
    def p():
        rows = load("abcd")
        b = bad(rows)
        return {"after": after(b), "ok": count(rows), "ok2": fit(rows)}

    with pytest.raises(dw.PipelineFailed) as err:
        p.run()
    run = err.value.run
    message = str(err.value)
    assert "failed in step 'bad'" in message
    assert "ValueError: rows were [0.0, 1.0, 2.0, 3.0]" in message
    assert "helper_that_raises" in message and __file__ in message
    assert "ductwork/runtime" not in message  # only the user's frames
    assert run.status == "failed"
    assert run.steps["bad"].status == "failed"
    assert "ValueError" in run.steps["bad"].error
    assert run.steps["after"].status == "skipped"
    assert "upstream step 'bad' failed" in run.steps["after"].error
    assert run.steps["count"].status == "succeeded" and run.steps["count"].output == 4
    assert run.steps["fit"].status == "succeeded"
    assert run.outputs == {"after": None, "ok": 4, "ok2": {"w": 6.0}}


def helper_that_raises(rows):
    raise ValueError(f"rows were {rows}")


def test_a_failing_map_element_fails_the_map_and_skips_downstream():
    @step
    def inv(x):
        return 1 / x

    @pipeline
    def p():
        return count(inv.map([1, 0, 2]))

    with pytest.raises(dw.PipelineFailed) as err:
        p.run()
    run = err.value.run
    assert run.steps["inv[1]"].status == "failed"
    assert run.steps["inv[0]"].status == run.steps["inv[2]"].status == "succeeded"
    assert run.steps["inv"].status == "failed" and "element 1 failed" in run.steps["inv"].error
    assert run.steps["count"].status == "skipped"
    assert "ZeroDivisionError" in str(err.value)


def test_retries_rerun_a_failing_step():
    attempts: list[int] = []

    @step(retries=2)
    def flaky():
        attempts.append(1)
        if len(attempts) < 3:
            raise RuntimeError("not yet")
        return "ok"

    @pipeline
    def p():
        return flaky()

    run = p.run()
    assert run.outputs == "ok" and len(attempts) == 3
    assert run.steps["flaky"].attempts == 3

    attempts.clear()

    @step(retries=1)
    def always():
        attempts.append(1)
        raise RuntimeError("never")

    @pipeline
    def q():
        return always()

    with pytest.raises(dw.PipelineFailed, match="never"):
        q.run()
    assert len(attempts) == 2


def test_unknown_backend_and_bad_options_fail_before_any_step():
    ORDER.clear()
    with pytest.raises(dw.DuctworkError, match="Unknown backend 'nope'. Known backends: .*inline"):
        training.run(backend="nope")
    with pytest.raises(ValueError, match="max_workers= must be a whole number >= 1"):
        training.run(max_workers=0)
    assert ORDER == []


def test_third_party_backend_through_entry_points(monkeypatch):
    import importlib.metadata as md

    from ductwork.runtime.engine import backend as registry

    class EP:
        name = "mine"

        def load(self):
            from ductwork.backends.inline import InlineBackend

            class Mine(InlineBackend):
                name = "mine"

            return Mine

    real = md.entry_points

    def fake(**kw):
        if kw.get("group") == registry.ENTRY_POINT_GROUP:
            return [EP()]
        return real(**kw)

    monkeypatch.setattr(md, "entry_points", fake)
    run = training.run(backend="mine")
    assert run.backend == "mine" and run.status == "succeeded"


def test_run_repr_summarizes():
    run = training.run()
    assert repr(run).startswith(f"<Run {run.id} of training: succeeded (4 succeeded)")


# -- store= values that cannot be a store ([8] item 16 c) --------------------------------

STORE_FORMS = "a local path.*memory://.*az://container/prefix.*fsspec URL"


@pytest.mark.parametrize("store", ["", "   ", "file://", 123, b"/tmp/x", 1.5, ["a"]])
def test_a_store_that_is_not_a_path_or_url_is_refused_naming_it(store, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ORDER.clear()
    with pytest.raises(RunOptionError, match=STORE_FORMS) as info:
        training.run(store=store)
    assert f"store={store!r}" in str(info.value)
    assert ORDER == [] and list(tmp_path.iterdir()) == []  # nothing written, least of all here


@pytest.mark.parametrize("below", ["", "sub"])
def test_a_store_path_through_a_file_is_refused_and_the_file_is_untouched(below, tmp_path):
    existing = tmp_path / "notes.txt"
    existing.write_text("keep me")
    path = existing / below if below else existing
    ORDER.clear()
    with pytest.raises(RunOptionError, match=r"notes.txt is a file, not a directory") as info:
        training.run(store=str(path))
    assert STORE_FORMS.split(".*")[1] in str(info.value) and ORDER == []
    assert existing.read_text() == "keep me" and sorted(tmp_path.iterdir()) == [existing]


def test_a_bad_default_store_names_the_environment_variable(tmp_path, monkeypatch):
    existing = tmp_path / "notes.txt"
    existing.write_text("keep me")
    monkeypatch.setenv("DUCTWORK_STORE", str(existing))
    with pytest.raises(RunOptionError, match=r"DUCTWORK_STORE=.*notes.txt is a file"):
        training.run()
    with pytest.raises(RunOptionError, match=r"DUCTWORK_STORE"):
        dw.runs()
    assert existing.read_text() == "keep me"


def test_history_refuses_a_store_that_is_not_a_path_either():
    with pytest.raises(RunOptionError, match=r"store=123"):
        dw.runs(store=123)


def test_good_stores_still_open(tmp_path):
    from pathlib import Path

    assert training.run(store=Path(tmp_path / "a")).status == "succeeded"
    assert training.run(store=f"file://{tmp_path / 'b'}").status == "succeeded"
    assert training.run(store="memory://").status == "succeeded"


def test_an_int_parameter_too_long_to_record_is_refused_before_any_step(tmp_path):
    @pipeline
    def big(n: int = 1):
        return count([n])

    ORDER.clear()
    with pytest.raises(dw.ParameterError, match=r"parameter 'n' is an int of more than 4300 "
                                                r"digits.*as a str"):
        big.run(n=10**5000, store=str(tmp_path / "s"))
    assert not (tmp_path / "s").exists()
    assert big.run(n=10**4000, store="memory://").status == "succeeded"


def test_a_run_refused_before_it_begins_stops_its_git_probe(tmp_path, monkeypatch):
    """The git probe starts with the run; a run refused (a bad parameter) leaves no git."""
    import os
    import subprocess
    import time

    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    from tests.runtime.records.test_provenance import fake_git

    pid_file = tmp_path / "git.pid"
    fake_git(tmp_path / "bin", f"echo $$ > {pid_file}\nexec sleep 60\n", monkeypatch)
    monkeypatch.delenv("GIT_DIR", raising=False)
    monkeypatch.chdir(repo)
    with pytest.raises(dw.ParameterError, match="nope"):
        training.run(nope=1, store=str(tmp_path / "store"), progress=False)
    deadline = time.monotonic() + 10  # the fake git may not have written its pid yet
    while not (pid_file.exists() and pid_file.read_text().strip()):
        if time.monotonic() > deadline:
            return  # it never started: nothing left behind
        time.sleep(0.01)
    with pytest.raises(ProcessLookupError):  # killed and reaped
        os.kill(int(pid_file.read_text()), 0)
