"""Output placeholders refuse what cannot be known while tracing, and say what to do."""

from __future__ import annotations

import copy
import pickle
from typing import NamedTuple

import pytest

import ductwork as dw
from ductwork import pipeline, step


@step
def make() -> list:
    return [1, 2]


@step(outputs=("train", "test"))
def split(rows):
    return rows, rows


def _trace_body(body):
    @pipeline
    def p():
        return body(make())

    return p


REFUSALS = [
    ("bool", lambda o: bool(o), "Cannot test the truth", "Decide inside a step"),
    ("if", lambda o: 1 if o else 0, "Cannot test the truth", "branch on a pipeline parameter"),
    ("len", lambda o: len(o), "Cannot take len()", "step.map"),
    ("iter", lambda o: list(o), "Cannot iterate", "some_step.map(output)"),
    ("for", lambda o: [x for x in o], "Cannot iterate", "pass it whole to a step"),
    ("add", lambda o: o + 1, "Cannot apply '+'", "Do the computation inside a step"),
    ("radd", lambda o: 1 + o, "Cannot apply '+'", "Do the computation inside a step"),
    ("mul", lambda o: o * 2, "Cannot apply '*'", "inside a step"),
    ("neg", lambda o: -o, "Cannot apply 'unary -'", "inside a step"),
    ("lt", lambda o: o < 3, "Cannot compare", "Decide inside a step"),
    ("eq", lambda o: o == 3, "Cannot compare", "Decide inside a step"),
    ("call", lambda o: o(), "Cannot call", "pass it to a step"),
    ("str", lambda o: str(o), "Cannot convert to text", "inside a step"),
    ("fstring", lambda o: f"{o}", "Cannot format", "inside a step"),
    ("index", lambda o: o[0], "Cannot index [0]", "outputs=(...)"),
    ("contains", lambda o: 1 in o, "Cannot test membership", "inside a step"),
    ("int", lambda o: int(o), "Cannot convert to int", "inside a step"),
    ("range", lambda o: range(o), "Cannot use as an integer", "inside a step"),
    ("attr", lambda o: o.shape, "Cannot read attribute '.shape'", "Select the part"),
]


@pytest.mark.parametrize(("label", "body", "what", "hint"), REFUSALS, ids=[r[0] for r in REFUSALS])
def test_refusals_name_step_file_line_and_fix(label, body, what, hint):
    p = _trace_body(body)
    with pytest.raises(dw.TraceError) as err:
        p.graph()
    message = str(err.value)
    assert what in message
    assert hint in message
    assert "step 'make'" in message
    assert f"{__file__}:" in message  # the user's file and line, not ductwork's


def test_refusal_points_at_the_users_line():
    @pipeline
    def p():
        rows = make()
        if rows:  # the offending line
            return rows
        return None

    with pytest.raises(dw.TraceError) as err:
        p.graph()
    import inspect

    src, start = inspect.getsourcelines(p.fn)
    line = start + next(i for i, s in enumerate(src) if "the offending line" in s)
    assert f"{__file__}:{line}" in str(err.value)


def test_attribute_refusal_keeps_hasattr_working():
    @pipeline
    def p():
        out = make()
        assert not hasattr(out, "shape")
        assert getattr(out, "shape", "d") == "d"
        return out

    p.graph()


def test_output_is_immutable_small_and_copyable():
    out = dw.Output("load", "output")
    assert out.key == ("load", "output")
    with pytest.raises(AttributeError):
        out.node = "x"  # type: ignore[misc]
    assert not hasattr(out, "__dict__")
    assert copy.deepcopy(out) is out
    again = pickle.loads(pickle.dumps(out))
    assert again.key == out.key
    assert repr(out) == "<Output of step 'load'>"
    assert repr(dw.Output("split", "train")) == "<Output 'train' of step 'split'>"


def test_multiple_outputs_unpack_select_and_refuse_unknown_names():
    seen = {}

    @pipeline
    def p():
        res = split(make())
        train, test = res
        seen["by_name"] = (res.train.key, res.test.key)
        seen["by_index"] = (res[0].key, res[1].key)
        seen["unpacked"] = (train.key, test.key)
        seen["names"] = res.names
        return res

    p.graph()
    assert seen["by_name"] == seen["by_index"] == seen["unpacked"] == (
        ("split", "train"), ("split", "test"))
    assert seen["names"] == ("train", "test")

    @pipeline
    def q():
        return split(make()).tain

    with pytest.raises(dw.TraceError, match="has no output named 'tain'.*'train', 'test'"):
        q.graph()

    @pipeline
    def r():
        return 1 if split(make()) else 0

    with pytest.raises(dw.TraceError, match="Cannot test the truth of the outputs of step 'split'"):
        r.graph()


class Tally(NamedTuple):
    count: int
    index: list
    names: list


@step
def tally(rows: list) -> Tally:
    return Tally(len(rows), list(range(len(rows))), [str(r) for r in rows])


@step
def show(value):
    return value


def test_outputs_named_like_tuple_methods_select_the_output():
    """`count`, `index` (tuple methods) and `names` are fine NamedTuple fields and outputs."""
    seen = {}

    @pipeline
    def p():
        res = tally(make())
        count, index, names = res
        seen["by_name"] = (res.count.key, res.index.key, res.names.key)
        seen["by_index"] = (res[0].key, res[1].key, res[2].key)
        seen["unpacked"] = (count.key, index.key, names.key)
        return {"count": show(res.count), "index": show(res.index), "names": res.names}

    p.graph()
    assert seen["by_name"] == seen["by_index"] == seen["unpacked"] == (
        ("tally", "count"), ("tally", "index"), ("tally", "names"))
    assert p.run().outputs == {"count": 2, "index": [0, 1], "names": ["1", "2"]}
    assert tally.fn([5]).count == 1 and tally([5]).index == [0]  # plain calls: the NamedTuple

    @step(outputs=("total", "count"))
    def both(rows):
        return sum(rows), len(rows)

    @pipeline
    def q():
        return both(make()).count

    assert q.run().outputs == 2


def test_outputs_still_refuse_an_unknown_name_and_keep_tuple_behaviour():
    seen = {}

    @pipeline
    def p():
        res = tally(make())
        seen["repr"] = repr(res)
        seen["len"] = len(res)
        seen["names"] = split(make()).names  # no output called `names`: the declared names
        with pytest.raises(dw.TraceError, match="has no output named 'cont'.*'count', 'index'"):
            res.cont  # noqa: B018
        return res

    p.graph()
    assert seen["repr"] == "<Outputs count, index, names of step 'tally'>"
    assert seen["len"] == 3
    assert seen["names"] == ("train", "test")
