"""A pipeline's code, frozen: what a published version runs, whatever the working copy says.

The pipeline object is pickled exactly as workers receive step code
(``engine/shipping``): cloudpickle, with the user's own modules by value,
installed packages by reference, and the user's serializers along. The text of
every user source file whose code is in that pickle travels beside it: loading
puts those texts into ``linecache``, so the code fingerprint -- which reads
source through ``linecache`` -- sees the published source even when the file
was edited or deleted since. The published code therefore gets the same cache
keys as the code it was published from.

A snapshot's identity (``digest``) cannot be the pickle's hash: cloudpickle names
every class pickled by value with a fresh random id, so the same code pickles to
different bytes in each process. It is a hash of what decides behaviour: the
pipeline's name, the source texts, the code fingerprint (which adds module
constants' values and installed package versions) and ductwork's version.
"""

from __future__ import annotations

import functools
import linecache
import os
import pickletools
import sys
from types import CodeType, FunctionType, MethodType, ModuleType
from typing import Any

import attrs

__all__ = [
    "Snapshot", "ductwork_version", "install_sources", "load_snapshot", "take_snapshot",
]


@attrs.frozen
class Snapshot:
    """A pickled pipeline, the source texts its code came from, and their identity."""

    payload: bytes
    sources: dict[str, str]
    digest: str


def take_snapshot(pipeline: Any) -> Snapshot:
    """Freeze ``pipeline``'s code (see the module doc)."""
    from ductwork.runtime.engine.shipping import pickle_step
    from ductwork.runtime.keys.fingerprint import fingerprint
    from ductwork.runtime.keys.hashing import hash_tagged

    payload = pickle_step(pipeline)
    sources = {f: text for f in sorted(_code_files(payload)) if (text := _source(f))}
    code = fingerprint(pipeline.fn).digest
    digest = hash_tagged("PublishedSnapshot", pipeline.name, code,
                         sorted(sources.items()), ductwork_version())
    return Snapshot(payload, sources, digest)


def ductwork_version() -> str:
    """This ductwork's version."""
    # Read from the loaded package, not imported: an import of ``ductwork`` would tie
    # publishing to the runner through the DSL in the import graph.
    return str(sys.modules["ductwork"].__version__)


def _code_files(payload: bytes) -> set[str]:
    """The user source files named in a pickle: the ``co_filename`` of its by-value code."""
    own = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    found = set()
    for _op, arg, _pos in pickletools.genops(payload):
        if not isinstance(arg, str) or not arg or len(arg) > 4096:
            continue
        cached = linecache.cache.get(arg)
        if cached is not None and cached[1] is None:  # a notebook cell or exec'd source
            found.add(arg)
        elif (arg.endswith(".py") and os.path.isabs(arg) and not arg.startswith(own + os.sep)
              and _is_user_file(arg)):
            found.add(arg)
    return found


def _is_user_file(path: str) -> bool:
    from ductwork.runtime.keys.origin import code_kind

    return os.path.isfile(path) and code_kind("__snapshot__", path) == "user"


def _source(filename: str) -> str:
    linecache.checkcache(filename)
    return "".join(linecache.getlines(filename))


def install_sources(sources: dict[str, str]) -> None:
    """Make ``linecache`` (and so ``inspect`` and the code fingerprint) read these texts for
    their files in this process, whatever is on disk now."""
    for filename, text in sources.items():
        lines = text.splitlines(keepends=True)
        # No mtime: checkcache leaves the entry alone, as it does for a notebook's cells.
        linecache.cache[filename] = (len(text), None, lines, filename)


def load_snapshot(payload: bytes, sources: dict[str, str]) -> Any:
    """Load a pickled pipeline with the source texts it was published from."""
    from ductwork.runtime.engine.shipping import unpickle

    install_sources(sources)
    pipeline = unpickle(payload)
    _restore_filenames(pipeline, set(sources))
    return pipeline


def _restore_filenames(root: Any, files: set[str]) -> None:
    """Give the loaded code back the file names cloudpickle replaced with ``<dynamic-code>``.

    cloudpickle drops ``co_filename`` (its payloads are meant to be the same wherever
    code was defined), but the code fingerprint finds a function's source by it. A
    function's module file is still in its globals (``__file__``), so every function
    reachable from ``root`` whose module file was published gets it back, nested code
    included. Walks an explicit stack: nothing recurses with the size of the code.
    """
    seen: set[int] = set()
    stack = [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, str | bytes | int | float | bool | type(None)):
            continue
        seen.add(id(obj))
        if isinstance(obj, FunctionType):
            file = obj.__globals__.get("__file__")
            if file in files and obj.__code__.co_filename == _DYNAMIC:
                obj.__code__ = _renamed(obj.__code__, file)
            stack.extend(obj.__globals__.values())
            stack.extend(obj.__defaults__ or ())
            stack.extend((obj.__kwdefaults__ or {}).values())
            stack.extend(c.cell_contents for c in obj.__closure__ or () if _filled(c))
        elif isinstance(obj, type):
            if getattr(sys.modules.get(obj.__module__), "__file__", None) not in files:
                stack.extend(vars(obj).values())  # a class by value: its methods
        elif isinstance(obj, ModuleType):
            if getattr(obj, "__file__", None) in files:
                stack.extend(vars(obj).values())
        elif isinstance(obj, staticmethod | classmethod | MethodType):
            stack.append(obj.__func__)
        elif isinstance(obj, property):
            stack.extend((obj.fget, obj.fset, obj.fdel))
        elif isinstance(obj, functools.partial):
            stack.extend((obj.func, *obj.args, *obj.keywords.values()))
        elif isinstance(obj, list | tuple | set | frozenset):
            stack.extend(obj)
        elif isinstance(obj, dict):
            stack.extend(obj.values())
        elif isinstance(getattr(obj, "__dict__", None), dict):
            stack.extend(vars(obj).values())  # a step, a pipeline, an object holding code


_DYNAMIC = "<dynamic-code>"


def _filled(cell: Any) -> bool:
    try:
        cell.cell_contents  # noqa: B018 -- an empty cell raises
    except ValueError:
        return False
    return True


def _renamed(code: CodeType, filename: str) -> CodeType:
    """``code`` and the code nested in its constants, with ``co_filename`` set."""
    consts = tuple(_renamed(c, filename) if isinstance(c, CodeType) and c.co_filename == _DYNAMIC
                   else c for c in code.co_consts)
    return code.replace(co_filename=filename, co_consts=consts)
