"""Which functions a piece of code calls: for tests that pin how little a hot path does.

A count of calls is deterministic where a time is not, so such a test can fail on any
machine, and it names what came back when it does.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
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
