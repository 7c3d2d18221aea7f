"""Which functions a piece of code calls: for tests that pin how little a hot path does.

A count of calls is deterministic where a time is not, so such a test can fail on any
machine, and it names what came back when it does.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from pathlib import Path
from types import CodeType
from typing import Any


def qualname(code: CodeType) -> str:
    """A Python call named by its function's qualified name."""
    return code.co_qualname


def calls_made(fn: Callable[[], Any], *, c_calls: bool = False,
               name: Callable[[CodeType], str | None] = qualname) -> list[str]:
    """What ``fn()`` calls, in order: each Python call as ``name`` spells its code (None
    leaves it out) and, with ``c_calls``, each C function or method by its name."""
    names: list[str] = []

    def seen(frame: Any, event: str, arg: Any) -> None:
        if event == "call":
            spelled = name(frame.f_code)
            if spelled is not None:
                names.append(spelled)
        elif c_calls and event == "c_call":
            names.append(getattr(arg, "__name__", ""))

    sys.setprofile(seen)
    try:
        fn()
    finally:
        sys.setprofile(None)
    return names


def in_ductwork(*parts: str) -> Callable[[CodeType], str | None]:
    """A ``name`` for ``calls_made``: ``path:function`` for code in a file of ductwork's
    whose path holds one of ``parts`` (``"runtime/records/"``), None for any other."""

    def spell(code: CodeType) -> str | None:
        path = code.co_filename.replace("\\", "/")
        if "/ductwork/" in path and any(part in path for part in parts):
            return f"{path.rsplit('/ductwork/', 1)[1]}:{code.co_name}"
        return None

    return spell


def chain_module(tmp_path: Path, n: int, name: str) -> Any:
    """Import a fresh module ``name`` of ``n`` distinct one-line steps that its pipeline
    ``chain`` calls one after another: the shape a hot path's cost is counted on."""
    source = ["from ductwork import pipeline, step", ""]
    for i in range(n):
        source += ["", "@step", f"def s{i:03d}(x: int) -> int:", "    return x + 1", ""]
    names = ", ".join(f"s{i:03d}" for i in range(n))
    source += ["", f"STEPS = [{names}]", "", "@pipeline", "def chain(n: int = 0):",
               "    x = n", "    for s in STEPS:", "        x = s(x)", "    return x", ""]
    (tmp_path / f"{name}.py").write_text("\n".join(source))
    sys.path.insert(0, str(tmp_path))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(tmp_path))
