"""Which functions a piece of code calls: for tests that pin how little a hot path does.

A count of calls is deterministic where a time is not, so such a test can fail on any
machine, and it names what came back when it does.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any


def calls_made(fn: Callable[[], Any], *, c_calls: bool = False) -> list[str]:
    """The qualified names of the Python functions ``fn()`` calls, in order; with
    ``c_calls``, the names of the C functions and methods it calls too."""
    names: list[str] = []

    def seen(frame: Any, event: str, arg: Any) -> None:
        if event == "call":
            names.append(frame.f_code.co_qualname)
        elif c_calls and event == "c_call":
            names.append(getattr(arg, "__name__", ""))

    sys.setprofile(seen)
    try:
        fn()
    finally:
        sys.setprofile(None)
    return names


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
