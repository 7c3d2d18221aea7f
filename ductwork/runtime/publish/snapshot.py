"""A pipeline's code, frozen: what a published version runs, whatever the working copy says.

The pipeline object is pickled exactly as workers receive step code
(``engine/shipping``): cloudpickle, with the user's own modules by value,
installed packages by reference, and the user's serializers along. The text of
every user source file whose code is in that pickle travels beside it: loading
puts those texts into ``linecache``, so the code fingerprint -- which reads
source through ``linecache`` -- sees the published source even when the file
was edited or deleted since. Beside the pipeline go, per user module it names,
the module's file and the globals its ``class`` statements read (by value the
pickle would drop them); loading hands them to ``restore``, which gives the code
back its file names and its classes their modules. The published code therefore
gets the same cache keys as the code it was published from.

A snapshot's identity (``digest``) cannot be the pickle's hash: cloudpickle names
every class pickled by value with a fresh random id, so the same code pickles to
different bytes in each process. It is a hash of what decides behaviour: the
pipeline's name, the source texts, the code fingerprint (which adds module
constants' values and installed package versions) and ductwork's version.
"""

from __future__ import annotations

import linecache
import os
import pickletools
import sys
from types import ModuleType

from ductwork.dsl.slotted import Frozen, fill

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "Snapshot", "ductwork_version", "install_sources", "load_snapshot", "take_snapshot",
]

# A payload is (_MARK, pipeline, {module: (file, class globals)}); before, the pipeline alone.
_MARK = "ductwork-snapshot-2"


class Snapshot(Frozen):
    """A pickled pipeline, the source texts its code came from, and their identity."""

    __slots__ = ("payload", "sources", "digest")
    payload: bytes
    sources: dict[str, str]
    digest: str

    def __init__(self, payload: bytes, sources: dict[str, str], digest: str) -> None:
        fill(self, payload, sources, digest)


def take_snapshot(pipeline: Any) -> Snapshot:
    """Freeze ``pipeline``'s code (see the module doc)."""
    from ductwork.runtime.engine.shipping import pickle_step
    from ductwork.runtime.keys.fingerprint import fingerprint
    from ductwork.runtime.keys.hashing import hash_tagged
    from ductwork.runtime.publish.restore import class_globals

    payload = pickle_step(pipeline)
    modules = _modules(payload)
    sources = {f: text for f in sorted(_code_files(payload) | {m.__file__ for m in modules})
               if (text := _source(f))}
    extras = {m.__name__: (m.__file__, class_globals(m, sources.get(m.__file__, "")))
              for m in modules}
    try:  # the globals are pickled with the pipeline, so both share one copy of each object
        payload = pickle_step((_MARK, pipeline, extras))
    except Exception:  # a global cloudpickle cannot take: such classes key by what they hold
        payload = pickle_step((_MARK, pipeline, {n: (f, {}) for n, (f, _) in extras.items()}))
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


def _modules(payload: bytes) -> list[ModuleType]:
    """The user's modules, imported here, whose names a pickle holds: the modules of the
    classes and functions it carries by value (with files, as notebooks have none)."""
    from ductwork.runtime.keys.origin import module_kind

    names = {arg for _, arg, _ in pickletools.genops(payload)
             if isinstance(arg, str) and 0 < len(arg) < 256}
    found = []
    for name in sorted(names):
        module = sys.modules.get(name)
        file = getattr(module, "__file__", None)
        if (module is not None and name != "__main__" and isinstance(file, str)
                and module_kind(module, name) == "user" and _is_user_file(file)):
            found.append(module)
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
    from ductwork.runtime.publish.restore import restore

    install_sources(sources)
    loaded = unpickle(payload)
    pipeline, modules = loaded, {}
    if isinstance(loaded, tuple) and len(loaded) == 3 and loaded[0] == _MARK:
        _, pipeline, modules = loaded
    restore(pipeline, set(sources), modules)
    return pipeline
