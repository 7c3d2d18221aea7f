"""Normalized code of functions, classes and modules, for the code fingerprint.

A definition is located in the AST of its file (read through ``linecache``, so
notebook cells and ``__main__`` scripts work like files) and dumped without
docstrings, comments, positions or type comments; the dump is what gets
hashed. A function is found by its name and the line its code object starts
on (the first decorator's line), and checked against the code object's
argument names; a class by its qualified name, preferring the definition that
encloses one of its methods. When no matching source exists -- ``exec``'d
code, two lambdas on one line, a file edited since it was imported -- the code
object itself is normalized instead: bytecode, constants (recursively), names
and flags, without line numbers. That fallback is deterministic for one Python
minor version, which is part of every fingerprint anyway.

Results are cached by code object identity (the code object held, so its id
is not reused meanwhile), so a function keeps the digest of the source it was
compiled from even if its file changes later on disk. The caches are bounded
(``caches``): an evicted entry is recomputed, from the same code object.

Whether code is user code at all, or a library's, is decided in ``origin``.
"""

from __future__ import annotations

import ast
import linecache
from collections.abc import Callable, Iterator
from types import CodeType, FunctionType, ModuleType

from ductwork.runtime import caches
from ductwork.runtime.keys.code_digest import hash_code

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

# filename -> (text, tree, index); a tree is large, and one per source file is enough.
_TREES = caches.cache("keys.source_trees", maxsize=1024)
# (id(code), root) -> (code, digest)
_DIGESTS = caches.cache("keys.source_digests", maxsize=8192)


def function_digest(fn: FunctionType, root: bool) -> str:
    """Digest a function's normalized source; a root loses all decorators, others ductwork's."""
    code = fn.__code__
    hit = _DIGESTS.get((id(code), root))
    if hit is not None and hit[0] is code:
        return hit[1]
    node = _find_function(code)
    if node is None:
        doc = fn.__doc__ is not None and bool(code.co_consts) and code.co_consts[0] == fn.__doc__
        digest = hash_code("Bytecode", _code_text(code, strip_doc=doc))
    else:
        globals_ = fn.__globals__
        digest = hash_code(
            "Source", canonical(node, lambda d: root or is_ductwork_decorator(d, globals_))
        )
    _DIGESTS.put((id(code), root), (code, digest))
    return digest


def is_ductwork_decorator(decorator: ast.expr, globals_: Any) -> bool:
    """Tell whether a decorator expression names a ductwork object, such as ``@step(...)``."""
    # ``@step(retries=3)`` on a helper that is also a step: its options are
    # hashed with that step, not into the code of the steps that call it.
    node: ast.expr = decorator
    while isinstance(node, ast.Call | ast.Attribute):
        node = node.func if isinstance(node, ast.Call) else node.value
    if not isinstance(node, ast.Name):
        return False
    obj = globals_.get(node.id)
    name = obj.__name__ if isinstance(obj, ModuleType) else getattr(obj, "__module__", None)
    return isinstance(name, str) and (name == "ductwork" or name.startswith("ductwork."))


def class_node(cls: type, filename: str | None) -> ast.ClassDef | None:
    """Find the ``class`` statement that defined ``cls`` in ``filename``."""
    index = _index(filename) if filename else None
    if index is None:
        return None
    candidates = index.get(cls.__qualname__, [])
    lines = [
        f.__code__.co_firstlineno
        for f in vars(cls).values()
        if isinstance(f, FunctionType) and f.__code__.co_filename == filename
    ]
    for node in reversed(candidates):
        if not lines or any(node.lineno <= n <= (node.end_lineno or 0) for n in lines):
            assert isinstance(node, ast.ClassDef)
            return node
    return None


def class_reads(node: ast.ClassDef) -> set[tuple[str, ...]]:
    """Dotted names the class statement reads from module scope while it runs."""
    parts: list[ast.AST] = [*node.decorator_list, *node.bases, *node.keywords]
    local: set[str] = set()
    for stmt in node.body:
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            parts.extend(stmt.decorator_list)
            local.add(stmt.name)
        else:
            parts.append(stmt)
            local.update(
                n.id for n in ast.walk(stmt) if isinstance(n, ast.Name) and n.ctx != ast.Load()
            )
    found: set[tuple[str, ...]] = set()
    for part in parts:
        for dotted in _dotted_loads(part):
            if dotted[0] not in local:
                found.add(dotted)
    return found


def module_digest(filename: str | None) -> str | None:
    """Digest a whole module's normalized source, or None when it has none."""
    tree = _tree(filename) if filename else None
    return None if tree is None else hash_code("Module", canonical(tree, _keep))


def assignment_digest(filename: str | None, name: str) -> str | None:
    """Digest the module-level statements that bind ``name``, or None if there are none."""
    tree = _tree(filename) if filename else None
    if tree is None:
        return None
    found = [canonical(s, _keep) for s in _top_statements(tree.body) if name in _binds(s)]
    return hash_code("Assign", found) if found else None


def assignment_reads(filename: str | None, name: str) -> set[tuple[str, ...]]:
    """Dotted names that the module-level statements binding ``name`` read."""
    tree = _tree(filename) if filename else None
    if tree is None:
        return set()
    found: set[tuple[str, ...]] = set()
    for stmt in _top_statements(tree.body):
        if name in _binds(stmt):
            found.update(d for d in _dotted_loads(stmt) if d[0] != name)
    return found


def class_binds(node: ast.ClassDef) -> set[str]:
    """Names the body of a ``class`` statement binds (its source covers their values)."""
    bound: set[str] = set()
    for stmt in node.body:
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            bound.add(stmt.name)
        else:
            bound.update(_binds(stmt))
    return bound


def canonical(node: ast.AST, drop: Callable[[ast.expr], bool]) -> str:
    """Dump a node without docstrings, positions, type comments or ``drop``ped decorators."""
    return repr(_canon(node, drop, top=True))


def _canon(node: Any, drop: Callable[[ast.expr], bool], top: bool = False) -> Any:
    # The same nested tuples as a plain walk over ``_fields``, made with a table per node
    # type and without a call per leaf value: this is most of a cold fingerprint.
    info = _SHAPES.get(type(node))
    if info is None:
        if type(node) is list:
            return [x if type(x) in _ATOMS else _canon(x, drop) for x in node]
        if not isinstance(node, ast.AST):
            return node
        info = _shape(type(node))
    name, fields, special = info
    if special:
        if top:
            return _canon_special(node, name, fields, drop, top)
        # Below the top, the dump is the node's alone (``drop`` only acts on the top's
        # decorators): kept on the node, as a class's dump holds its methods' bodies and a
        # module's holds everything, each also dumped on its own. The node is ours (parsed
        # here) and the memo dies with it.
        done = node.__dict__.get(_MEMO)
        if done is None:
            done = _canon_special(node, name, fields, drop, top)
            setattr(node, _MEMO, done)
        return done
    out: list[Any] = [name]
    for field in fields:
        value = getattr(node, field, None)
        out.append(value if type(value) in _ATOMS else _canon(value, drop))
    return tuple(out)


def _canon_special(
    node: Any, name: str, fields: tuple[str, ...], drop: Callable[[ast.expr], bool], top: bool
) -> Any:
    out: list[Any] = [name]
    for field in fields:
        value = getattr(node, field, None)
        if field == "body" and _has_docstring(node):
            value = value[1:]
        elif field == "decorator_list":
            value = [d for d in value if not (top and drop(d))]
        out.append(_canon(value, drop))
    return tuple(out)


_MEMO = "_ductwork_dump"
# Leaf values of a parsed tree, which stand for themselves in the dump.
_ATOMS = frozenset({str, int, float, complex, bytes, bool, type(None), type(...)})
# node type -> (its name, its fields but type_comment, whether body/decorator_list need care)
_SHAPES: dict[type, tuple[str, tuple[str, ...], bool]] = {}


def _shape(cls: type) -> tuple[str, tuple[str, ...], bool]:
    fields = tuple(f for f in cls._fields if f != "type_comment")  # type: ignore[attr-defined]
    info = (cls.__name__, fields, "body" in fields or "decorator_list" in fields)
    _SHAPES[cls] = info
    return info


def _has_docstring(node: ast.AST) -> bool:
    body = getattr(node, "body", None)
    return (
        isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Module)
        and bool(body)
        and isinstance(body[0], ast.Expr)
        and isinstance(body[0].value, ast.Constant)
        and isinstance(body[0].value.value, str)
    )


def _keep(_: ast.expr) -> bool:
    return False


def defines(code: CodeType) -> bool:
    """Tell whether ``code``'s file holds a definition it could have been compiled from."""
    # False for code exec'd from a string with the module's globals (a dataclass's
    # __init__, say), whose file name says nothing about where its source is.
    found = _definitions(code) or []
    return any(_same_arguments(node, code) for node in found)


def _find_function(code: CodeType) -> ast.AST | None:
    found = _definitions(code)
    if found is None or len(found) != 1:  # two lambdas on one line, or none: use the bytecode
        return None
    # A mismatch means the file changed since this code was compiled from it.
    return found[0] if _same_arguments(found[0], code) else None


def _definitions(code: CodeType) -> list[ast.AST] | None:
    """The function nodes of ``code``'s file that start where it does; None without source."""
    entry = _entry(code.co_filename)
    if entry is None:
        return None
    index = entry[2]
    if code.co_name == "<lambda>" and _LAMBDAS not in index:
        index.update(_lambda_index(entry[1]))  # one update: a thread sees all lambdas or none
    return index.get((code.co_name, code.co_firstlineno), [])


def _same_arguments(node: ast.AST, code: CodeType) -> bool:
    args = node.args  # type: ignore[attr-defined]
    names = [a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)]
    return names == list(code.co_varnames[: code.co_argcount + code.co_kwonlyargcount])


def _tree(filename: str) -> ast.Module | None:
    entry = _entry(filename)
    return None if entry is None else entry[1]


def _index(filename: str) -> dict[Any, list[ast.AST]] | None:
    entry = _entry(filename)
    return None if entry is None else entry[2]


def _entry(filename: str) -> tuple[str, ast.Module, dict[Any, list[ast.AST]], Any] | None:
    # checkcache drops lines of files changed on disk (a reloaded module); it
    # leaves alone entries without a file, such as notebook cells.
    linecache.checkcache(filename)
    lines = linecache.getlines(filename)
    cached = _TREES.get(filename)
    if cached is not None and cached[3] is lines:  # linecache kept its list: the same text
        return cached
    text = "".join(lines)
    if not text:
        return None
    if cached is not None and cached[0] == text:
        return cached
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return None
    entry = (text, tree, _build_index(tree), lines)
    _TREES.put(filename, entry)
    return entry


def _build_index(tree: ast.Module) -> dict[Any, list[ast.AST]]:
    """Map (name, first line) to function nodes and qualified name to class nodes.

    Only statement lists are walked: a ``def`` or ``class`` is a statement, never inside an
    expression, which is most of a tree. Lambdas, which can be anywhere, are indexed the
    first time one is looked up (``_lambda_index``).
    """
    index: dict[Any, list[ast.AST]] = {}

    def visit(body: list[Any], prefix: str) -> None:
        for child in body:
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                first = min([d.lineno for d in child.decorator_list] + [child.lineno])
                index.setdefault((child.name, first), []).append(child)
                visit(child.body, f"{prefix}{child.name}.<locals>.")
            elif isinstance(child, ast.ClassDef):
                index.setdefault(prefix + child.name, []).append(child)
                visit(child.body, f"{prefix}{child.name}.")
            else:
                fields = _BLOCKS.get(type(child))
                if fields is None:
                    fields = _BLOCKS[type(child)] = tuple(
                        f for f in type(child)._fields if f in _BLOCK_FIELDS
                    )
                for field in fields:  # in _fields order: the order a full walk finds them in
                    visit(getattr(child, field, None) or [], prefix)

    visit(tree.body, "")
    return index


# Fields that hold statements (or except/case clauses, which hold statements).
_BLOCK_FIELDS = frozenset({"body", "orelse", "handlers", "finalbody", "cases"})
_BLOCKS: dict[type, tuple[str, ...]] = {}
_LAMBDAS = ("<lambda>", "indexed")  # a key of an index whose lambdas are in it


def _lambda_index(tree: ast.Module) -> dict[Any, list[ast.AST]]:
    found: dict[Any, list[ast.AST]] = {_LAMBDAS: []}
    for node in ast.walk(tree):
        if isinstance(node, ast.Lambda):
            found.setdefault(("<lambda>", node.lineno), []).append(node)
    return found


def _dotted_loads(node: ast.AST) -> Iterator[tuple[str, ...]]:
    inner: set[int] = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Attribute) and id(sub) not in inner:
            parts, cur = [], sub
            while isinstance(cur, ast.Attribute):
                inner.add(id(cur.value))
                parts.append(cur.attr)
                cur = cur.value
            if isinstance(cur, ast.Name) and isinstance(cur.ctx, ast.Load):
                yield (cur.id, *reversed(parts))
        elif isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Load) and id(sub) not in inner:
            yield (sub.id,)


def _top_statements(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    for stmt in body:
        yield stmt
        if not isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            for field in ("body", "orelse", "finalbody", "handlers"):
                yield from _top_statements(getattr(stmt, field, []) or [])


def _binds(stmt: ast.AST) -> set[str]:
    if isinstance(stmt, ast.Import | ast.ImportFrom):
        return {(a.asname or a.name).partition(".")[0] for a in stmt.names}
    if isinstance(stmt, ast.Assign | ast.AnnAssign | ast.AugAssign):
        targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
        return {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
    return set()


def _code_text(code: CodeType, strip_doc: bool = False) -> str:
    consts = list(code.co_consts)
    if strip_doc and consts:
        consts[0] = None
    return repr(
        (
            code.co_name,
            code.co_argcount,
            code.co_posonlyargcount,
            code.co_kwonlyargcount,
            code.co_flags,
            code.co_code.hex(),
            code.co_names,
            code.co_varnames,
            code.co_freevars,
            code.co_cellvars,
            tuple(_const_text(c) for c in consts),
        )
    )


def _const_text(value: Any) -> Any:
    if isinstance(value, CodeType):
        return ("code", _code_text(value))
    if isinstance(value, frozenset):  # iteration order follows PYTHONHASHSEED
        return ("frozenset", tuple(sorted(repr(_const_text(v)) for v in value)))
    if isinstance(value, tuple):
        return ("tuple", tuple(_const_text(v) for v in value))
    return (type(value).__name__, repr(value))

