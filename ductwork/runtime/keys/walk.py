"""The walk behind a code fingerprint: what a step's code reaches, as named components.

A walk starts at the step's function and follows what its code can reach:

* the globals its bytecode loads (nested functions, lambdas and comprehensions
  included), ``module.attr`` chains through user modules, its closure cells,
  its default arguments, and the modules it imports inside its body (a user
  module is imported then, as the step would, so that it can be walked);
* for each user function reached, the same, transitively; for a user class,
  its ``class`` statement, the names that statement reads, its bases,
  metaclass and every method (property, static and class methods included);
* a module-level value of user code is hashed with ``hash_value``; one it
  cannot hash (a logger, a compiled regex, a client) counts as the source of
  the module-level statements that bind it, else as its type's name, and its
  class is walked if it is user code. Unhashable containers are walked by
  element and plain objects by the functions they hold, so a dict of helpers
  or ``FunctionTransformer(func=clean)`` reaches the helpers' code. A dataset
  (a lazy input) read this way counts by its content *now*: it is hashed on
  every walk, never memoized, and the walk's memo is never reused for it.

"User code" is any module whose file is not under the interpreter's stdlib or
site-packages directories -- ``__main__``, notebook cells and ``exec``'d code
included. A stdlib object counts as the Python minor version (always a
component); a site-packages object as its distribution's name and version;
a ductwork object as ductwork's version; builtins as nothing.

Each user function or class becomes a component named ``fn:module.qualname``
or ``class:module.qualname`` whose digest covers its normalized source (see
``source``) and its *bindings*: which name resolves to which component, so
swapping what two names refer to counts too. A component's digest never
depends on another's, so recursion and cycles need only a visited set, and a
changed helper changes exactly its own component -- and the digest of every
step that reaches it. Two objects with one name (closures made by one factory)
are told apart as ``name[2]``, ``name[3]`` in walk order, which is
deterministic. The root's decorators are dropped (``@step`` options are
hashed separately); so are ductwork decorators on any helper.

The walk also records the guards that ``fingerprint``'s memo re-checks.
"""

from __future__ import annotations

import builtins
import functools
import sys
from types import BuiltinFunctionType, FunctionType, MethodType, ModuleType

from ductwork.dsl.step import Step
from ductwork.runtime.keys import source as _source
from ductwork.runtime.keys.bytecode import scan
from ductwork.runtime.keys.code_digest import hash_code
from ductwork.runtime.keys.origin import (
    class_home,
    class_kind,
    class_module,
    code_kind,
    distribution,
    home_name,
    import_kind,
    module_file,
    module_kind,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_MISSING = object()
_NEVER = object()  # what no attribute ever is: a guard holding it is never fresh
_PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"


class _Walk:
    """One traversal from a root; collects components and the guards that validate them."""

    def __init__(self) -> None:
        self.components: dict[str, str] = {"python": _PYTHON}
        self.keys: dict[int, str] = {}  # id(function or class) -> its component name
        self.owners: dict[str, Any] = {}  # component name -> object (keeps ids alive)
        self.dicts: dict[tuple[int, str], tuple[Any, str, Any]] = {}
        self.attrs: list[tuple[Any, str, Any]] = []
        self.functions: list[tuple[FunctionType, Any, Any, Any]] = []
        self.cells: list[tuple[Any, Any]] = []
        self.containers: dict[int, Any] = {}  # unhashable containers walked by element

    def read(self, namespace: Any, name: str) -> Any:
        value = namespace.get(name, _MISSING)
        self.dicts[id(namespace), name] = (namespace, name, value)
        return value

    def attr(self, obj: Any, name: str) -> Any:
        value = _getattr(obj, name)
        self.attrs.append((obj, name, value))
        return value

    def name(self, base: str, obj: Any) -> str:
        key, n = base, 1
        while key in self.owners:
            n += 1
            key = f"{base}[{n}]"
        self.owners[key], self.keys[id(obj)] = obj, key
        return key

    def library(self, module: str, kind: str) -> None:
        if kind in ("package", "ductwork"):
            dist, version = distribution(module.partition(".")[0])
            self.components[f"pkg:{dist}"] = version

    def reach(self, value: Any, label: str = "", source: tuple[Any, str, Any] | None = None) -> str:
        """Record what ``value`` (found under ``label``) contributes; return its reference."""
        if id(value) in self.keys:
            return self.keys[id(value)]
        if isinstance(value, ModuleType):
            return self.module(value, bare=True)
        if isinstance(value, Step):
            return self.reach(value.fn, label)
        if isinstance(value, FunctionType):
            return self.function(value)
        if isinstance(value, type):
            return self.klass(value)
        if isinstance(value, functools.partial):
            refs = [self.reach(value.func, label)]
            refs += [self.reach(a, f"{label}[{i}]") for i, a in enumerate(value.args)]
            refs += [self.reach(v, f"{label}[{k}]") for k, v in sorted(value.keywords.items())]
            return f"partial({', '.join(refs)})"
        if isinstance(value, MethodType):
            self.reach(value.__self__, f"{label}.__self__")
            return f"method({self.reach(value.__func__, label)})"
        if isinstance(value, BuiltinFunctionType):
            owner = value.__self__
            module = getattr(value, "__module__", None) or (
                owner.__name__ if isinstance(owner, ModuleType) else type(owner).__module__
            )
            if module == "builtins":
                return f"builtin:{value.__qualname__}"
            self.library(module, module_kind(sys.modules.get(module), module))
            return f"lib:{module}.{value.__qualname__}"
        wrapped = _getattr(value, "__wrapped__") if callable(value) else _MISSING
        if wrapped is not _MISSING and wrapped is not value:  # functools.cache and the like
            self.keys[id(value)] = f"wrapped:{label}"  # a wrapper that wraps itself stops here
            self.klass(type(value))
            return f"wrapped({self.reach(wrapped, label)})"
        return self.constant(value, label, source)

    def constant(self, value: Any, label: str, source: tuple[Any, str, Any] | None) -> str:
        if label in self.components:
            return label
        # Here: a step that reads no module constant (most) never loads their hashing.
        from ductwork.runtime.keys.constants import constant_digest, constant_error

        try:
            digest, lazy = constant_digest(value)
        except Exception as exc:  # a lazy input's errors, or a failing __ductwork_hash__
            raise constant_error(label, value, exc) from exc
        if lazy:
            # A dataset read as a module constant: its content is part of the code, so
            # the memoized fingerprint must never be reused (a guard that never holds).
            self.attrs.append((value, "__class__", _NEVER))
        if digest is None:
            self.components[label] = "pending"  # a statement that reads its own name
            self.klass(type(value))
            self._elements(value, label)
            digest = self._assigned(value, source)
        elif not isinstance(value, int | float | str | bytes | bool | type(None)):
            if class_kind(type(value)) == "user":  # a callable instance, say
                self.klass(type(value))
        self.components[label] = digest
        return label

    def _assigned(self, value: Any, source: tuple[Any, str, Any] | None) -> str:
        """Digest a value without a hash by its state, its statement and what that reads."""
        # O = Obj(consts.K): the text alone misses an edit of consts.K, so its state
        # (when it has a hash) and the constants the statement reads count too.
        from ductwork.runtime.keys.constants import value_digest  # loaded by constant()

        state = _getattr(value, "__dict__")
        state = value_digest(state) if isinstance(state, dict) else None
        found = _source.assignment_digest(source[0], source[1]) if source else None
        if found:
            reads = _source.assignment_reads(source[0], source[1]) if source else set()
            heads, bare = {d[0] for d in reads}, {d[0] for d in reads if len(d) == 1}
            chains = {d for d in reads if len(d) > 1}
            bindings = self.names(source[2], heads, chains, bare) if source else []
            return "assign:" + hash_code("Assigned", found, state, sorted(bindings))
        named = getattr(value, "__qualname__", None) or getattr(value, "__name__", None)
        digest = f"object:{_qualname(type(value))}" + (f":{named}" if named else "")
        return digest if state is None else f"{digest}:{state}"

    def _elements(self, value: Any, label: str) -> None:
        if id(value) in self.containers:  # a container that holds itself
            return
        self.containers[id(value)] = value
        if isinstance(value, list | tuple):
            for i, item in enumerate(value):
                self.reach(item, f"{label}[{i}]")
        elif isinstance(value, dict):
            for i, (k, item) in enumerate(value.items()):
                self.reach(
                    item, f"{label}[{k!r}]" if isinstance(k, str | int) else f"{label}[#{i}]"
                )
        elif isinstance(value, set | frozenset):
            order = sorted(value, key=lambda v: str(getattr(v, "__qualname__", repr(v))))
            for i, item in enumerate(order):
                self.reach(item, f"{label}{{{i}}}")
        elif isinstance(attributes := _getattr(value, "__dict__"), dict):
            # An object holding user code, FunctionTransformer(func=clean) say: its code.
            for name, item in sorted(attributes.items()):
                if isinstance(item, FunctionType | Step | functools.partial | MethodType):
                    self.reach(item, f"{label}.{name}")

    def module(self, module: ModuleType, bare: bool) -> str:
        name = module.__name__
        kind = module_kind(module, name)
        name = home_name(name, module_file(module))
        if kind != "user":
            self.library(name, kind)
        elif bare and f"module:{name}" not in self.components:
            digest = _source.module_digest(module_file(module))
            self.components[f"module:{name}"] = digest or "(no source)"
        return f"module:{name}"

    def function(self, fn: FunctionType, root: bool = False) -> str:
        """Walk a function; its component covers its source and what its names resolve to."""
        if id(fn) in self.keys:
            return self.keys[id(fn)]
        globals_, code = fn.__globals__, fn.__code__
        module = globals_.get("__name__") or fn.__module__ or "__main__"
        kind = code_kind(module, code.co_filename)
        if kind != "user":
            self.library(module, kind)
            return f"lib:{module}.{fn.__qualname__}"
        key = self.name(f"fn:{home_name(module, code.co_filename)}.{fn.__qualname__}", fn)
        self.functions.append((fn, code, fn.__defaults__, fn.__kwdefaults__))
        found = scan(code)
        bindings = self.names(globals_, found.names - found.stored, found.chains, found.bare)
        bindings += [(name, "state") for name in found.stored]
        for var, cell in zip(code.co_freevars, fn.__closure__ or (), strict=True):
            value = _cell(cell)
            self.cells.append((cell, value))
            ref = "empty" if value is _MISSING else self.reach(value, f"closure:{key[3:]}:{var}")
            bindings.append((f"<closure {var}>", ref))
        params = code.co_varnames[: code.co_argcount]
        defaults = fn.__defaults__ or ()
        pairs = [*zip(params[len(params) - len(defaults) :], defaults, strict=True)]
        for param, value in [*pairs, *sorted((fn.__kwdefaults__ or {}).items())]:
            bindings.append((f"<default {param}>", self.reach(value, f"default:{key[3:]}:{param}")))
        for name, level, fromlist in found.imports:
            bindings.append((f"<import {name}>", self.imported(name, level, fromlist, globals_)))
        own = _source.function_digest(fn, root)
        self.components[key] = hash_code("Function", own, sorted(bindings))
        return key

    def names(self, namespace: Any, names: Any, chains: Any, bare: Any) -> list[tuple[str, str]]:
        """Resolve global names and ``module.attr`` chains read from ``namespace``."""
        builtin_names = namespace.get("__builtins__", builtins)
        builtin_names = getattr(builtin_names, "__dict__", builtin_names)
        file = namespace.get("__file__")
        module = home_name(namespace.get("__name__", "__main__"), file)
        bindings = []
        for name in sorted(names):
            value = self.read(namespace, name)
            if value is _MISSING:
                ref = f"builtin:{name}" if name in builtin_names else "missing"
            elif isinstance(value, ModuleType):
                ref = self.module(value, bare=name in bare)
            else:
                ref = self.reach(value, f"const:{module}.{name}", (file, name, namespace))
            bindings.append((name, ref))
        for chain in sorted(chains):
            obj, dotted = namespace.get(chain[0], _MISSING), chain[0]
            for i, attr in enumerate(chain[1:], 2):
                if not (isinstance(obj, ModuleType) and module_kind(obj, obj.__name__) == "user"):
                    break
                dotted = f"{dotted}.{attr}"
                bindings.append((dotted, self.member(obj, attr, bare=i == len(chain))))
                obj = _getattr(obj, attr)
        return bindings

    def member(self, module: ModuleType, attr: str, bare: bool) -> str:
        """Resolve ``attr`` of a user module, a submodule if it is not an attribute yet."""
        value = self.attr(module, attr)
        if value is _MISSING:
            value = sys.modules.get(f"{module.__name__}.{attr}", _MISSING)
        if value is _MISSING:
            return "missing"
        if isinstance(value, ModuleType):
            return self.module(value, bare)
        file = module_file(module)
        label = f"const:{home_name(module.__name__, file)}.{attr}"
        return self.reach(value, label, (file, attr, vars(module)))

    def imported(self, name: str, level: int, fromlist: tuple[str, ...], globals_: Any) -> str:
        """Follow an import inside a function body; user modules are imported to walk them."""
        import importlib.util  # here: most steps import nothing in their body (~1.6M instr.)

        try:
            absolute = importlib.util.resolve_name("." * level + name, globals_.get("__package__"))
            kind = import_kind(absolute)
            if kind != "user":
                self.library(absolute, kind)
                return f"module:{absolute}"
            module = importlib.import_module(absolute)
        except Exception as exc:  # the step itself will fail on this import, and say why
            return f"unimportable:{name}:{type(exc).__name__}"
        refs = [self.module(module, bare=not fromlist)]
        refs += [self.member(module, attr, bare=True) for attr in fromlist if attr != "*"]
        return ",".join(refs)

    def klass(self, cls: type) -> str:
        """Walk a class: its ``class`` statement, the names it reads, bases and methods."""
        if id(cls) in self.keys:
            return self.keys[id(cls)]
        kind = class_kind(cls)
        if kind == "builtin":
            return f"builtin:{cls.__qualname__}"
        if kind != "user":
            self.library(cls.__module__, kind)
            return f"lib:{cls.__module__}.{cls.__qualname__}"
        key = self.name(f"class:{_qualname(cls)}", cls)
        # Here: a step that reaches no user class (most) never loads ``members``.
        from ductwork.runtime.keys.members import callables as _callables
        from ductwork.runtime.keys.members import data_attributes

        module_path, module_namespace = class_module(cls)
        own_methods = [
            f
            for f in vars(cls).values()
            if isinstance(f, FunctionType) and f.__qualname__.startswith(f"{cls.__qualname__}.")
        ]
        node, filename = None, None
        for filename in dict.fromkeys(
            [*(f.__code__.co_filename for f in own_methods), module_path]
        ):
            node = _source.class_node(cls, filename)
            if node is not None:
                break
        namespace = next(
            (f.__globals__ for f in own_methods if f.__code__.co_filename == filename),
            module_namespace,
        )
        bindings: list[tuple[str, str]] = []
        if node is not None:
            drop = functools.partial(_source.is_ductwork_decorator, globals_=namespace)
            own = hash_code("Source", _source.canonical(node, drop))
            reads = _source.class_reads(node)
            heads, bare = {d[0] for d in reads}, {d[0] for d in reads if len(d) == 1}
            bindings += self.names(namespace, heads, {d for d in reads if len(d) > 1}, bare)
            bindings += self._set_outside(cls, key, _source.class_binds(node))
        else:
            # namedtuple, Enum("Color", ...) or exec'd: the statement that made it, if any
            made = _source.assignment_digest(module_path, cls.__name__)
            own = hash_code("Class", cls.__qualname__, data_attributes(cls, _qualname), made)
        self.attrs.append((cls, "__bases__", cls.__bases__))
        bindings += [("<base>", self.reach(b)) for b in cls.__bases__ if b is not object]
        if type(cls) is not type:
            bindings.append(("<metaclass>", self.reach(type(cls))))
        members = vars(cls)
        for name in sorted(members):
            self.dicts[id(cls), name] = (members, name, members[name])
            for i, fn in enumerate(_callables(cls, members[name])):
                made = getattr(getattr(fn, "__code__", None), "co_filename", filename)
                if node is not None and made != filename and made.startswith("<"):
                    continue  # generated by a class decorator (dataclass, attrs): in the source
                bindings.append((f"{name}#{i}", self.reach(fn, f"const:{key[6:]}.{name}")))
        self.components[key] = hash_code("Class", own, sorted(bindings))
        return key

    def _set_outside(self, cls: type, key: str, bound: set[str]) -> list[tuple[str, str]]:
        """Data attributes the class statement does not bind: ``C.K = 3`` after it."""
        from ductwork.runtime.keys.members import callables as _callables  # loaded by klass

        out = []
        for name, value in sorted(vars(cls).items()):
            # Dunders and _sunder_ names are Python's and the metaclass's (enum, abc).
            special = name.startswith("__") or (name[:1] == "_" and name[-1:] == "_")
            if name in bound or special or _callables(cls, value):
                continue
            out.append((f"<attr {name}>", self.reach(value, f"const:{key[6:]}.{name}")))
        return out


def _getattr(obj: Any, name: str) -> Any:
    try:
        return getattr(obj, name, _MISSING)
    except Exception:
        return _MISSING


def _cell(cell: Any) -> Any:
    try:
        return cell.cell_contents
    except ValueError:  # not yet assigned
        return _MISSING


def _qualname(cls: type) -> str:
    return f"{class_home(cls)}.{cls.__qualname__}"
