"""What a code object reads from its module scope, read from its bytecode.

``scan`` lists the global names a code object (and the code nested in it) loads,
the ``name.attr.attr`` chains it loads through them, the names it assigns with
``global`` and the modules it imports. It is what ``dis.get_instructions`` would
give, read straight from ``co_code``: ``dis`` also works out line numbers,
jump labels, positions and exception tables for every code object, which was
most of the cost of fingerprinting a small function the first time.

How the bytes are read (CPython 3.11 to 3.13): two bytes per instruction,
opcode then argument; ``EXTENDED_ARG`` prefixes carry the high bits of the next
argument and are instructions of their own (so, as in ``dis``, one between two
attribute loads ends a chain); the inline caches that follow some instructions
are ``CACHE`` units (opcode 0) in ``co_code``, which ``dis`` skips. Global and
attribute loads keep a flag in the argument's low bits, by version. On any
other version the scan goes through ``dis`` as before.
"""

from __future__ import annotations

import opcode  # dis's tables, without the ~4M instructions of dis itself
import sys
from collections import namedtuple
from collections.abc import Iterator
from types import CodeType

from ductwork.runtime import caches

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["Scan", "scan"]

# id(code) -> (code, Scan)
_SCANS = caches.cache("keys.code_scans", maxsize=8192)


# A collections.namedtuple, not a typing.NamedTuple class: typing costs a run ~12M
# instructions. Fields: the global names loaded (frozenset of str); each global name
# followed by attribute loads (frozenset of tuples of str); the global names used other than
# as the head of a chain; the names assigned with ``global`` (state, not constants); the
# modules imported, as (module, level, fromlist) tuples.
Scan = namedtuple("Scan", ["names", "chains", "bare", "stored", "imports"])
Scan.__doc__ = "What a code object (with its nested code) reads from its module scope."


def scan(code: CodeType) -> Scan:
    """Find the globals, attribute chains and imports a code object uses."""
    hit = _SCANS.get(id(code))
    if hit is not None and hit[0] is code:
        return hit[1]
    names: set[str] = set()
    chains: set[tuple[str, ...]] = set()
    bare: set[str] = set()
    stored: set[str] = set()
    imports: list[tuple[str, int, tuple[str, ...]]] = []
    stack = [code]
    while stack:
        co = stack.pop()
        stack.extend(c for c in co.co_consts if isinstance(c, CodeType))
        if not co.co_names:
            continue  # every instruction the scan looks at names an entry of co_names
        chain: list[str] | None = None
        consts: list[Any] = [None, None]
        for op, argval in _instructions(co):
            if chain is not None:
                if op == "attr":
                    chain.append(argval)
                    continue
                if len(chain) > 1:
                    chains.add(tuple(chain))
                else:
                    bare.add(chain[0])
                chain = None
            if op == "global":
                names.add(argval)
                chain = [argval]
            elif op == "store":
                stored.add(argval)
            elif op == "const":
                consts = [consts[-1], argval]
            elif op == "import":
                level, fromlist = consts
                level = level if isinstance(level, int) else 0
                imports.append((argval, level, tuple(fromlist or ())))
        if chain is not None:
            (chains.add(tuple(chain)) if len(chain) > 1 else bare.add(chain[0]))
    result = Scan(
        frozenset(names), frozenset(chains), frozenset(bare), frozenset(stored), tuple(imports)
    )
    _SCANS.put(id(code), (code, result))
    return result


# opname -> (what scan makes of it, how its argument indexes its table)
_KINDS: dict[str, tuple[str, str]] = {
    "LOAD_GLOBAL": ("global", "name>>1"),
    "LOAD_NAME": ("global", "name"),
    "LOAD_ATTR": ("attr", "name>>1" if sys.version_info >= (3, 12) else "name"),
    "LOAD_METHOD": ("attr", "name"),  # 3.11 only
    "STORE_GLOBAL": ("store", "name"),
    "DELETE_GLOBAL": ("store", "name"),
    "LOAD_CONST": ("const", "const"),
    "LOAD_SMALL_INT": ("const", "int"),  # 3.14 loads small ints apart
    "IMPORT_NAME": ("import", "name"),
}
_OPS = {opcode.opmap[n]: kind for n, kind in _KINDS.items() if opcode.opmap.get(n, 256) < 256}
_CACHE = opcode.opmap.get("CACHE")
# Checked against dis on 3.11, 3.12 and 3.13 (tests/runtime/keys/test_bytecode.py).
_FAST = (3, 11) <= sys.version_info[:2] <= (3, 13) and _CACHE == 0


def _instructions(co: CodeType) -> Iterator[tuple[str | None, Any]]:
    """Yield (kind, argument value) per instruction, kind None for the ones scan skips."""
    if not _FAST:
        yield from _by_dis(co)
        return
    code, names, consts = co.co_code, co.co_names, co.co_consts
    ops, have_arg, extended = _OPS, opcode.HAVE_ARGUMENT, opcode.opmap["EXTENDED_ARG"]
    ext = 0
    for i in range(0, len(code), 2):
        op = code[i]
        if op == 0:  # an inline cache entry, not an instruction
            continue
        if op < have_arg:
            ext = 0
            yield None, None
            continue
        arg = code[i + 1] | ext
        if op == extended:
            ext = arg << 8
            yield None, None
            continue
        ext = 0
        found = ops.get(op)
        if found is None:
            yield None, None
            continue
        kind, how = found
        if how == "name>>1":
            yield kind, names[arg >> 1]
        elif how == "name":
            yield kind, names[arg]
        elif how == "const":
            yield kind, consts[arg]
        else:
            yield kind, arg


def _by_dis(co: CodeType) -> Iterator[tuple[str | None, Any]]:
    import dis  # a Python this scan was not checked on

    for ins in dis.get_instructions(co):
        found = _KINDS.get(ins.opname)
        yield (found[0] if found else None), ins.argval
