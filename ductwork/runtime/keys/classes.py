"""The classes a value is made of, so that their code is part of the keys that read it.

A ``predict(model, x)`` step runs ``model.predict``: code its own fingerprint
never reaches, since only the value knows its class. So a step's key also holds
the fingerprint of each class found in its input values (``cache_key``), and
this module finds them: the value's type and, transitively, the types of the
elements of lists, tuples, sets and dicts and of the attributes of objects
(``__dict__`` and ``__slots__``; dataclasses, attrs classes, namedtuples and
enum members included). User classes and installed packages' classes count
(the latter by their distribution's version); builtins, the standard library
(the Python version is in every key) and ductwork's own types do not. numpy and
pandas values are leaves: their contents hold no classes of interest.

An upstream output reaches a step as a ref, not as a value, and it is never
read back to be keyed. So the classes are found where the value is written: the
store records their names in the ref (``class_names``), ``recorded`` reads them
back from a ref (``store.refs`` registers the ref types), and the key resolves
each name to the class as it is now -- so an edit of ``Model.predict`` reruns the
consumer even when the producer's bytes did not change.

Whichever process keys the consumer (the driver serving hits, any Dask worker) must
find the same key, whatever it imported before: an installed class counts by its
distribution's version, which its name tells without an import (``recorded_kind``),
and a user class's module is imported when it is not yet (``resolve``).
"""

from __future__ import annotations

import functools
import importlib
import sys
from collections.abc import Callable
from types import FunctionType, ModuleType

from ductwork.runtime import caches
from ductwork.runtime.keys.origin import adopted, class_kind, import_kind, module_kind

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "class_names", "classes_in", "recorded", "recorded_kind", "register_recorded", "resolve",
]

_ATOMS = frozenset({int, float, str, bytes, bool, type(None), complex, bytearray, range})
_LEAVES = frozenset({"numpy", "pandas", "pyarrow", "ductwork"})  # contents hold no classes
# id(cls) -> (cls, counts): class_kind walks origin's lookups; once per class is enough.
_COUNTS = caches.cache("keys.class_counts", maxsize=4096)


def _counts(cls: type) -> bool:
    hit = _COUNTS.get(id(cls))
    if hit is not None and hit[0] is cls:
        return bool(hit[1])
    counts = class_kind(cls) in ("user", "package")
    _COUNTS.put(id(cls), (cls, counts))
    return counts


def classes_in(value: Any) -> list[type]:
    """The user and package classes ``value`` is made of, in the order first met."""
    if type(value) in _ATOMS:  # the common case, without the walk's set-up
        return []
    found: dict[int, type] = {}
    seen: set[int] = set()
    stack = [value]
    while stack:
        item = stack.pop()
        cls = type(item)
        if cls in _ATOMS or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, type | FunctionType | ModuleType):
            continue  # code, not data: the fingerprint's business
        if _counts(cls):
            found.setdefault(id(cls), cls)
        if cls.__module__.partition(".")[0] in _LEAVES:
            continue
        if isinstance(item, dict):
            stack.extend(_not_atoms(item.keys()))
            stack.extend(_not_atoms(item.values()))
        elif isinstance(item, list | tuple | set | frozenset):
            stack.extend(_not_atoms(item))
        else:
            stack.extend(_attributes(item))
    return list(found.values())


def _not_atoms(items: Any) -> list[Any]:
    # set(map(type, ...)) runs in C: a list of a million floats costs milliseconds.
    items = list(items)
    return [] if set(map(type, items)) <= _ATOMS else [x for x in items if type(x) not in _ATOMS]


def _attributes(item: Any) -> list[Any]:
    state = getattr(item, "__dict__", None)
    out = list(state.values()) if isinstance(state, dict) else []
    for klass in type(item).__mro__:
        for slot in _slots(klass):
            value = getattr(item, slot, _NONE)
            if value is not _NONE:
                out.append(value)
    return out


_NONE = object()


@functools.lru_cache(maxsize=1024)  # a class's slots do not change
def _slots(klass: type) -> tuple[str, ...]:
    slots = vars(klass).get("__slots__", ())
    slots = (slots,) if isinstance(slots, str) else tuple(slots)
    return tuple(s for s in slots if s not in ("__dict__", "__weakref__"))


def class_names(value: Any) -> tuple[str, ...]:
    """The sorted ``module:qualname`` names of the classes in ``value``, to keep in its ref."""
    return tuple(sorted({f"{c.__module__}:{c.__qualname__}" for c in classes_in(value)}))


def resolve(name: str) -> type | None:
    """The class a recorded ``module:qualname`` names in this process, or None.

    A module this process has not imported yet is imported, as loading the value would:
    the answer must not depend on what the process happened to import before.
    """
    module_name, _, qualname = name.partition(":")
    # A class of a published snapshot first: a working copy of its module, imported or
    # importable here, must not stand in for the code the snapshot runs.
    snapshot_class = adopted(name)
    if snapshot_class is not None:
        return snapshot_class
    found: Any = sys.modules.get(module_name) or _import(module_name)
    if found is None:
        return None  # not importable here: counted by name (caching.md)
    for part in qualname.split("."):
        found = getattr(found, part, None)
    return found if isinstance(found, type) else None


def recorded_kind(name: str) -> str:
    """Classify the module of a recorded ``module:qualname``, imported or not (see origin)."""
    module_name = name.partition(":")[0]
    module = sys.modules.get(module_name)
    return module_kind(module, module_name) if module is not None else import_kind(module_name)


# module name -> True: a module whose code failed is not run again for every key naming it
_BROKEN = caches.cache("keys.broken_modules", maxsize=256)


def _import(module_name: str) -> ModuleType | None:
    if _BROKEN.get(module_name):
        return None
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        # Not on this path (a worker that got the code by value): cheap to look for again,
        # and found once sys.path holds it. A missing import inside the module is broken.
        if exc.name is None or not (module_name + ".").startswith(exc.name + "."):
            _BROKEN.put(module_name, True)
        return None
    except (Exception, SystemExit):  # its code raised, or exited
        _BROKEN.put(module_name, True)
        return None


# ref type -> fn(ref) -> names: exact types, a dict lookup (this runs for every argument).
_RECORDED: dict[type, Callable[[Any], tuple[str, ...]]] = {}


def recorded(value: Any) -> tuple[str, ...] | None:
    """The class names recorded with a ref; None for a value, whose classes are found."""
    read = _RECORDED.get(type(value))
    return None if read is None else read(value)


def register_recorded(cls: type, fn: Callable[[Any], tuple[str, ...]]) -> None:
    """Register ``fn(ref) -> names`` for a ref type that records its value's classes."""
    _RECORDED[cls] = fn
