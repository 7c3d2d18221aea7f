"""Code fingerprints: a digest of the code a step reaches, so its cache is never stale.

``fingerprint`` walks from the step's function to everything its code can reach
(``walk`` says how, and what counts as user code) and hashes the
sorted components the walk made; ``diff_components`` says which of them differ.

Memo: a result is kept per root object with *guards*: every global, module
attribute, class member, closure cell, ``__code__`` and defaults the walk
read, with the object it found. A warm call re-checks only those identities
(microseconds), so a reloaded module, a notebook cell that redefines a helper
(both rebind names to new objects) or an autoreload that swaps ``__code__``
recomputes. A value is hashed once per object: it is a constant. Rehashing on
every call would make a module-level list that steps append to (a log, a
registry) change the fingerprint as the pipeline runs; the price is that
mutating a module-level container in place is not seen -- rebind the name.
Names a function assigns with ``global`` are state and are not hashed. Source
is read once per code object, so editing a file without reloading it does not
change the fingerprint of the code that would actually run.

A function that went through cloudpickle by value has lost its file name and
is fingerprinted by bytecode: compute fingerprints where the code is defined.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from types import BuiltinFunctionType, FunctionType, MethodType

from ductwork.dsl.slotted import Frozen, fill
from ductwork.dsl.step import Step
from ductwork.runtime import caches
from ductwork.runtime.keys.hashing import hash_str_pairs
from ductwork.runtime.keys.walk import _MISSING, _cell, _getattr, _Walk

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["CodeFingerprint", "diff_components", "fingerprint", "library_fingerprint"]

# (id(root), *ids of bound arguments) -> _Entry; an entry holds its objects, so ids stay theirs.
_MEMO = caches.cache("keys.fingerprints", maxsize=4096)


class CodeFingerprint(Frozen):
    """The digest of a step's code and the per-component digests it is made of."""

    __slots__ = ("digest", "components")
    digest: str
    components: dict[str, str]  # shared with the memo: read it, do not change it

    def __init__(self, digest: str, components: dict[str, str]) -> None:
        fill(self, digest, components)


def fingerprint(fn: Callable[..., Any]) -> CodeFingerprint:
    """Fingerprint the code a callable reaches: its own, its helpers', and their versions."""
    root, extras = _roots(fn)
    key = (id(root), *[id(value) for _, value in extras]) if extras else (id(root),)
    entry = _MEMO.get(key)
    if entry is not None and entry.fresh(root, extras):
        return entry.result
    walk = _Walk()
    name = walk.function(root, root=True) if isinstance(root, FunctionType) else walk.reach(root)
    for label, value in extras:
        walk.reach(value, label.format(root=name.partition(":")[2]))
    result = _result(walk)
    _MEMO.put(key, _Entry(root, extras, walk, result))
    return result


def library_fingerprint(module: str, kind: str) -> CodeFingerprint:
    """What ``fingerprint`` gives a class of ``module`` that is not user code, by name.

    Such a class counts by its distribution's version (the stdlib and builtins by the
    Python version alone), which its module's name tells without importing it.
    """
    walk = _Walk()
    walk.library(module, kind)
    return _result(walk)


def _result(walk: _Walk) -> CodeFingerprint:
    components = dict(sorted(walk.components.items()))
    return CodeFingerprint(hash_str_pairs("Code", list(components.items())), components)


def diff_components(old: dict[str, str], new: dict[str, str]) -> list[str]:
    """Say in sentences which components differ between two fingerprints."""
    out = []
    for key in sorted(old.keys() | new.keys()):
        before, after = old.get(key), new.get(key)
        if before == after:
            continue
        kind, _, name = key.partition(":")
        if kind == "python":
            out.append(f"Python {before or '?'} -> {after or '?'}")
        elif kind == "pkg":
            out.append(f"package {name} {before or '(not used)'} -> {after or '(not used)'}")
        elif before is None:
            out.append(f"{_describe(kind, name)} is new")
        elif after is None:
            out.append(f"{_describe(kind, name)} is no longer used")
        else:
            out.append(f"{_PHRASES.get(kind, '')}{_describe(kind, name)} changed")
    return out


_PHRASES = {"fn": "helper function ", "class": "class ", "const": "module constant "}


def _describe(kind: str, name: str) -> str:
    owner, _, part = name.rpartition(":")
    if kind in ("closure", "default", "partial"):
        what = {"closure": "closure variable", "default": "default argument"}.get(kind)
        return f"{what} {part} of {owner}" if what else f"argument {part} bound to {owner}"
    return f"module {name}" if kind == "module" else name or kind


class _Entry:
    """A memoized result with the identities it was computed from."""

    def __init__(self, root: Any, extras: list[tuple[str, Any]], walk: _Walk, result: Any):
        self.root, self.extras = root, [v for _, v in extras]  # keeps the key's ids valid
        self.dicts = tuple(walk.dicts.values())
        self.attrs, self.cells = tuple(walk.attrs), tuple(walk.cells)
        self.functions = tuple(walk.functions)
        self.result = result

    def fresh(self, root: Any, extras: list[tuple[str, Any]]) -> bool:
        if self.root is not root or (
            extras and any(a is not b for a, (_, b) in zip(self.extras, extras, strict=True))
        ):
            return False
        for fn, code, defaults, kwdefaults in self.functions:
            # Autoreload tools swap __code__ in place, so the function's identity is not enough.
            if fn.__code__ is not code or fn.__defaults__ is not defaults:
                return False
            if fn.__kwdefaults__ is not kwdefaults:
                return False
        for namespace, name, value in self.dicts:
            if namespace.get(name, _MISSING) is not value:
                return False
        for obj, name, value in self.attrs:
            if _getattr(obj, name) is not value:
                return False
        return not self.cells or all(_cell(cell) is value for cell, value in self.cells)


def _roots(obj: Any) -> tuple[Any, list[tuple[str, Any]]]:
    """Unwrap steps, partials and bound methods to the function or class to walk."""
    if type(obj) is FunctionType:  # a step's function, every time a key is made
        return obj, []
    extras: list[tuple[str, Any]] = []
    while True:
        if isinstance(obj, Step):
            obj = obj.fn
        elif isinstance(obj, functools.partial):
            n = len(extras)
            extras += [(f"partial:{{root}}:{n + i}", a) for i, a in enumerate(obj.args)]
            extras += [(f"partial:{{root}}:{k}", v) for k, v in sorted(obj.keywords.items())]
            obj = obj.func
        elif isinstance(obj, MethodType):
            owner = obj.__self__
            extras.append(("self", owner if isinstance(owner, type) else type(owner)))
            obj = obj.__func__
        else:
            break
    if isinstance(obj, FunctionType | type | BuiltinFunctionType):
        return obj, extras
    if not callable(obj):
        raise TypeError(f"fingerprint() takes a function or step, got {type(obj).__name__}.")
    return (obj if hasattr(obj, "__wrapped__") else type(obj)), extras
