"""Where code comes from: user code, the standard library, a package, or ductwork.

The code fingerprint counts user code by its source (see ``source``) and
everything else by a version, so each module, function and class it reaches is
classified first. Where code comes from is decided by path: a file under the
interpreter's site-packages directories is a package (it counts by its
distribution's version, looked up once per process), one under the stdlib
directories is the standard library, and anything else -- a project file,
``__main__``, a notebook cell, ``exec``'d code -- is user code.

Code is named by where it lives, not by how it was started: ``home_name``
gives ``__main__`` the name its file would have if it were imported
(``python pipe.py``, ``ductwork run pipe.py:p`` and ``import pipe`` all key
``pipe.prep``), so the three share one cache.

Code loaded from a published snapshot comes by value: its modules are not imported
in the process that runs it, so ``sys.modules`` cannot say where its classes were
defined. The loader records each such class with its module's file and namespace
(``adopt``); ``class_module`` and ``adopted`` answer for it then, as ``sys.modules``
does for imported code, so the snapshot keys as the project it came from.
"""

from __future__ import annotations

import functools
import os
import site
import sys
from types import ModuleType

from ductwork.runtime import caches

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

# top-level module -> (distribution, version): importlib.metadata is slow
_DISTRIBUTIONS = caches.cache("keys.distributions", maxsize=1024)
# Classes loaded by value (a published snapshot): id -> (class, file, namespace), and
# "module:qualname" -> class. They live as long as the process, as the snapshot does.
_ADOPTED: dict[int, tuple[type, str, dict[str, Any]]] = {}
_ADOPTED_NAMES: dict[str, type] = {}


def adopt(cls: type, file: str, namespace: dict[str, Any]) -> None:
    """Record where a class loaded by value was defined: its module's file and namespace."""
    _ADOPTED[id(cls)] = (cls, file, namespace)
    _ADOPTED_NAMES[f"{cls.__module__}:{cls.__qualname__}"] = cls


def adopted(name: str) -> type | None:
    """The class adopted under ``module:qualname``, or None."""
    return _ADOPTED_NAMES.get(name)


def class_module(cls: type) -> tuple[str | None, dict[str, Any]]:
    """The file and namespace of the module that defined ``cls`` (empty when unknown)."""
    hit = _ADOPTED.get(id(cls))
    if hit is not None and hit[0] is cls:  # before sys.modules: a working copy may be there
        return hit[1], hit[2]
    module = sys.modules.get(cls.__module__)
    return module_file(module), (vars(module) if module is not None else {})


def module_file(module: ModuleType | None) -> str | None:
    """Return a module's file, or the first directory of a namespace package."""
    file = getattr(module, "__file__", None)
    path = getattr(module, "__path__", None)  # a namespace package has only a path
    return file or (next(iter(path), None) if path is not None else None)


def module_kind(module: ModuleType | None, name: str) -> str:
    """Classify a module: "builtin", "ductwork", "stdlib", "package" or "user"."""
    top = name.partition(".")[0]
    if name == "builtins":
        return "builtin"
    if top == "ductwork":
        return "ductwork"
    if name == "__main__":  # a script, a notebook, or code exec'd as if it were one
        return "user"
    file = module_file(module) if module is not None else None
    if file is None:
        stdlib = top in sys.stdlib_module_names or name in sys.builtin_module_names
        return "stdlib" if stdlib else "user"
    return _path_kind(file) or "user"


def home_name(name: str, file: str | None) -> str:
    """The name of module ``name`` where it lives: ``__main__`` as if it were imported.

    ``file`` is where the code was read from; only the ``__main__`` module's own file is
    renamed (code ``exec``'d under the name ``__main__`` elsewhere keeps it).
    """
    if name != "__main__" or file is None:
        return name
    main = sys.modules.get("__main__")
    main_file = getattr(main, "__file__", None)
    if not isinstance(main_file, str) or not _same_file(file, main_file):
        return name
    return _main_name(main)


def class_home(cls: type) -> str:
    """The module name a class is keyed under: ``__main__``'s by where it lives."""
    name = cls.__module__
    if name != "__main__":
        return name
    main = sys.modules.get("__main__")
    found: object = main
    for part in cls.__qualname__.split("."):
        found = getattr(found, part, None)
    return _main_name(main) if found is cls and getattr(main, "__file__", None) else name


def _main_name(main: ModuleType | None) -> str:
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.name and spec.name != "__main__":  # python -m pkg.mod
        return str(spec.name)
    file = getattr(main, "__file__", None)
    # A notebook or python -c has no file: it is __main__ wherever it runs.
    return _file_module(os.path.realpath(file)) if isinstance(file, str) else "__main__"


@functools.lru_cache(maxsize=256)
def _same_file(a: str, b: str) -> bool:
    return a == b or os.path.realpath(a) == os.path.realpath(b)


@functools.lru_cache(maxsize=64)  # a pure function of the path and the folders on disk
def _file_module(path: str) -> str:
    """The dotted name a file is imported by: its stem below its enclosing packages."""
    folder, file = os.path.split(path)
    stem = os.path.splitext(file)[0]
    if not stem.isidentifier():
        return "ductwork_user_module"  # what ``ductwork run`` imports such a file as
    parts = [stem]
    while os.path.isfile(os.path.join(folder, "__init__.py")):
        folder, package = os.path.split(folder)
        if not package.isidentifier():
            break
        parts.insert(0, package)
    return ".".join(parts)


def code_kind(module: str, filename: str) -> str:
    """Classify a function by its module's name and the file its code was compiled from."""
    if module.partition(".")[0] == "ductwork":
        return "ductwork"
    if filename.startswith("<frozen "):
        return "stdlib"
    return _path_kind(filename) or "user"


def class_kind(cls: type) -> str:
    """Classify a class by the module that claims it."""
    # Not by its methods' files: a namedtuple or dataclass made in user code is user
    # code even though its methods come from the stdlib or from a string.
    return module_kind(sys.modules.get(cls.__module__), cls.__module__)


def import_kind(name: str) -> str:
    """Classify a module by name without importing it."""
    top = name.partition(".")[0]
    module = sys.modules.get(top)
    if module is not None or top in ("builtins", "ductwork"):
        return module_kind(module, top)
    import importlib.util  # here: a run whose modules are all imported already needs none

    spec = importlib.util.find_spec(top)  # a top-level lookup imports nothing
    if spec is None:
        return "user"  # the import will fail, and say so
    where = spec.origin if spec.has_location else None
    where = where or next(iter(spec.submodule_search_locations or ()), None)
    if where is None:
        return "stdlib" if top in sys.stdlib_module_names else "user"
    return _path_kind(where) or "user"


@functools.cache  # one value per process: where the interpreter's libraries live
def _library_roots() -> tuple[tuple[str, ...], tuple[str, ...]]:
    import sysconfig  # its first get_paths() loads the build's configuration (~2 ms)

    paths = sysconfig.get_paths()
    packages = {paths["purelib"], paths["platlib"], *site.getsitepackages()}
    packages.add(site.getusersitepackages())
    stdlib = {paths["stdlib"], paths["platstdlib"]}
    return _real_folders(packages), _real_folders(stdlib)


@functools.cache
def _prefixes() -> tuple[str, ...]:
    """The folders the interpreter is installed under: each library root is below one, or
    is a ``site-packages`` folder (the user's, a framework build's)."""
    return _real_folders({sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix,
                          site.getuserbase()})


def _real_folders(paths: set[str]) -> tuple[str, ...]:
    return tuple(os.path.join(os.path.realpath(p), "") for p in paths if p)


# Bounded already, and its hit (once per module or function a walk classifies) is a C
# lookup without a lock -- several times cheaper than a ``caches.Cache`` hit. It is a
# pure function of the path and the interpreter's layout: nothing for tests to clear.
@functools.lru_cache(maxsize=8192)
def _path_kind(path: str) -> str | None:
    """Return "package" or "stdlib" for a library file, None for user code."""
    if not os.path.isabs(path):
        return None  # "<string>", "<ipython-input-...>": exec'd or notebook code
    real = os.path.realpath(path)
    parts = real.split(os.sep)
    if "site-packages" in parts or "dist-packages" in parts:
        return "package"
    if not real.startswith(_prefixes()):
        return None  # a project's file: told without asking sysconfig where libraries are
    packages, stdlib = _library_roots()
    if real.startswith(packages):
        return "package"
    return "stdlib" if real.startswith(stdlib) else None


def _named_distribution(top: str) -> tuple[str, str] | None:
    """``(name, version)`` of the distribution named like module ``top`` when it installs
    ``top`` as a regular module or package; None to ask every distribution.

    Asking every distribution (``packages_distributions``) reads each one's file list:
    0.4 s in an environment of ~180 packages, paid by the first run that hashes a numpy
    array. A regular package's ``__init__.py`` (or a module file) belongs to one
    distribution only, so when the one named ``top`` has it, it is the answer the full
    scan gives.
    """
    import importlib.metadata

    try:
        dist = importlib.metadata.distribution(top)
        record = dist.read_text("RECORD")  # a wheel's file list, read as text: fast
        files = ([line.partition(",")[0] for line in record.splitlines()] if record
                 else [str(f) for f in dist.files or ()])
    except (importlib.metadata.PackageNotFoundError, ValueError, OSError):
        return None
    own = (f"{top}/__init__.py", f"{top}.py")
    for path in files:
        if path in own or (path.startswith(f"{top}.") and "/" not in path
                           and path.endswith((".so", ".pyd"))):
            name = dist.metadata["Name"]
            return (name, dist.version) if name and dist.version else None
    return None


@functools.cache  # one value per process (a package installed meanwhile is not seen)
def _distributions() -> dict[str, list[str]]:
    # Imported here: importlib.metadata pulls in the email package (~15 ms), which a run
    # whose steps call no installed library never needs.
    import importlib.metadata

    return dict(importlib.metadata.packages_distributions())  # slow: once, on first need


def distribution(top: str) -> tuple[str, str]:
    """Return the name and version of the distribution that installs module ``top``."""
    found = _DISTRIBUTIONS.get(top)
    if found is None:
        found = _DISTRIBUTIONS.put(top, _distribution(top))
    return found


def _distribution(top: str) -> tuple[str, str]:
    import importlib.metadata

    named = _named_distribution(top)
    if named is not None:
        return named
    for dist in sorted(_distributions().get(top, ())):
        try:
            return dist, importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    # No distribution claims it (a module dropped into site-packages): its __version__,
    # imported if need be -- not "unknown" in a process that had not imported it yet.
    try:
        module = sys.modules.get(top) or importlib.import_module(top)
    except (Exception, SystemExit):
        module = None
    version = getattr(module, "__version__", None)
    return top, version if isinstance(version, str) else "unknown"
