"""``Pipeline.plan``: cached / run / pending and why, computed without running step code."""

from __future__ import annotations

import os
import textwrap
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import ductwork as dw
from ductwork.dsl.core import RunOptionError


def _mark(name: str) -> None:
    """Leave a file saying step ``name`` ran, so a test can tell that plan ran nothing."""
    folder = Path(os.environ["PLAN_TEST_MARKS"])
    (folder / f"{name}-{uuid.uuid4().hex}").touch()


@dw.step
def load(n):
    _mark("load")
    return list(range(n))


@dw.step
def scale(x, k=1):
    _mark("scale")
    return x * k


@dw.step
def total(xs, c):
    _mark("total")
    return sum(xs) * c


@dw.step
def other(c):
    _mark("other")
    return c + 1


@dw.step(cache=False)
def stamp(v):
    _mark("stamp")
    return v


@dw.pipeline
def chain(n=3, k=1, c=1.0):
    xs = load(n)
    ys = scale.map(xs, k=k)
    return total(ys, c), other(c)


@dw.pipeline
def consts(k=1):
    return scale.map([1, 2, 3], k=k)


@dw.pipeline
def uncached(c=1.0):
    return stamp(other(c))


@pytest.fixture
def marks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The folder steps leave their marks in; empty at the start."""
    folder = tmp_path / "marks"
    folder.mkdir()
    monkeypatch.setenv("PLAN_TEST_MARKS", str(folder))
    return folder


def _ran(marks: Path) -> int:
    return len(list(marks.iterdir()))


def _status(plan: dict) -> dict[str, str]:
    return {sid: entry[0] for sid, entry in plan.items()}


def test_a_fresh_store_runs_roots_and_leaves_dependents_pending(marks, tmp_path):
    plan = chain.plan(store=tmp_path / "s")
    assert _status(plan) == {"load": "run", "scale": "pending", "total": "pending",
                             "other": "run"}
    assert plan["load"][1] == "no earlier run of this step to compare with"
    assert plan["total"][1] == ("waits for 'scale' (not cached), so its inputs are not "
                                "known yet")
    assert all(isinstance(entry, tuple) and len(entry) == 2 for entry in plan.values())
    assert _ran(marks) == 0


def test_after_a_run_every_step_is_cached_by_that_run(marks, tmp_path):
    run = chain.run(store=tmp_path / "s", progress=False)
    before = _ran(marks)
    plan = chain.plan(store=tmp_path / "s")
    assert _ran(marks) == before
    assert set(_status(plan).values()) == {"cached"}
    assert plan["load"] == ("cached", f"cache hit: stored by run {run.id}")
    assert plan["scale"][1] == (f"a map of 3 elements: 3 cache hits, 0 to run; cache hit: "
                                f"stored by run {run.id}")
    again = chain.run(store=tmp_path / "s", progress=False)
    assert all(record.cached for record in again.steps.values() if record.map_index is None)
    # Served by the second run, still stored by the first.
    assert chain.plan(store=tmp_path / "s")["other"][1] == f"cache hit: stored by run {run.id}"


def test_a_changed_parameter_reruns_its_chain_only(marks, tmp_path):
    run = chain.run(store=tmp_path / "s", progress=False)
    before = _ran(marks)
    plan = chain.plan(store=tmp_path / "s", n=4)
    assert _status(plan) == {"load": "run", "scale": "pending", "total": "pending",
                             "other": "cached"}
    assert plan["load"][1].startswith(f"the key differs from run {run.id}:\n")
    assert "input 'n' changed" in plan["load"][1]
    plan = chain.plan(store=tmp_path / "s", c=2.0)
    assert _status(plan) == {"load": "cached", "scale": "cached", "total": "run",
                             "other": "run"}
    assert "input 'c' changed" in plan["total"][1]
    assert _ran(marks) == before


def test_a_map_over_a_cached_output_is_keyed_element_by_element(marks, tmp_path):
    run = chain.run(store=tmp_path / "s", progress=False)
    before = _ran(marks)
    plan = chain.plan(store=tmp_path / "s", k=2)
    assert _status(plan) == {"load": "cached", "scale": "run", "total": "pending",
                             "other": "cached"}
    assert plan["scale"][1].startswith("a map of 3 elements: 0 cache hits, 3 to run; the first "
                                       f"to run, scale[0]: the key differs from run {run.id}")
    assert "input 'k' changed" in plan["scale"][1]
    assert sorted(plan["scale"].keys) == ["scale[0]", "scale[1]", "scale[2]"]
    assert _ran(marks) == before


def test_a_map_over_a_constant_list_is_keyed_before_any_run(marks, tmp_path):
    plan = consts.plan(store=tmp_path / "s")
    assert plan["scale"][0] == "run"
    assert plan["scale"][1].startswith("a map of 3 elements: 0 cache hits, 3 to run")
    run = consts.run(store=tmp_path / "s", progress=False)
    assert {sid: run.steps[sid].key for sid in plan["scale"].keys} == plan["scale"].keys
    assert consts.plan(store=tmp_path / "s")["scale"][0] == "cached"
    assert _ran(marks) == 3


def test_a_step_with_caching_off_always_runs(marks, tmp_path):
    uncached.run(store=tmp_path / "s", progress=False)
    plan = uncached.plan(store=tmp_path / "s")
    assert plan["other"][0] == "cached"
    assert plan["stamp"] == ("run", "caching is off for this step (cache=False)")


def test_regenerate_runs_the_named_steps_and_what_follows(marks, tmp_path):
    run = chain.run(store=tmp_path / "s", progress=False)
    plan = chain.plan(store=tmp_path / "s", regenerate=["load"])
    assert _status(plan) == {"load": "run", "scale": "run", "total": "run", "other": "cached"}
    assert plan["load"][1] == f"same key as run {run.id} (regenerate was asked for)"
    assert plan["scale"][1] == "regenerate was asked for; its key is known once 'load' has run"
    assert set(_status(chain.plan(store=tmp_path / "s", regenerate=True)).values()) == {"run"}
    with pytest.raises(RunOptionError, match="nope"):
        chain.plan(store=tmp_path / "s", regenerate=["nope"])


def test_plan_creates_no_store(tmp_path, marks):
    chain.plan(store=tmp_path / "s")
    assert not (tmp_path / "s").exists()


HELPERS = '''
import ductwork as dw
from ductwork.dsl.core import RunOptionError


def adjust(x):
    return x + {delta}


@dw.step
def shift(x):
    return adjust(x)


@dw.step
def double(x):
    return 2 * x


@dw.pipeline
def edited(x=1):
    return double(shift(x))
'''


def _module(folder: Path, name: str, source: str, import_file: Any) -> ModuleType:
    folder.mkdir()
    path = folder / f"{name}.py"
    path.write_text(textwrap.dedent(source))
    return import_file(path, name)


def test_an_edited_helper_is_named_in_why(tmp_path, import_file, marks):
    name = f"planmod_{uuid.uuid4().hex[:8]}"
    first = _module(tmp_path / "v1", name, HELPERS.format(delta=1), import_file)
    run = first.edited.run(store=tmp_path / "s", progress=False)
    second = _module(tmp_path / "v2", name, HELPERS.format(delta=2), import_file)
    plan = second.edited.plan(store=tmp_path / "s")
    assert _status(plan) == {"shift": "run", "double": "pending"}
    assert plan["shift"][1].startswith(f"the key differs from run {run.id}:\n")
    assert "adjust" in plan["shift"][1]


# -- plan and run agree, for random pipelines -----------------------------------------------

from hypothesis import event, given, note, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from tests.dsl.test_properties import (  # noqa: E402
    build,
    descriptions,
    fresh_store,
    params_strategy,
    show,
)


def _hit(run, nid: str, is_map: bool) -> bool:
    """Whether a run served node ``nid`` from the cache (a map: every element, at least one)."""
    if not is_map:
        return run.steps[nid].cached
    elements = [r for r in run.steps.values() if r.map_index is not None
                and r.id.rsplit("[", 1)[0] == nid]
    return bool(elements) and all(r.cached for r in elements)


@settings(max_examples=30, deadline=None)
@given(descriptions(), params_strategy, params_strategy, st.data())
def test_plan_agrees_with_the_run_that_follows(desc, before, after, data):
    note(show(desc))
    p = build(desc)
    invocations = p.trace(**after).invocations
    regenerate = data.draw(st.lists(st.sampled_from(sorted(invocations)), max_size=1))
    with fresh_store() as store:
        p.run(**before, store=store, progress=False)
        plan = p.plan(**after, store=store, regenerate=regenerate)
        run = p.run(**after, store=store, progress=False, regenerate=regenerate)
    assert list(plan) == [sid for sid in run.steps if run.steps[sid].map_index is None]
    for nid, entry in plan.items():
        status, why = entry
        event(f"{'map' if invocations[nid].is_map else 'step'} {status}")
        if status == "cached":
            assert _hit(run, nid, invocations[nid].is_map), (nid, why)
            assert entry.keys, nid
        elif status == "run":
            assert not _hit(run, nid, invocations[nid].is_map), (nid, why)
        else:
            assert status == "pending", (nid, status)
            assert not entry.keys  # its key is not known before its inputs are
        for sid, key in entry.keys.items():
            assert run.steps[sid].key == key, (sid, why)

@dw.step(hash_paths=["made-by-upstream.txt"])
def reads_file(v):
    _mark("reads_file")
    return v


@dw.pipeline
def with_file(c=1.0):
    return reads_file(other(c))


@dw.pipeline
def file_first(c=1.0):
    return reads_file(c)


def test_a_key_basis_error_waits_for_the_inputs_a_run_would_wait_for(marks, tmp_path,
                                                                      monkeypatch):
    monkeypatch.chdir(tmp_path)  # hash_paths are relative to the working directory
    plan = with_file.plan(store=tmp_path / "s")
    assert plan["reads_file"] == ("pending", "waits for 'other' (not cached), so its inputs "
                                             "are not known yet")
    status, why = file_first.plan(store=tmp_path / "s")["reads_file"]
    assert status == "run"
    assert why.startswith("it cannot be keyed, so the run fails it: Step 'reads_file': "
                          "hash_paths names 'made-by-upstream.txt', which does not exist")
    (tmp_path / "made-by-upstream.txt").write_text("x")
    assert file_first.plan(store=tmp_path / "s")["reads_file"][0] == "run"
    assert _ran(marks) == 0


def test_a_plan_entry_survives_pickling_with_its_keys(tmp_path, marks):
    import copy
    import pickle

    entry = consts.plan(store=tmp_path / "s")["scale"]
    for again in (pickle.loads(pickle.dumps(entry)), copy.deepcopy(entry)):
        assert again == entry and again.keys == entry.keys and len(again.keys) == 3
