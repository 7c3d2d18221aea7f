"""``dw.diff`` / ``diff_runs``: what differs between two real runs, read back from the store."""

from __future__ import annotations

import json
import sys
import textwrap

import pytest

import ductwork as dw
from ductwork import pipeline, step
from ductwork.runtime.records.diff import RunDiff, diff_runs


@step
def double(x: int) -> int:
    dw.context().log_metric("score", x * 0.5)
    return 2 * x


@step
def plus_one(y: int) -> int:
    return y + 1


@step
def const() -> int:
    return 7


@step
def square(v: int) -> int:
    return v * v


@pipeline
def flow(x: int = 1, xs: list = (1, 2, 3)):
    return {"y": plus_one(double(x)), "c": const(), "m": square.map(xs)}


def test_a_parameter_change_follows_the_data_and_leaves_the_rest_the_same(tmp_path):
    store = str(tmp_path / "s")
    a, b = flow.run(store=store), flow.run(x=2, store=store)
    d = dw.diff(a.id, b.id, store=store)
    assert isinstance(d, RunDiff) and d.differs
    assert d.params == {"x": [1, 2]} and not d.params_added and not d.params_removed
    assert not d.steps_added and not d.steps_removed and d.run == {}
    changed = {s.id: s for s in d.changed}
    assert set(changed) == {"double", "plus_one"}
    (given,) = changed["double"].inputs
    assert given["argument"] == "x" and given["parameter"] == "x" and given["values"] == [1, 2]
    assert changed["double"].outputs == {"output": "different"}
    assert changed["double"].metrics == {"score": [0.5, 1.0]}
    (fed,) = changed["plus_one"].inputs
    assert fed["argument"] == "y" and fed["from_step"] == "double" and "parameter" not in fed
    assert changed["plus_one"].outputs == {"output": "different"}
    assert changed["double"].code == changed["double"].components == []
    # const and the map ran in a and were cache hits in b: the same steps, reused.
    assert d.same == ["const", "square"]
    assert d.to_dict()["same_cached"] == {"const": [False, True], "square": [False, True]}
    text = str(d)
    assert "x: 1 -> 2" in text and "step double" in text and "parameter x 1 -> 2" in text
    assert "from step double" in text and "metric score: 0.5 -> 1.0" in text
    assert "step const" not in text and "2 steps the same: const, square" in text
    assert f"cached only in {b.id}: const, square" in text


def test_a_run_against_itself_differs_in_nothing(tmp_path):
    store = str(tmp_path / "s")
    run = flow.run(store=store)
    d = diff_runs(run, run.id, store=store)
    assert not d and not d.changed and d.same == ["double", "plus_one", "const", "square"]
    assert d.to_dict()["steps"] == {} and d.to_dict()["differs"] is False
    assert "no differences" in d.render()


def test_cached_against_ran_is_listed_and_a_forced_rerun_with_equal_outputs_is_the_same(tmp_path):
    store = str(tmp_path / "s")
    a = flow.run(store=store)
    b = flow.run(store=store)
    c = flow.run(store=store, regenerate=["const"])
    ab = dw.diff(a, b)
    assert not ab.differs and ab.to_dict()["same_cached"]["double"] == [False, True]
    bc = dw.diff(b, c)
    assert bc.to_dict()["same_cached"] == {"const": [True, False]}
    assert "no differences" in str(bc) and f"(cached only in {b.id}: const)" in str(bc)
    assert f"cached only in {b.id}: double" in str(ab)


def test_a_map_is_summarized_per_node(tmp_path):
    store = str(tmp_path / "s")
    a, b = flow.run(store=store), flow.run(xs=[1, 2, 4, 5], store=store)
    d = dw.diff(a, b)
    (mapped,) = [s for s in d.changed if s.id == "square"]
    assert mapped.map is not None
    assert mapped.map["elements"] == [3, 4]
    assert mapped.map["outputs_differ"] == 1 and mapped.map["inputs_differ"] == 1
    assert mapped.outputs == {"output": "different"}
    assert "elements: 3 -> 4, 1 with different outputs" in str(d)
    assert not any("[" in s.id for s in d.steps)  # elements are not steps of their own


def test_an_edited_helper_is_named_in_the_code_changes(tmp_path, import_file):
    source = textwrap.dedent('''
        from ductwork import pipeline, step

        def scale(v):
            return v * {factor}

        @step
        def scaled(v: int) -> int:
            return scale(v)

        @step
        def untouched(v: int) -> int:
            return v

        @pipeline
        def edited(v: int = 3):
            return scaled(v), untouched(v)
    ''')
    path = tmp_path / "diff_helper_mod.py"
    store = str(tmp_path / "s")
    try:
        path.write_text(source.format(factor=2))
        a = import_file(path, "diff_helper_mod").edited.run(store=store)
        path.write_text(source.format(factor="10 + 1"))
        b = import_file(path, "diff_helper_mod").edited.run(store=store)
    finally:
        sys.modules.pop("diff_helper_mod", None)
    d = dw.diff(a, b)
    (changed,) = d.changed
    assert changed.id == "scaled" and changed.inputs == []
    assert changed.code == ["helper function diff_helper_mod.scale changed"]
    assert changed.outputs == {"output": "different"}
    assert d.same == ["untouched"]
    assert "code: helper function diff_helper_mod.scale changed" in str(d)


def _versions():
    @pipeline(name="grown")
    def first(x: int = 1):
        return double(x)

    @pipeline(name="grown")
    def second(x: int = 1):
        return plus_one(double(x)), const()

    return first, second


def test_steps_added_and_removed_between_two_versions_of_a_pipeline(tmp_path):
    store = str(tmp_path / "s")
    first, second = _versions()
    a, b = first.run(store=store), second.run(store=store)
    d = dw.diff(a.id, b.id, store=store)
    assert d.steps_added == ["plus_one", "const"] and d.steps_removed == []
    assert d.same == ["double"]
    back = dw.diff(b, a)
    assert back.steps_removed == ["plus_one", "const"] and back.steps_added == []
    assert f"+ step plus_one (only in {b.id})" in str(d)
    assert f"- step const (only in {b.id})" in str(back)
    assert json.loads(json.dumps(d.to_dict()))["graph"] == {
        "added": ["plus_one", "const"], "removed": []}


def test_an_unknown_run_is_a_lookup_error_naming_the_store(tmp_path):
    store = str(tmp_path / "s")
    run = flow.run(store=store)
    with pytest.raises(LookupError, match=r"No run 'nope' in .*runs\.sqlite"):
        dw.diff(run.id, "nope", store=store)
