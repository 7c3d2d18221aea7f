"""Cache truth across processes: baseline run, one edit, a fresh rerun -- never stale.

Each test runs a user project in fresh interpreters (see ``truth``): what a real
user does between two runs is edit a file and start Python again.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.runtime.keys.truth import Lab, ran, why


@pytest.fixture
def lab(tmp_path: Path) -> Lab:
    return Lab(tmp_path)


# -- 10: the code of input values' classes -------------------------------------------------

MODELS = """
import dataclasses
import enum
from typing import NamedTuple


class Model:
    def __init__(self, w):
        self.w = w

    def predict(self, x):
        return x * self.w


@dataclasses.dataclass
class Scaler:
    k: int

    def apply(self, x):
        return x + self.k


class Mode(enum.Enum):
    FAST = 1
    SLOW = 2


class Pair(NamedTuple):
    a: int
    b: int

    @property
    def total(self):
        return self.a + self.b
"""

PIPE_MODELS = """
from ductwork import pipeline, step
from models import Model, Scaler, Mode, Pair


@step
def fit(n: int):
    return Model(n)


@step
def predict(model, x: int) -> int:
    return model.predict(x)


@step
def scale(s, x: int) -> int:
    return s.apply(x)


@step
def mode_value(m) -> int:
    return m.value


@step
def total(pair) -> int:
    return pair.total


@pipeline
def p():
    return [predict(fit(2), 5), scale(Scaler(1), 5), mode_value(Mode.FAST), total(Pair(1, 2))]
"""


@pytest.mark.parametrize(
    ("old", "new", "step", "cls"),
    [
        ("return x * self.w", "return x * self.w + 100", "predict", "models.Model"),
        ("return x + self.k", "return x + self.k + 100", "scale", "models.Scaler"),
        ("FAST = 1", "FAST = 7", "mode_value", "models.Mode"),
        ("return self.a + self.b", "return self.a + self.b + 100", "total", "models.Pair"),
    ],
)
def test_editing_a_method_of_an_input_values_class_reruns_its_consumer(lab, old, new, step, cls):
    lab.write("models", MODELS)
    lab.write("pipe", PIPE_MODELS, main=True)
    first = lab.script()
    assert ran(first) == set(first["steps"])
    assert lab.script()["steps"][step]["cached"]
    lab.write("models", MODELS.replace(old, new))
    again = lab.script()
    assert step in ran(again), again
    assert cls in why(again, step), why(again, step)
    assert again["outputs"] != first["outputs"]


def test_an_unrelated_edit_of_the_classes_module_keeps_consumers_cached(lab):
    lab.write("models", MODELS)
    lab.write("pipe", PIPE_MODELS, main=True)
    lab.script()
    lab.write("models", MODELS + "\n\nclass Unused:\n    def f(self):\n        return 1\n")
    assert ran(lab.script()) == set()


# -- 11: dict order ------------------------------------------------------------------------

PIPE_DICT = """
import json
from ductwork import pipeline, step


@step
def dump(d: dict) -> str:
    return json.dumps(d)


@pipeline
def p():
    return dump(D)
"""


def test_dict_insertion_order_is_part_of_the_key(lab):
    lab.write("pipe", PIPE_DICT + '\nD = {"a": 1, "b": 2}\n', main=True)
    assert lab.script()["outputs"] == repr('{"a": 1, "b": 2}')
    lab.write("pipe", PIPE_DICT + '\nD = {"b": 2, "a": 1}\n', main=True)
    again = lab.script()
    assert again["outputs"] == repr('{"b": 2, "a": 1}'), again


# -- 12: derived constants -----------------------------------------------------------------

CONSTS = "K = 3\n"

PIPE_DERIVED = """
import consts
from consts import K
from ductwork import pipeline, step

FACTOR = K * 10


class Obj:
    def __init__(self, k):
        self.k = k


O = Obj(consts.K)


class C:
    pass


C.K = 3


@step
def factor(x: int) -> int:
    return x * FACTOR


@step
def obj(x: int) -> int:
    return x * O.k


@step
def attr(x: int) -> int:
    return x * C.K


@pipeline
def p():
    return [factor(1), obj(1), attr(1)]
"""


def test_constants_derived_from_an_edited_constant_rerun(lab):
    lab.write("consts", CONSTS)
    lab.write("pipe", PIPE_DERIVED, main=True)
    assert lab.script()["outputs"] == "[30, 3, 3]"
    lab.write("consts", "K = 4\n")
    again = lab.script()
    assert again["outputs"] == "[40, 4, 3]", again
    assert ran(again) == {"factor", "obj"}


def test_a_class_attribute_assigned_after_the_class_statement_counts(lab):
    lab.write("consts", CONSTS)
    lab.write("pipe", PIPE_DERIVED, main=True)
    lab.script()
    lab.write("pipe", PIPE_DERIVED.replace("C.K = 3", "C.K = 5"), main=True)
    again = lab.script()
    assert again["outputs"] == "[30, 3, 5]", again
    assert ran(again) == {"attr"}


def test_an_unrelated_edit_keeps_derived_constants_cached(lab):
    lab.write("consts", CONSTS)
    lab.write("pipe", PIPE_DERIVED, main=True)
    lab.script()
    lab.write("consts", "K = 3\nOTHER = 9\n")
    assert ran(lab.script()) == set()


# -- 13: arrays ----------------------------------------------------------------------------

PIPE_ARRAY = """
import numpy as np
from ductwork import pipeline, step


@step
def flat(a) -> list:
    return a.ravel("K").tolist()


@pipeline
def p():
    return flat(A)
"""


def test_memory_order_of_an_array_is_part_of_the_key(lab):
    lab.write("pipe", PIPE_ARRAY + "\nA = np.arange(6).reshape(2, 3)\n", main=True)
    assert lab.script()["outputs"] == "[0, 1, 2, 3, 4, 5]"
    lab.write(
        "pipe", PIPE_ARRAY + "\nA = np.asfortranarray(np.arange(6).reshape(2, 3))\n", main=True
    )
    again = lab.script()
    assert again["outputs"] == "[0, 3, 1, 4, 2, 5]", again


def test_byte_order_of_an_array_is_not_a_miss(lab):
    lab.write("pipe", PIPE_ARRAY + '\nA = np.arange(6, dtype="<i8")\n', main=True)
    lab.script()
    lab.write("pipe", PIPE_ARRAY + '\nA = np.arange(6, dtype=">i8")\n', main=True)
    assert ran(lab.script()) == set()


# -- 14: how the code was started ----------------------------------------------------------

PIPE_START = """
from ductwork import pipeline, step
from dataclasses import dataclass


@dataclass
class Config:
    n: int


def helper(x):
    return x + 1


@step
def prep(c: Config) -> int:
    return helper(c.n)


@step
def twice(x: int) -> int:
    return 2 * x


@pipeline
def p():
    return twice(prep(Config(3)))
"""


def test_script_cli_and_import_share_one_cache(lab):
    lab.write("pipe", PIPE_START, main=True)
    first = lab.script()
    assert ran(first) == {"prep", "twice"}
    by_cli = lab.cli()
    assert ran(by_cli) == set(), by_cli
    by_import = lab.imported()
    assert ran(by_import) == set(), by_import
    lab.write("pipe", PIPE_START.replace("x + 1", "x + 2"), main=True)
    edited = lab.imported()
    assert ran(edited) == {"prep", "twice"}
    assert "pipe.helper" in why(edited, "prep")


# -- 15: env_vars --------------------------------------------------------------------------

PIPE_ENV = """
import os
from ductwork import pipeline, step


@step(env_vars=["DW_TRUTH_MODE"])
def mode() -> str:
    return os.environ.get("DW_TRUTH_MODE", "none")


@step
def other() -> int:
    return 1


@pipeline
def p():
    return [mode(), other()]
"""


def test_named_environment_variables_are_part_of_the_key(lab):
    lab.write("pipe", PIPE_ENV, main=True)
    assert lab.script()["outputs"] == "['none', 1]"
    again = lab.script(DW_TRUTH_MODE="fast")
    assert again["outputs"] == "['fast', 1]", again
    assert ran(again) == {"mode"}
    assert "DW_TRUTH_MODE" in why(again, "mode")
    assert ran(lab.script(DW_TRUTH_MODE="fast", UNRELATED="1")) == set()


def test_a_script_inside_a_package_is_named_by_its_package(tmp_path):
    from ductwork.runtime.keys.origin import _file_module

    package = tmp_path / "proj" / "pkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "pipe.py").write_text("")
    assert _file_module(str(package / "pipe.py")) == "pkg.pipe"
    assert _file_module(str(tmp_path / "proj" / "top.py")) == "top"
    assert _file_module(str(tmp_path / "my-pipe.py")) == "ductwork_user_module"
