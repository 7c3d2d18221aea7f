"""Give code loaded from a snapshot back what pickling took from it, so it keys as before.

cloudpickle carries the user's modules by value, and three things the code fingerprint
reads do not survive the trip:

- file names: every function it pickles by value gets ``<dynamic-code>`` as its
  ``co_filename``. A function defined in a published file gets that file back -- only
  if the published source holds its definition: code a library ``exec``'d with the
  module's globals (a dataclass's ``__init__``) had a ``<string>`` name, as it keeps.
  A library function pickled by value (the methods ``collections.namedtuple`` gives a
  class, named after it and so not importable by name) gets its module's file here,
  so it counts as the library again, not as user code;
- the modules: they are not imported, so ``sys.modules`` cannot tell where a class
  was defined. Each class of a published module is recorded with its file and
  namespace (``keys.origin.adopt``);
- module globals: a function pickled by value takes only the globals its code reads,
  so the names that only ``class`` statements read (``NamedTuple``, a base class, a
  decorator) are missing. ``class_globals`` picks those when publishing; loading puts
  them back into the module's namespace.

Walks an explicit stack: nothing recurses with the size of the code.
"""

from __future__ import annotations

import ast
import functools
import importlib
import sys
from types import CodeType, FunctionType, MethodType, ModuleType

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["class_globals", "restore"]

_DYNAMIC = "<dynamic-code>"


def class_globals(module: ModuleType, text: str) -> dict[str, Any]:
    """The module globals that the ``class`` statements in ``text`` read, but no module of
    the user's (those travel by value whole, or not at all)."""
    from ductwork.runtime.keys.origin import module_kind
    from ductwork.runtime.keys.source import class_reads

    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return {}
    names = {d[0] for node in ast.walk(tree) if isinstance(node, ast.ClassDef)
             for d in class_reads(node)}
    namespace = vars(module)
    out = {}
    for name in sorted(names & namespace.keys()):
        value = namespace[name]
        if isinstance(value, ModuleType) and module_kind(value, value.__name__) == "user":
            continue
        out[name] = value
    return out


def restore(root: Any, files: set[str], modules: dict[str, tuple[str, dict[str, Any]]]) -> None:
    """Restore file names, adopt classes and refill module globals for what ``root`` reaches.

    ``modules`` maps a published module's name to its file and ``class_globals``.
    """
    from ductwork.runtime.keys.origin import adopt

    namespaces: dict[str, dict[str, Any]] = {}
    classes: list[type] = []
    _walk([root, *(v for _, extra in modules.values() for v in extra.values())],
          files, namespaces, classes)
    for name, (file, extra) in modules.items():
        namespace = namespaces.setdefault(name, {"__name__": name, "__file__": file})
        for key, value in extra.items():
            namespace.setdefault(key, value)
    for cls in classes:
        namespace = namespaces.get(cls.__module__)
        file = namespace.get("__file__") if namespace is not None else None
        if isinstance(file, str) and file in files:
            adopt(cls, file, namespace)  # type: ignore[arg-type]


def _walk(roots: list[Any], files: set[str], namespaces: dict[str, dict[str, Any]],
          classes: list[type]) -> None:
    seen: set[int] = set()
    stack = list(roots)
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, str | bytes | int | float | bool | type(None)):
            continue
        seen.add(id(obj))
        if isinstance(obj, FunctionType):
            globals_ = obj.__globals__
            file, name = globals_.get("__file__"), globals_.get("__name__")
            if file in files and isinstance(name, str):
                namespaces.setdefault(name, globals_)
            if obj.__code__.co_filename == _DYNAMIC:
                _rename(obj, file if file in files else None, name)
            stack.extend(globals_.values())
            stack.extend(obj.__defaults__ or ())
            stack.extend((obj.__kwdefaults__ or {}).values())
            stack.extend(c.cell_contents for c in obj.__closure__ or () if _filled(c))
        elif isinstance(obj, type):
            module = sys.modules.get(obj.__module__)
            if module is None:  # a class by value
                classes.append(obj)
                stack.extend(b for b in obj.__bases__ if b is not object)
            if getattr(module, "__file__", None) not in files:
                stack.extend(vars(obj).values())  # its methods
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


def _rename(fn: FunctionType, published: str | None, module: Any) -> None:
    """Give ``fn`` the file its code came from, when that can be told (see the module doc)."""
    from ductwork.runtime.keys.source import defines

    if published is not None:
        code = _renamed(fn.__code__, published)
        if defines(code):
            fn.__code__ = code
        return
    library = _library_file(module) if isinstance(module, str) else None
    if library is not None:
        fn.__code__ = _renamed(fn.__code__, library)


@functools.lru_cache(maxsize=256)
def _library_file(name: str) -> str | None:
    """The file of library module ``name`` in this interpreter, or None if it is not one."""
    from ductwork.runtime.keys.origin import import_kind, module_kind

    module = sys.modules.get(name)
    if module is None:
        if import_kind(name) not in ("stdlib", "package"):
            return None  # never import user code: the snapshot is the user's code here
        try:
            module = importlib.import_module(name)
        except Exception:
            return None
    file = getattr(module, "__file__", None)
    kind = module_kind(module, name)
    return file if isinstance(file, str) and kind in ("stdlib", "package") else None


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
