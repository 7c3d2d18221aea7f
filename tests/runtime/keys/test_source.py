"""The normalized source behind fingerprints: the same dumps and definitions as before.

``canonical`` and the index of definitions were rewritten for speed; the reference
versions below are the ones every fingerprint was made with before. A different dump
would change cache keys, a different index would find another definition (or none, and
fall back to bytecode). Compared on crafted code and on the stdlib's files.
"""

from __future__ import annotations

import ast
import linecache
import os
import sysconfig
import textwrap
from types import FunctionType
from typing import Any

import pytest

from ductwork.runtime.keys import source
from ductwork.runtime.keys.fingerprint import fingerprint


def reference_canon(node: Any, drop: Any, top: bool = False) -> Any:
    """The dump as it was: a plain walk over ``_fields``."""
    if isinstance(node, list):
        return [reference_canon(x, drop) for x in node]
    if not isinstance(node, ast.AST):
        return node
    out: list[Any] = [type(node).__name__]
    for field in node._fields:
        value = getattr(node, field, None)
        if field == "type_comment":
            continue
        if field == "body" and source._has_docstring(node):
            value = value[1:]
        elif field == "decorator_list":
            value = [d for d in value if not (top and drop(d))]
        out.append(reference_canon(value, drop))
    return tuple(out)


def reference_index(tree: ast.Module) -> dict[Any, list[ast.AST]]:
    """The index as it was: every node visited."""
    index: dict[Any, list[ast.AST]] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                first = min([d.lineno for d in child.decorator_list] + [child.lineno])
                index.setdefault((child.name, first), []).append(child)
                visit(child, f"{prefix}{child.name}.<locals>.")
            elif isinstance(child, ast.ClassDef):
                index.setdefault(prefix + child.name, []).append(child)
                visit(child, f"{prefix}{child.name}.")
            elif isinstance(child, ast.Lambda):
                index.setdefault(("<lambda>", child.lineno), []).append(child)
                visit(child, f"{prefix}<lambda>.<locals>.")
            else:
                visit(child, prefix)

    visit(tree, "")
    return index


CRAFTED = '''
"""Module docstring."""
import functools
from ductwork import step


@functools.cache
@step(retries=2)
def decorated(x: int, *a, k=lambda v: v + 1, **kw) -> int:  # type: ignore
    """Docstring."""
    f = lambda y: (lambda z: z)(y)  # noqa: E731
    return f(x) + k(x)


async def coroutine(x):
    async with x as y:
        async for z in y:
            yield z


class Outer:
    """Class docstring."""
    k = [lambda: 1, lambda: 2]

    class Inner:
        def method(self):
            class Local:
                pass
            return Local

    @property
    def prop(self):
        return 1


def shapes(v):
    try:
        class InTry: pass
    except ValueError:
        class InTry: pass
    else:
        class InTry: pass
    finally:
        class InTry: pass
    match v:
        case [x, *_] if x:
            def in_case(): return x
        case {"k": 1}:
            class InCase: pass
    while v:
        def in_loop(): pass
    else:
        def in_else(): pass
    with open(v) as f:
        def in_with(): return f
    for i in v:
        pass
    else:
        class InTry: pass
    return [lambda: i for i in v] + [(lambda: 0), (lambda: 1)]


if True:
    def conditional(x): return x
else:
    def conditional(x): return -x
'''

STDLIB = ["argparse", "dataclasses", "typing", "enum", "functools", "inspect", "ast", "pathlib",
          "collections/__init__", "asyncio/base_events", "email/utils", "tarfile", "unittest/case"]


def _trees() -> list[tuple[str, ast.Module]]:
    stdlib = sysconfig.get_paths()["stdlib"]
    out = [("crafted", ast.parse(CRAFTED))]
    for name in STDLIB:
        with open(os.path.join(stdlib, f"{name}.py"), encoding="utf-8") as f:
            out.append((name, ast.parse(f.read())))
    return out


TREES = _trees()


def _step_decorator(d: ast.expr) -> bool:
    return isinstance(d, ast.Call) and getattr(d.func, "id", None) == "step"


@pytest.mark.parametrize("name, tree", TREES, ids=[n for n, _ in TREES])
def test_canonical_dumps_are_unchanged(name: str, tree: ast.Module) -> None:
    nodes = [tree, *(n for n in ast.walk(tree) if isinstance(
        n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda))]
    for drop in (lambda d: True, source._keep, _step_decorator):
        for node in nodes:
            assert source.canonical(node, drop) == repr(reference_canon(node, drop, top=True))


@pytest.mark.parametrize("name, tree", TREES, ids=[n for n, _ in TREES])
def test_index_finds_the_same_definitions(name: str, tree: ast.Module) -> None:
    old = reference_index(tree)
    new = source._build_index(tree)
    assert not any(k[0] == "<lambda>" for k in new if isinstance(k, tuple))  # not yet
    lambdas = source._lambda_index(tree)
    assert lambdas.pop(source._LAMBDAS) == []
    # Functions and classes in the order a full walk finds them (class_node takes the last
    # that fits); lambdas by line, where only how many share a line is ever used.
    old_lambdas = {k: v for k, v in old.items() if isinstance(k, tuple) and k[0] == "<lambda>"}
    assert new == {k: v for k, v in old.items() if k not in old_lambdas}
    assert {k: sorted(map(id, v)) for k, v in lambdas.items()} == {
        k: sorted(map(id, v)) for k, v in old_lambdas.items()
    }


def test_lambdas_are_found_once_looked_up(tmp_path: Any) -> None:
    path = tmp_path / "lams.py"
    path.write_text(textwrap.dedent("""\
        one = lambda x: x + 1
        two = (lambda x: x, lambda x: x * 2)
        def holder(k=lambda v: v - 1):
            return k
    """))
    namespace: dict[str, Any] = {"__name__": "lams"}
    exec(compile(path.read_text(), str(path), "exec"), namespace)
    try:
        assert isinstance(source._find_function(namespace["one"].__code__), ast.Lambda)
        assert source._find_function(namespace["two"][0].__code__) is None  # two on a line
        default = namespace["holder"].__defaults__[0]
        assert isinstance(default, FunctionType)
        assert isinstance(source._find_function(default.__code__), ast.Lambda)
        assert source.defines(namespace["two"][1].__code__)
        # a lambda and a def of one file, each fingerprinted from its source
        assert fingerprint(namespace["one"]) != fingerprint(namespace["two"][0])
    finally:
        linecache.checkcache(str(path))


def test_a_dump_kept_below_the_top_does_not_leak_into_the_top() -> None:
    # The class's dump keeps its methods' decorators and memoizes the method's dump; the
    # method's own dump drops them (a root loses all of its decorators).
    tree = ast.parse("class C:\n    @step\n    @other\n    def m(self):\n        return 1\n")
    klass = tree.body[0]
    method = klass.body[0]
    assert "'step'" in source.canonical(klass, lambda d: True)
    own = source.canonical(method, lambda d: True)
    assert "'step'" not in own and "'other'" not in own
    assert own == repr(reference_canon(method, lambda d: True, top=True))
    assert source.canonical(klass, source._keep) == repr(reference_canon(klass, source._keep))
