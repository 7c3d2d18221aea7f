"""Caching as a user sees it: hits, misses, early cutoff, controls, why, type checks."""

from __future__ import annotations

import importlib
import sys
import textwrap
import uuid

import pytest

import ductwork as dw
from ductwork import pipeline, step
from ductwork.runtime.records.history import get_run, runs

CALLS: list[str] = []


@step
def make(n: int) -> list[int]:
    CALLS.append("make")
    return list(range(n))


@step
def total(xs: list[int]) -> int:
    CALLS.append("total")
    return sum(xs)


@step
def parity(x: int) -> int:
    CALLS.append("parity")
    return x % 2


@step
def describe(t: int, label: str = "t") -> str:
    CALLS.append("describe")
    return f"{label}={t}"


@pipeline
def flow(n: int = 4, label: str = "t"):
    t = total(make(n))
    return describe(parity(t), label=label)


def _statuses(run):
    return {k: ("hit" if s.cached else s.status) for k, s in run.steps.items()}


def test_second_run_is_all_hits_and_runs_nothing():
    CALLS.clear()
    first = flow.run()
    assert first.outputs == "t=0" and not any(s.cached for s in first.steps.values())
    CALLS.clear()
    second = flow.run()
    assert CALLS == []
    assert second.outputs == "t=0"
    assert all(s.cached for s in second.steps.values())
    assert second.steps["total"].output == 6  # loaded from the store on access


def test_a_changed_parameter_reruns_only_what_it_reaches():
    flow.run()
    CALLS.clear()
    run = flow.run(label="u")
    assert CALLS == ["describe"]
    assert run.outputs == "u=0"


def test_early_cutoff_same_bytes_keep_downstream_cached():
    flow.run(n=4)  # total 6, parity 0
    CALLS.clear()
    run = flow.run(n=5)  # total 10, parity 0 again: describe stays cached
    assert CALLS == ["make", "total", "parity"]
    assert run.steps["describe"].cached


def test_regenerate_all_and_named_steps_with_descendants():
    flow.run()
    CALLS.clear()
    flow.run(regenerate=True)
    assert sorted(CALLS) == ["describe", "make", "parity", "total"]
    CALLS.clear()
    run = flow.run(regenerate=["parity"])
    assert CALLS == ["parity", "describe"]
    assert run.steps["describe"].note == "regenerate was asked for"
    with pytest.raises(ValueError, match="regenerate= names 'nope', which is not a step"):
        flow.run(regenerate=["nope"])
    with pytest.raises(ValueError, match="regenerate= takes True, False or a list"):
        flow.run(regenerate="parity")


def test_cache_false_always_runs_but_downstream_can_hit():
    @step(cache=False)
    def clock() -> int:
        CALLS.append("clock")
        return 7

    @pipeline
    def p():
        return total([clock(), 1])

    p.run()
    CALLS.clear()
    run = p.run()
    assert CALLS == ["clock"]
    assert run.steps["total"].cached and not run.steps["clock"].cached
    assert run.steps["clock"].key is None


def test_ignore_inputs_keeps_an_argument_out_of_the_key():
    @step(ignore_inputs=["logger"])
    def work(x: int, logger=None) -> int:
        CALLS.append("work")
        return x + 1

    @pipeline
    def p(tag: str = "a"):
        return work(1, logger=object() if tag == "a" else None)

    p.run()
    CALLS.clear()
    assert p.run(tag="b").outputs == 2
    assert CALLS == []


def test_unhashable_input_is_an_error_naming_step_and_argument():
    class Opaque:
        pass

    @step
    def use(thing) -> int:
        return 1

    @pipeline
    def p():
        return use(Opaque())

    with pytest.raises(dw.PipelineFailed) as err:
        p.run()
    message = str(err.value)
    assert "'use'" in message and "'thing'" in message
    assert "Opaque" in message and "__ductwork_hash__" in message


def test_user_hash_hook_makes_a_type_cacheable():
    class Config:
        def __init__(self, alpha):
            self.alpha = alpha

        def __ductwork_hash__(self):
            return {"alpha": self.alpha}

    @step
    def fit(cfg) -> float:
        CALLS.append("fit")
        return cfg.alpha * 2

    @pipeline
    def p(alpha: float = 1.0):
        return fit(Config(alpha))

    p.run()
    CALLS.clear()
    p.run()
    assert CALLS == []
    p.run(alpha=2.0)
    assert CALLS == ["fit"]


def test_hash_paths_add_file_content_to_the_key(tmp_path, monkeypatch):
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.csv").write_text("1,2\n")
    monkeypatch.chdir(tmp_path)

    @step(hash_paths=["data"])
    def read() -> str:
        CALLS.append("read")
        return (data / "a.csv").read_text()

    @pipeline
    def p():
        return read()

    p.run()
    CALLS.clear()
    p.run()
    assert CALLS == []
    (data / "a.csv").write_text("1,3\n")
    run = p.run()
    assert CALLS == ["read"] and run.outputs == "1,3\n"
    assert "the content of hash path 'data' changed" in run.steps["read"].why

    @step(hash_paths=["missing"])
    def bad() -> int:
        return 1

    @pipeline
    def q():
        return bad()

    with pytest.raises(dw.PipelineFailed, match="hash_paths names 'missing', which does not"):
        q.run()


def test_return_annotation_mismatch_fails_naming_expected_and_actual():
    @step
    def wrong() -> dict:
        return [1]

    @step
    def pair() -> tuple[int, str]:
        return 1, 2

    @step
    def ok_float() -> float:
        return 3

    @step
    def maybe() -> int | None:
        return None

    @pipeline
    def p():
        return wrong()

    @pipeline
    def q():
        return pair()

    @pipeline
    def r():
        return ok_float(), maybe()

    with pytest.raises(dw.PipelineFailed,
                       match="Step 'wrong' returned list, but its return annotation says dict"):
        p.run()
    with pytest.raises(dw.PipelineFailed,
                       match="returned int for output .output_1., but its return annotation"):
        q.run()
    assert r.run().outputs == (3, None)


def test_map_elements_are_cached_one_by_one():
    @step
    def sq(x: int) -> int:
        CALLS.append(f"sq{x}")
        return x * x

    @pipeline
    def p(n: int = 3):
        return sq.map(make(n))

    p.run(n=3)
    CALLS.clear()
    run = p.run(n=4)
    assert CALLS == ["make", "sq3"]
    assert run.outputs == [0, 1, 4, 9]
    assert [run.steps[f"sq[{i}]"].cached for i in range(4)] == [True, True, True, False]


def test_history_records_runs_newest_first_with_metadata():
    a = flow.run()
    b = flow.run(label="x")
    listed = runs()
    assert [r.id for r in listed[:2]] == [b.id, a.id]
    loaded = get_run(b.id)
    assert loaded.params == {"n": 4, "label": "x"}
    assert loaded.outputs == "x=0"
    assert loaded.steps["total"].cached and loaded.steps["total"].output == 6
    assert loaded.graph["nodes"][0]["id"] == "make"
    assert loaded.python_version == sys.version.split()[0]
    assert loaded.ductwork_version == dw.__version__
    assert loaded.status == "succeeded"
    with pytest.raises(LookupError, match="No run 'nope'"):
        get_run("nope")


def test_failed_run_is_recorded_and_a_rerun_does_only_what_is_left():
    state = {"fail": True}

    @step
    def fragile(t: int) -> int:
        CALLS.append("fragile")
        if state["fail"]:
            raise RuntimeError("boom")
        return t

    @pipeline
    def p():
        t = total(make(3))
        return fragile(t), parity(t)

    with pytest.raises(dw.PipelineFailed) as err:
        p.run()
    assert get_run(err.value.run.id).status == "failed"
    state["fail"] = False
    CALLS.clear()
    run = p.run()
    assert CALLS == ["fragile"]
    assert run.outputs == (3, 1)


def _write_module(tmp_path, name, body):
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(body))
    return path


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    """A real user module on disk that a test can rewrite and reload."""
    name = f"usermod_{uuid.uuid4().hex[:8]}"
    monkeypatch.syspath_prepend(str(tmp_path))

    def load(body):
        _write_module(tmp_path, name, body)
        importlib.invalidate_caches()
        if name in sys.modules:
            return importlib.reload(sys.modules[name])
        return importlib.import_module(name)

    yield load
    sys.modules.pop(name, None)


SOURCE = '''
from ductwork import pipeline, step

SCALE = 2

def deep(x):
    return x + 1

def helper(x):
    return deep(x) * SCALE

@step
def a(x: int) -> int:
    return helper(x)

@step
def b(x: int) -> int:
    return x - 1

@step
def c(x: int, y: int) -> int:
    return x + y

@pipeline
def p(x: int = 1):
    return c(a(x), b(x))
'''


def test_why_names_the_helper_that_changed(user_module):
    mod = user_module(SOURCE)
    mod.p.run()
    mod = user_module(SOURCE.replace("return x + 1", "return x + 2"))
    run = mod.p.run()
    assert not run.steps["a"].cached and run.steps["b"].cached
    why = run.steps["a"].why
    assert "ran: the key differs from run" in why
    assert "deep changed" in why
    assert "cache hit" in run.steps["b"].why


def test_why_names_the_input_and_constant_that_changed(user_module):
    mod = user_module(SOURCE)
    mod.p.run()
    run = mod.p.run(x=5)
    assert "input 'x' changed" in run.steps["a"].why
    mod = user_module(SOURCE.replace("SCALE = 2", "SCALE = 3"))
    run = mod.p.run(x=5)
    assert "SCALE changed" in run.steps["a"].why
    assert run.steps["b"].cached


def test_comment_and_docstring_edits_rerun_nothing(user_module):
    mod = user_module(SOURCE)
    mod.p.run()
    edited = SOURCE.replace("def deep(x):", 'def deep(x):\n    """Add one."""  # explained')
    mod = user_module("# a header comment\n" + edited)
    run = mod.p.run()
    assert all(s.cached for s in run.steps.values())


def test_why_first_run_and_cache_false():
    run = flow.run()
    assert "no earlier run of this step" in run.steps["make"].why

    @step(cache=False)
    def always() -> int:
        return 1

    @pipeline
    def p():
        return always()

    assert "cache=False" in p.run().steps["always"].why


def test_memory_store_keeps_nothing_on_disk(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    url = f"memory://dw-{uuid.uuid4().hex}"
    flow.run(store=url)
    run = flow.run(store=url)
    assert all(s.cached for s in run.steps.values())
    assert get_run(run.id, store=url).outputs == "t=0"
    assert list(tmp_path.iterdir()) == []


def test_ductwork_store_fixture_is_isolated(ductwork_store):
    assert ductwork_store.startswith("memory://")
    run = flow.run()
    assert run.store == ductwork_store


def test_history_and_registries_are_public_and_lazy():
    import subprocess

    assert dw.runs is runs and dw.get_run is get_run
    assert callable(dw.register_serializer) and callable(dw.register_hash)
    code = "import sys, ductwork; print('ductwork.runtime.records.history' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "False"
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        _ = dw.nope


def test_why_of_a_map_step_summarizes_its_elements():
    @step
    def sq(x: int) -> int:
        return x * x

    @pipeline
    def p(n: int = 3):
        return sq.map(make(n))

    p.run(n=3)
    run = p.run(n=4)
    why = run.steps["sq"].why
    assert why.startswith("a map of 4 elements: 3 cache hits, 1 ran")
    assert "sq[3]" in why and "no earlier run" in why
    assert repr(runs()[0]).endswith(": succeeded>")
