"""Records without attrs (``dsl/slotted``): what callers relied on attrs for still holds.

Immutability of frozen records, ``==`` and hashing by fields, a readable repr, pickling
(plain pickle to process workers, cloudpickle to Dask and Docker; also values pickled
by an earlier ductwork, whose classes were attrs classes), ``replace`` running the
conversions and checks again, and ``Environment``'s conversions and errors.
"""

from __future__ import annotations

import pickle

import cloudpickle
import pytest

import ductwork as dw
from ductwork.dsl.options import StepOptions
from ductwork.dsl.slotted import as_dict, field_names
from ductwork.runtime.engine.job import Job, JobResult
from ductwork.runtime.records.run import Run, StepRun
from ductwork.runtime.store.entry import ArtifactRef
from ductwork.runtime.store.refs import GatherRef

DIGEST = "ab" * 32

# StepOptions(name="fit", outputs=("output",), retries=2,
#             env=Environment(pip=["a==1"], env={"K": "v"})) and
# JobResult("fit", 1.0, 2.0, logs="hi", metrics={"m": 1}), pickled by ductwork when both
# were attrs classes (a published snapshot holds step options pickled like this).
ATTRS_ERA = (
    b'\x80\x04\x95\xc3\x01\x00\x00\x00\x00\x00\x00\x8c\x14ductwork.dsl.options\x94\x8c\x0bStep'
    b'Options\x94\x93\x94)\x81\x94}\x94(\x8c\x04name\x94\x8c\x03fit\x94\x8c\x07outputs\x94\x8c'
    b'\x06output\x94\x85\x94\x8c\x05cache\x94\x88\x8c\rcache_version\x94N\x8c\x07retries\x94K'
    b'\x02\x8c\x07timeout\x94N\x8c\x07compute\x94N\x8c\x03env\x94h\x00\x8c\x0bEnvironment\x94'
    b'\x93\x94)\x81\x94}\x94(\x8c\nbase_image\x94N\x8c\x03pip\x94\x8c\x04a==1\x94\x85\x94\x8c'
    b'\x03apt\x94)\x8c\x06python\x94Nh\x0f\x8c\x01K\x94\x8c\x01v\x94\x86\x94\x85\x94ub\x8c\rign'
    b'ore_inputs\x94)\x8c\nhash_paths\x94)\x8c\x08env_vars\x94)ub\x8c\x1bductwork.runtime.engi'
    b'ne.job\x94\x8c\tJobResult\x94\x93\x94)\x81\x94}\x94(\x8c\x07step_id\x94h\x06\x8c\x07star'
    b'ted\x94G?\xf0\x00\x00\x00\x00\x00\x00\x8c\x08finished\x94G@\x00\x00\x00\x00\x00\x00\x00'
    b'\x8c\x04refs\x94N\x8c\x06values\x94N\x8c\x05error\x94N\x8c\x04logs\x94\x8c\x02hi\x94\x8c'
    b'\x07metrics\x94}\x94\x8c\x01m\x94K\x01s\x8c\x07corrupt\x94Nub\x86\x94.'
)


def add(a: int, b: int) -> int:
    return a + b


def job() -> Job:
    ref = ArtifactRef(DIGEST, "json", 3, ["m:C"], inline=b"123")
    return Job("add", dw.step(add), (ref, GatherRef(DIGEST, (ref,))), {"b": 2}, key=DIGEST)


@pytest.mark.parametrize("record", [
    dw.Environment(pip="x"), StepOptions("fit", ("output",)), ArtifactRef(DIGEST, "json", 1),
    GatherRef(DIGEST, ()), JobResult("s", 1.0, 2.0),
])
def test_a_frozen_record_refuses_assignment_and_deletion(record):
    name = field_names(type(record))[0]
    with pytest.raises(AttributeError, match="immutable.*replace"):
        setattr(record, name, None)
    with pytest.raises(AttributeError, match="immutable"):
        delattr(record, name)
    with pytest.raises(AttributeError):
        record.not_a_field = 1  # slots: no stray attributes either


def test_frozen_records_compare_and_hash_by_their_fields():
    a, b = dw.Environment(pip=["x"], env={"A": "1"}), dw.Environment(pip=("x",), env=[("A", "1")])
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    assert a != dw.Environment(pip=["y"]) and a != "Environment"
    # ``inline`` is not part of what a ref is.
    ref = ArtifactRef(DIGEST, "json", 3, inline=b"123")
    assert ref == ref.replace(inline=None) and hash(ref) == hash(ref.replace(inline=None))
    assert ref != ref.replace(size=4)


def test_runs_and_step_runs_compare_by_identity():
    assert StepRun("a", "a") != StepRun("a", "a")
    run = Run("r", "p", {}, "inline")
    assert run == run and len({run, Run("r", "p", {}, "inline")}) == 2


def test_mutable_records_keep_their_fields_apart():
    one, two = StepRun("a", "a"), StepRun("b", "b")
    one.output_refs["x"] = 1
    one.note = "changed"
    assert (one.note, two.note) == ("changed", None)
    assert two.output_refs == {} and two.metrics is not one.metrics  # no shared default


def test_the_repr_names_the_fields_and_hides_private_and_secret_ones():
    assert repr(dw.Environment(pip="x")) == (
        "Environment(base_image=None, pip=('x',), apt=(), python=None, env=())")
    assert "inline" not in repr(ArtifactRef(DIGEST, "json", 1, inline=b"1"))
    step_run = repr(StepRun("a", "fit", values={"x": 1}, loader=print))
    assert step_run.startswith("StepRun(id='a', step='fit', ") and "loader" not in step_run


@pytest.mark.parametrize("dumps", [pickle.dumps, cloudpickle.dumps])
def test_jobs_and_results_survive_pickle_and_cloudpickle(dumps):
    sent = job()
    back = pickle.loads(dumps(sent))
    assert back.step.name == "add" and back.args[0].inline == b"123"
    assert {**as_dict(back), "step": None} == {**as_dict(sent), "step": None}
    result = JobResult("add", 1.0, 2.0, refs={"output": sent.args[0]}, metrics={"m": 1})
    assert pickle.loads(dumps(result)) == result
    options = StepOptions("fit", ("output",), env=dw.Environment(pip=["a"]))
    assert pickle.loads(dumps(options)) == options


def test_values_pickled_when_these_were_attrs_classes_still_load():
    options, result = pickle.loads(ATTRS_ERA)
    assert options == StepOptions(name="fit", outputs=("output",), retries=2,
                                  env=dw.Environment(pip=["a==1"], env={"K": "v"}))
    assert options.env.env == (("K", "v"),) and hash(options)
    assert result == JobResult("fit", 1.0, 2.0, logs="hi", metrics={"m": 1})


def test_replace_runs_the_conversions_and_checks_again():
    env = dw.Environment(pip="x")
    assert env.replace(apt="git", env={"B": "2", "A": "1"}) == dw.Environment(
        pip=["x"], apt=["git"], env=[("A", "1"), ("B", "2")])
    with pytest.raises(dw.DefinitionError, match=r"Environment\(pip=...\)"):
        env.replace(pip=["ok", " "])
    with pytest.raises(ValueError, match="64-hex-digit digest"):
        ArtifactRef(DIGEST, "json", 1).replace(digest="nope")
    with pytest.raises(TypeError, match="colour"):
        env.replace(colour="red")
    assert job().replace(attempt=2).attempt == 2


@pytest.mark.parametrize(("kwargs", "error"), [
    ({"pip": ["numpy", 3]}, r"Environment\(pip=...\) takes package specifiers as strings, got 3"),
    ({"apt": [""]}, r"Environment\(apt=...\) takes package specifiers as strings, got ''"),
    ({"pip": [None]}, r"got None"),
])
def test_environment_refuses_bad_package_specifiers(kwargs, error):
    with pytest.raises(dw.DefinitionError, match=error):
        dw.Environment(**kwargs)


def test_environment_converts_its_arguments():
    env = dw.Environment("img:1", "pkg", None, "3.11", {"B": "2", "A": "1"})
    assert (env.base_image, env.pip, env.apt, env.python) == ("img:1", ("pkg",), (), "3.11")
    assert env.env == (("A", "1"), ("B", "2"))  # sorted: one environment, one key
    assert dw.Environment(env=None).env == () and dw.Environment().pip == ()
