"""Code fingerprints: what changes them, what does not, and that the memo is never stale."""

from __future__ import annotations

import functools
import importlib
import importlib.util
import json
import linecache
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from ductwork.runtime.keys.fingerprint import CodeFingerprint, diff_components, fingerprint
from ductwork.runtime.keys.hashing import hash_tagged

PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"


@pytest.fixture
def load(tmp_path: Path, import_file: Any):
    """Return ``load(source, version="v1")``: import source as one module name per test.

    Each version lives in its own folder, so a rewrite never meets a stale .pyc or
    linecache entry of the same path and size.
    """
    name = f"fpmod_{uuid.uuid4().hex[:8]}"

    def load(source: str, version: str = "v1", module_name: str = name) -> ModuleType:
        folder = tmp_path / version
        folder.mkdir(exist_ok=True)
        path = folder / f"{module_name}.py"
        path.write_text(textwrap.dedent(source))
        return import_file(path, module_name)

    load.name = name  # type: ignore[attr-defined]
    return load


PIPELINE = '''
"""A user module with steps and helpers."""
from ductwork import step

THRESHOLD = 3


def leaf(x):
    """Innermost helper."""
    return x + 1  # the value that matters


def mid(x):
    return leaf(x) * THRESHOLD


@step(retries=3)
def uses(x: int) -> int:
    return mid(x)


@step
def independent(x: int) -> int:
    return x - 1
'''


def test_fingerprint_names_what_it_reaches(load):
    mod = load(PIPELINE)
    fp = fingerprint(mod.uses)
    n = load.name
    assert isinstance(fp, CodeFingerprint)
    assert set(fp.components) == {
        f"fn:{n}.uses",
        f"fn:{n}.mid",
        f"fn:{n}.leaf",
        f"const:{n}.THRESHOLD",
        "python",
    }
    assert fp.components["python"] == PYTHON
    assert fp.digest == hash_tagged("Code", sorted(fp.components.items()))
    assert set(fingerprint(mod.independent).components) == {f"fn:{n}.independent", "python"}


def test_comments_docstrings_and_positions_do_not_count(load):
    before = fingerprint(load(PIPELINE).uses)
    edited = PIPELINE.replace("# the value that matters", "# reworded, longer comment")
    edited = edited.replace('"""Innermost helper."""', '"""Rewritten\n    docstring."""')
    edited = edited.replace('"""A user module', '# a new comment line\n"""A module')
    assert fingerprint(load(edited, "v2").uses) == before
    # Move leaf below the steps that call it.
    leaf = PIPELINE[PIPELINE.index("def leaf") : PIPELINE.index("def mid")]
    moved = PIPELINE.replace(leaf, "") + "\n\n" + leaf
    assert fingerprint(load(moved, "v3").uses) == before


def test_helper_two_calls_deep_changes_exactly_the_steps_reaching_it(load):
    v1 = load(PIPELINE)
    uses, independent = fingerprint(v1.uses), fingerprint(v1.independent)
    v2 = load(PIPELINE.replace("return x + 1", "return x + 2"), "v2")
    assert fingerprint(v2.independent) == independent
    changed = fingerprint(v2.uses)
    assert changed.digest != uses.digest
    assert diff_components(uses.components, changed.components) == [
        f"helper function {load.name}.leaf changed"
    ]


def test_module_constant_counts(load):
    before = fingerprint(load(PIPELINE).uses)
    after = fingerprint(load(PIPELINE.replace("THRESHOLD = 3", "THRESHOLD = 4"), "v2").uses)
    assert diff_components(before.components, after.components) == [
        f"module constant {load.name}.THRESHOLD changed"
    ]


def test_step_options_and_ductwork_decorators_do_not_count(load):
    before = fingerprint(load(PIPELINE).uses)
    after = load(PIPELINE.replace("@step(retries=3)", "@step(retries=1, cache=False)"), "v2")
    assert fingerprint(after.uses) == before
    # A helper that is itself a step keeps its options out of its callers' fingerprints.
    helper_step = PIPELINE.replace("def leaf", "@step(retries=2)\ndef leaf")
    again = fingerprint(load(helper_step, "v3").uses)
    assert again == fingerprint(load(helper_step.replace("retries=2", "retries=5"), "v4").uses)


CLASSES = """
import dataclasses


@dataclasses.dataclass
class Config:
    lr: float = 0.1


CONFIG = Config()


class Base:
    def prepare(self, x):
        return x


class Model(Base):
    def fit(self, x):
        return self.prepare(x) * CONFIG.lr

    @property
    def size(self):
        return 1


def train(x):
    return Model().fit(x)
"""


def test_class_methods_bases_and_dataclass_fields_count(load):
    n = load.name
    base = fingerprint(load(CLASSES).train)
    assert {f"class:{n}.Model", f"class:{n}.Base", f"fn:{n}.Model.fit"} <= set(base.components)
    for i, (old, new) in enumerate(
        [
            ("return self.prepare(x) * CONFIG.lr", "return self.prepare(x) / CONFIG.lr"),
            (
                "    def prepare(self, x):\n        return x",
                "    def prepare(self, x):\n        return -x",
            ),
            ("return 1", "return 2"),
            ("lr: float = 0.1", "lr: float = 0.2"),
        ]
    ):
        assert old in CLASSES
        changed = fingerprint(load(CLASSES.replace(old, new), f"v{i + 2}").train)
        assert changed.digest != base.digest, new


def test_closure_and_default_arguments_count(load):
    source = """
    def make(k):
        def scaled(x):
            return x * k
        return scaled

    times = make(2)
    FACTOR = 3

    def with_default(x, factor=FACTOR, *, offset=1):
        return x * factor + offset

    def step_fn(x):
        return times(x) + with_default(x)
    """
    base = fingerprint(load(source).step_fn)
    n = load.name
    assert base.components[f"closure:{n}.make.<locals>.scaled:k"]
    closure = fingerprint(load(source.replace("make(2)", "make(5)"), "v2").step_fn)
    assert diff_components(base.components, closure.components) == [
        f"closure variable k of {n}.make.<locals>.scaled changed"
    ]
    default = fingerprint(load(source.replace("FACTOR = 3", "FACTOR = 4"), "v3").step_fn)
    assert diff_components(base.components, default.components) == [
        f"default argument factor of {n}.with_default changed"
    ]
    kwonly = fingerprint(load(source.replace("offset=1", "offset=0"), "v4").step_fn)
    assert kwonly.digest != base.digest


def test_recursion_and_mutual_recursion_terminate(load):
    source = """
    def is_even(n):
        return True if n == 0 else is_odd(n - 1)

    def is_odd(n):
        return False if n == 0 else is_even(n - 1)

    def fact(n):
        return 1 if n < 2 else n * fact(n - 1)

    def step_fn(n):
        return is_even(n), fact(n)
    """
    fp = fingerprint(load(source).step_fn)
    assert {f"fn:{load.name}.{f}" for f in ("is_even", "is_odd", "fact")} <= set(fp.components)
    changed = load(source.replace("n == 0 else is_even", "n < 1 else is_even"), "v2")
    assert fingerprint(changed.step_fn).digest != fp.digest


def test_libraries_count_by_version_not_source(load):
    np = pytest.importorskip("numpy")
    mod = load(
        """
        import json
        from json import dumps
        import numpy as np

        def step_fn(x):
            return json.loads(dumps(x)), np.mean(x), np.linalg.norm(x)
        """
    )
    fp = fingerprint(mod.step_fn)
    assert fp.components["pkg:numpy"] == np.__version__
    assert fp.components["python"] == PYTHON
    assert set(fp.components) == {f"fn:{load.name}.step_fn", "pkg:numpy", "python"}


def test_swapping_what_names_refer_to_counts(load):
    source = """
    def a(x):
        return x + 1

    def b(x):
        return x * 2

    first, second = a, b

    def step_fn(x):
        return second(first(x))
    """
    before = fingerprint(load(source).step_fn)
    swapped = source.replace("first, second = a, b", "first, second = b, a")
    after = fingerprint(load(swapped, "v2").step_fn)
    assert set(before.components) == set(after.components)
    assert before.digest != after.digest


def test_unhashable_module_objects_do_not_crash_and_still_count(load):
    source = """
    import logging
    import re
    import threading

    log = logging.getLogger(__name__)
    PATTERN = re.compile(r"a+")
    LOCK = threading.Lock()

    def step_fn(text):
        with LOCK:
            log.debug("matching")
            return PATTERN.findall(text)
    """
    n = load.name
    fp = fingerprint(load(source).step_fn)
    assert fp.components[f"const:{n}.log"].startswith("assign:")
    changed = fingerprint(load(source.replace('r"a+"', 'r"b+"'), "v2").step_fn)
    assert diff_components(fp.components, changed.components) == [
        f"module constant {n}.PATTERN changed"
    ]


def test_global_state_is_not_a_constant(load):
    mod = load(
        """
        CALLS = 0

        def step_fn(x):
            global CALLS
            CALLS += 1
            return x
        """
    )
    before = fingerprint(mod.step_fn)
    mod.step_fn(1)
    assert fingerprint(mod.step_fn) == before


def test_containers_of_functions_reach_them(load):
    source = """
    def double(x):
        return 2 * x

    HANDLERS = {"double": double, "names": ["a"]}

    def step_fn(kind, x):
        return HANDLERS[kind](x)
    """
    fp = fingerprint(load(source).step_fn)
    assert f"fn:{load.name}.double" in fp.components
    changed = fingerprint(load(source.replace("2 * x", "3 * x"), "v2").step_fn)
    assert changed.digest != fp.digest


def test_imports_inside_the_function_are_followed(load, tmp_path, monkeypatch):
    helper_name = f"fphelper_{uuid.uuid4().hex[:8]}"
    monkeypatch.syspath_prepend(str(tmp_path / "lib"))
    (tmp_path / "lib").mkdir()
    helper = tmp_path / "lib" / f"{helper_name}.py"
    helper.write_text("def helper(x):\n    return x + 1\n")
    source = f"""
    def step_fn(x):
        import numpy
        from {helper_name} import helper
        return helper(x)
    """
    fp = fingerprint(load(source).step_fn)
    assert f"fn:{helper_name}.helper" in fp.components
    assert "pkg:numpy" in fp.components


def test_attribute_chains_through_user_modules(load, tmp_path, monkeypatch):
    pkg = f"fppkg_{uuid.uuid4().hex[:8]}"
    (tmp_path / "lib" / pkg).mkdir(parents=True)
    (tmp_path / "lib" / pkg / "__init__.py").write_text("")
    (tmp_path / "lib" / pkg / "tools.py").write_text("LIMIT = 5\n\ndef clip(x):\n    return x\n")
    monkeypatch.syspath_prepend(str(tmp_path / "lib"))
    source = f"""
    import {pkg}.tools

    def step_fn(x):
        return {pkg}.tools.clip(x) + {pkg}.tools.LIMIT
    """
    fp = fingerprint(load(source).step_fn)
    assert {f"fn:{pkg}.tools.clip", f"const:{pkg}.tools.LIMIT"} <= set(fp.components)
    assert not any(key.startswith("module:") for key in fp.components)


def test_classes_made_without_a_class_statement(load):
    source = """
    import collections
    import enum

    Point = collections.namedtuple("Point", "x y")
    Color = enum.Enum("Color", "RED GREEN")

    def step_fn():
        return Point(1, 2), Color.RED
    """
    n = load.name
    fp = fingerprint(load(source).step_fn)
    assert {f"class:{n}.Point", f"class:{n}.Color"} <= set(fp.components)
    for i, (old, new) in enumerate([('"x y"', '"x z"'), ('"RED GREEN"', '"RED BLUE"')]):
        changed = fingerprint(load(source.replace(old, new), f"v{i + 2}").step_fn)
        assert changed.digest != fp.digest


def test_objects_holding_functions_and_containers_holding_themselves(load):
    source = """
    import types

    def clean(x):
        return x.strip()

    TRANSFORM = types.SimpleNamespace(func=clean)
    LOOP = [1]
    LOOP.append(LOOP)

    def step_fn(x):
        return TRANSFORM.func(x), len(LOOP)
    """
    fp = fingerprint(load(source).step_fn)
    assert f"fn:{load.name}.clean" in fp.components
    changed = fingerprint(load(source.replace("x.strip()", "x.lower()"), "v2").step_fn)
    assert changed.digest != fp.digest


def test_lambdas(load):
    source = """
    square = lambda x: x * x
    pair = (lambda x: x + 1, lambda x: x - 1)

    def step_fn(x):
        return square(x) + pair[0](x) + pair[1](x)
    """
    fp = fingerprint(load(source).step_fn)
    assert fp == fingerprint(
        load(source.replace("square =", "# lambda\n    square ="), "v2").step_fn
    )
    assert fp != fingerprint(load(source.replace("x * x", "x * x * x"), "v3").step_fn)
    assert fp != fingerprint(load(source.replace("x - 1", "x - 2"), "v4").step_fn)


def test_partial_bound_method_and_callable_instance(load):
    mod = load(
        """
        class Scaler:
            def __init__(self, k=2):
                self.k = k

            def __call__(self, x):
                return self.scale(x)

            def scale(self, x):
                return x * self.k

        def add(x, y):
            return x + y
        """
    )
    n = load.name
    p3, p4 = fingerprint(functools.partial(mod.add, 3)), fingerprint(functools.partial(mod.add, 4))
    assert f"fn:{n}.add" in p3.components and p3.digest != p4.digest
    assert p3 == fingerprint(functools.partial(mod.add, 3))
    method = fingerprint(mod.Scaler().scale)
    assert {f"fn:{n}.Scaler.scale", f"class:{n}.Scaler"} <= set(method.components)
    instance = fingerprint(mod.Scaler())
    assert f"fn:{n}.Scaler.__call__" in instance.components


def test_diff_components_sentences():
    old = {
        "fn:m.clean": "1",
        "const:m.N": "1",
        "class:m.Model": "1",
        "closure:m.f:k": "1",
        "default:m.g:n": "1",
        "fn:m.gone": "1",
        "pkg:numpy": "2.4.5",
        "python": "3.11",
    }
    new = {
        **old,
        "fn:m.clean": "2",
        "const:m.N": "2",
        "class:m.Model": "2",
        "closure:m.f:k": "2",
        "default:m.g:n": "2",
        "fn:m.extra": "1",
        "pkg:numpy": "2.4.6",
        "python": "3.12",
    }
    del new["fn:m.gone"]
    assert diff_components(old, new) == [
        "class m.Model changed",
        "closure variable k of m.f changed",
        "module constant m.N changed",
        "default argument n of m.g changed",
        "helper function m.clean changed",
        "m.extra is new",
        "m.gone is no longer used",
        "package numpy 2.4.5 -> 2.4.6",
        "Python 3.11 -> 3.12",
    ]
    assert diff_components(old, old) == []


FRESH = """
import json

import numpy as np

SETTINGS = {"b": 2, "a": {1.5, "x", None}}
TAGS = frozenset({"red", "green", "blue"})


class Thing:
    def go(self, x):
        return json.dumps(sorted(TAGS)) + str(SETTINGS["b"] * x)


def step_fn(x):
    return Thing().go(x), np.zeros(3), {n for n in TAGS}
"""


@pytest.mark.slow
def test_same_digest_in_a_fresh_interpreter(tmp_path, monkeypatch):
    pytest.importorskip("numpy")
    name = f"fpfresh_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(FRESH)
    monkeypatch.syspath_prepend(str(tmp_path))
    here = fingerprint(importlib.import_module(name).step_fn)
    script = (
        f"import sys; sys.path.insert(0, {str(tmp_path)!r}); import json, {name}\n"
        "from ductwork.runtime.keys.fingerprint import fingerprint\n"
        f"fp = fingerprint({name}.step_fn)\n"
        "print(json.dumps([fp.digest, fp.components]))\n"
    )
    for seed in ("1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True
        ).stdout
        digest, components = json.loads(out)
        assert components == here.components
        assert digest == here.digest


EXECD = """
N = 2

def helper(x):
    return x * 3

def step_fn(x):
    # a comment
    return helper(x) + N + (lambda y: y)(x)
"""


def test_exec_code_falls_back_to_the_code_object():
    def run(source: str) -> CodeFingerprint:
        namespace = {"__name__": "__main__"}
        exec(compile(source, "<string>", "exec"), namespace)
        return fingerprint(namespace["step_fn"])

    fp = run(EXECD)
    assert set(fp.components) == {
        "fn:__main__.step_fn",
        "fn:__main__.helper",
        "const:__main__.N",
        "python",
    }
    assert run(EXECD) == fp
    assert run("\n\n" + EXECD.replace("# a comment", "# other\n    # lines")) == fp
    assert run(EXECD.replace("x * 3", "x * 4")) != fp
    assert run(EXECD.replace("N = 2", "N = 3")) != fp


def test_exec_classes_in_a_fake_main():
    source = "class Model:\n    def fit(self, x):\n        return x * 2\n\n"
    source += "def step_fn(x):\n    return Model().fit(x)\n"

    def run(text: str) -> CodeFingerprint:
        namespace = {"__name__": "__main__"}
        exec(compile(text, "<string>", "exec"), namespace)
        return fingerprint(namespace["step_fn"])

    fp = run(source)
    assert {"class:__main__.Model", "fn:__main__.Model.fit"} <= set(fp.components)
    assert run(source) == fp
    assert run(source.replace("x * 2", "x * 3")) != fp


def test_notebook_cells_count_as_user_code_and_redefinitions_are_seen():
    namespace = {"__name__": "__main__"}
    cells = iter(range(10**6))

    def cell(source: str) -> None:
        filename = f"<ipython-input-{next(cells)}-{uuid.uuid4().hex[:8]}>"
        lines = textwrap.dedent(source).splitlines(True)
        linecache.cache[filename] = (sum(map(len, lines)), None, lines, filename)
        exec(compile("".join(lines), filename, "exec"), namespace)

    cell("def helper(x):\n    return x + 1\n")
    cell(
        """
        import ductwork as dw

        @dw.step
        def train(x):
            '''Train.'''
            return helper(x)
        """
    )
    first = fingerprint(namespace["train"])
    assert set(first.components) == {"fn:__main__.train", "fn:__main__.helper", "python"}
    cell("def helper(x):\n    # same code, new comment\n    return x + 1\n")
    assert fingerprint(namespace["train"]) == first
    cell("def helper(x):\n    return x + 2\n")
    assert diff_components(first.components, fingerprint(namespace["train"]).components) == [
        "helper function __main__.helper changed"
    ]


def test_memo_is_fresh_after_reload_and_code_swaps(tmp_path, monkeypatch):
    name = f"fpreload_{uuid.uuid4().hex[:8]}"
    path = tmp_path / f"{name}.py"
    path.write_text("def helper(x):\n    return x + 1\n\ndef step_fn(x):\n    return helper(x)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    mod = importlib.import_module(name)
    old_step = mod.step_fn
    before = fingerprint(mod.step_fn)
    assert fingerprint(mod.step_fn) is before  # memoized
    path.write_text("def helper(x):\n    return x + 2\n\ndef step_fn(x):\n    return helper(x)\n")
    stat = path.stat()
    os.utime(path, (stat.st_atime + 10, stat.st_mtime + 10))  # past the .pyc's mtime check
    importlib.reload(mod)
    after = fingerprint(mod.step_fn)
    assert after.digest != before.digest
    # The old function object now calls the reloaded helper: its fingerprint says so.
    assert (
        fingerprint(old_step).components[f"fn:{name}.helper"]
        == after.components[f"fn:{name}.helper"]
    )

    # Autoreload tools swap __code__ in place on the same function object.
    def replacement(x):
        return helper(x) * 10  # noqa: F821 -- resolved in the module's globals

    swapped = mod.step_fn
    swapped.__code__ = replacement.__code__
    assert fingerprint(swapped).digest != after.digest


def test_warm_calls_are_memoized(load, count_calls):
    """A warm fingerprint is a lookup: a small, fixed number of calls, far fewer than the
    cold walk (counted, not timed: the speed is in benchmarks/)."""
    mod = load(CLASSES)
    cold = count_calls(lambda: fingerprint(mod.train))
    warm = count_calls(lambda: fingerprint(mod.train))
    assert warm * 10 < cold, (warm, cold)
    assert count_calls(lambda: [fingerprint(mod.train) for _ in range(100)]) <= 101 * warm
