"""scan() reads bytecode itself: it must find exactly what the ``dis``-based scan found.

The reference below is the scan every fingerprint was made with before (through
``dis.get_instructions``); a difference would change cache keys. It is compared on
crafted code (long argument prefixes, ``global``, relative imports, nested code) and on
every code object of a set of stdlib files, whatever Python runs the tests.
"""

from __future__ import annotations

import dis
import os
import sys
import sysconfig
from types import CodeType
from typing import Any

import pytest

from ductwork.runtime.keys import bytecode
from ductwork.runtime.keys.bytecode import Scan, scan


def reference_scan(code: CodeType) -> Scan:
    """The scan as it was, instruction by instruction through ``dis``."""
    names: set[str] = set()
    chains: set[tuple[str, ...]] = set()
    bare: set[str] = set()
    stored: set[str] = set()
    imports: list[tuple[str, int, tuple[str, ...]]] = []
    stack = [code]
    while stack:
        co = stack.pop()
        stack.extend(c for c in co.co_consts if isinstance(c, CodeType))
        chain: list[str] | None = None
        consts: list[Any] = [None, None]
        for ins in dis.get_instructions(co):
            op = ins.opname
            if chain is not None:
                if op in ("LOAD_ATTR", "LOAD_METHOD"):
                    chain.append(ins.argval)
                    continue
                if len(chain) > 1:
                    chains.add(tuple(chain))
                else:
                    bare.add(chain[0])
                chain = None
            if op in ("LOAD_GLOBAL", "LOAD_NAME"):
                names.add(ins.argval)
                chain = [ins.argval]
            elif op in ("STORE_GLOBAL", "DELETE_GLOBAL"):
                stored.add(ins.argval)
            elif op in ("LOAD_CONST", "LOAD_SMALL_INT"):
                consts = [consts[-1], ins.argval]
            elif op == "IMPORT_NAME":
                level, fromlist = consts
                level = level if isinstance(level, int) else 0
                imports.append((ins.argval, level, tuple(fromlist or ())))
        if chain is not None:
            (chains.add(tuple(chain)) if len(chain) > 1 else bare.add(chain[0]))
    return Scan(
        frozenset(names), frozenset(chains), frozenset(bare), frozenset(stored), tuple(imports)
    )


def _all_code(code: CodeType) -> list[CodeType]:
    out, stack = [], [code]
    while stack:
        co = stack.pop()
        out.append(co)
        stack.extend(c for c in co.co_consts if isinstance(c, CodeType))
    return out


ATTRS = ", ".join(f"o.a{i}" for i in range(300))  # > 256 names: EXTENDED_ARG prefixes
GLOBALS = ", ".join(f"G{i}.x.y" for i in range(300))
CRAFTED = {
    "plain": "def f(x):\n    return x + 1\n",
    "chains": "def f(x):\n    return os.path.join(a.b, c)(x).d + np.linalg.norm(x)\n",
    "extended_attrs": f"def f(o):\n    return ({ATTRS}, helper.x.y.z, o.zz)\n",
    "extended_globals": f"def f():\n    return ({GLOBALS}, last.one)\n",
    "global_state": "def f(x):\n    global N, M\n    N = x\n    del M\n    return N\n",
    "imports": (
        "def f():\n    import os.path\n    from . import sib\n    from ..pkg.mod import a, b"
        "\n    import json as j\n    return os, sib, a, b, j\n"
    ),
    "nested": (
        "def f(x):\n    def g(y):\n        return [K + i for i in y if h(i)]\n"
        "    return (lambda z: g(z) + M.attr)(x), {k: v for k, v in T.items()}\n"
    ),
    "module_level": "import a.b\nX = a.b.c\nclass C(Base):\n    k = X.y\n    def m(s): return Z\n",
    "small_ints": "def f():\n    import m\n    return (0, 1, 255, 256, -1, m)\n",
}


@pytest.mark.parametrize("name", sorted(CRAFTED))
def test_scan_matches_dis_on_crafted_code(name: str) -> None:
    code = compile(CRAFTED[name], f"<{name}>", "exec")
    for co in _all_code(code):
        assert scan(co) == reference_scan(co), co.co_name


STDLIB = [
    "argparse", "dataclasses", "typing", "enum", "functools", "inspect", "ast", "pathlib",
    "collections/__init__", "json/encoder", "asyncio/base_events", "email/utils", "tarfile",
    "importlib/_bootstrap", "logging/__init__", "unittest/case", "zipfile/__init__", "zipfile",
]


def test_scan_matches_dis_on_stdlib_code() -> None:
    stdlib, checked = sysconfig.get_paths()["stdlib"], 0
    for name in STDLIB:
        path = os.path.join(stdlib, f"{name}.py")
        if not os.path.exists(path):  # zipfile became a package in 3.12
            continue
        with open(path, encoding="utf-8") as f:
            code = compile(f.read(), path, "exec")
        for co in _all_code(code):
            assert scan(co) == reference_scan(co), f"{path}: {co.co_name} line {co.co_firstlineno}"
            checked += 1
    assert checked > 2000


def test_fast_reading_covers_this_python() -> None:
    # The fallback through dis stays right, but slow: a newer Python gets the fast path once
    # the comparisons above pass on it (then widen bytecode._FAST).
    if sys.version_info[:2] > (3, 13):
        pytest.skip("bytecode reading is checked through 3.13: run this file, widen _FAST")
    assert bytecode._FAST


def test_the_dis_fallback_gives_the_same_scan(monkeypatch: pytest.MonkeyPatch) -> None:
    code = compile(CRAFTED["extended_attrs"] + CRAFTED["imports"], "<both>", "exec")
    fast = [scan(co) for co in _all_code(code)]
    monkeypatch.setattr(bytecode, "_FAST", False)
    bytecode._SCANS.clear()
    assert [scan(co) for co in _all_code(code)] == fast
