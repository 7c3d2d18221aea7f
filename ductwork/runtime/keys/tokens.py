"""Values to tokens: the type dispatcher behind every value hash.

``normalize(value)`` turns a value into a *token*: a nested list of ``str``, ``bytes`` (or a
flat ``memoryview``), ``int`` and ``None``, tagged with its kind -- ``["int", 3]``,
``["float", "3.0"]``, ``["tuple", ...]``, ``["dict", [k, v], ...]``. Kinds never share a
token even where Python calls values equal (``1 == 1.0 == True``, ``[1]`` and ``(1,)``).
Floats are spelled by ``repr``: exact, one NaN, ``-0.0`` distinct from ``0.0``.

Set elements are sorted by content, so nothing depends on ``PYTHONHASHSEED``. Dict entries
keep their insertion order: code sees it (``json.dumps``, iteration, ``list(d)``), so
``{"b": 2, "a": 1}`` must not be served the result of ``{"a": 1, "b": 2}``. A dict's order is
as deterministic as the code that built it. (``OrderedDict`` keeps its own tag.)

Types join through ``register_hash`` (``normalize.register``) or a ``__ductwork_hash__()``
method, whose result is normalized in the value's place; a hook that raises is a
``HashHookError`` naming the type and the exception, never passed over. Registrations for
heavy libraries wait in ``register_lazy`` until a value from their package is first seen
(``hashing`` names the numpy and pandas ones). A value with no handler -- function,
class, generator, file, lock, plain object, a container holding itself -- raises
``UnhashableValue``. Nothing falls back to pickle, ``repr`` or ``id``: they change between
runs, and a key built on them would miss (or hit) silently.

Hash values through ``hashing``, which also registers the numpy and pandas handlers.
"""

from __future__ import annotations

import _thread  # threading's locks, without threading (~2.6M instructions and an exit hook)
import reprlib
from collections import OrderedDict
from collections.abc import Callable, Iterable
from enum import Enum
from operator import itemgetter

from ductwork.dsl.options import Environment
from ductwork.runtime.keys.dispatch import Dispatcher
from ductwork.runtime.keys.encoding import Token, _encode
from ductwork.runtime.keys.errors import HashHookError, UnhashableValue
from ductwork.runtime.keys.origin import class_home
from ductwork.runtime.registry import LazyRegistrations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["normalize", "register_hash", "register_lazy"]

# --- traversal ---------------------------------------------------------------------------

_state = _thread._local()  # ids of the containers being normalized on this thread
_LAZY = LazyRegistrations()  # handlers for numpy, pandas, ...: registered on first sight
_at_index = "[{}]".format
_at_attr = ".{}".format


def _qualname(cls: type) -> str:
    # By where the class lives: __main__.Config is pipe.Config, however pipe.py was started.
    return f"{class_home(cls)}.{cls.__qualname__}"


def _type_name(cls: type) -> str:
    return cls.__qualname__ if cls.__module__ == "builtins" else _qualname(cls)


def _at_key(key: object) -> str:
    return f"[{reprlib.repr(key)}]"


def _in_set(element: object) -> str:
    return f"{{{reprlib.repr(element)}}}"


def _enter(obj: object) -> set[int]:
    """Mark ``obj`` as being normalized on this thread; refuse it if it already is."""
    active = _state.__dict__.setdefault("active", set())
    if id(obj) in active:
        raise UnhashableValue(_type_name(type(obj)), reason="it contains itself (a cycle)")
    active.add(id(obj))
    return active


def _walk(
    obj: object,
    pairs: Iterable[tuple[Any, Any]],
    label: Callable[[Any], str],
    fn: Callable[[Any], Token] | None = None,
) -> list[Token]:
    """Normalize the ``(position, child)`` pairs of ``obj``, refusing cycles, naming the path."""
    fn = fn or normalize
    active = _enter(obj)
    where, out = None, []
    try:
        for where, child in pairs:  # noqa: B007 -- `where` names the failing child below
            atom = _ATOMS.get(type(child))  # skips the dispatcher on the hot path
            out.append(fn(child) if atom is None else atom(child))
    except UnhashableValue as exc:
        exc.path = label(where) + exc.path
        raise
    finally:
        active.discard(id(obj))
    return out


def _canonical(entries: list[tuple[Any, Token, Any]]) -> None:
    """Sort ``(value, token, ...)`` entries by content alone, whatever their iteration order."""
    first = type(entries[0][0]) if entries else str
    if (first is str or first is int) and all(type(e[0]) is first for e in entries):
        entries.sort(key=itemgetter(0))  # any order fixed by content will do; this is cheap
    else:
        # By the whole entry, so that equal keys (two NaNs) are ordered by their values.
        entries.sort(key=lambda e: _encode(list(e[1:])))


# --- the dispatcher ------------------------------------------------------------------------


@Dispatcher
def normalize(value: Any) -> Token:
    """Return the canonical token of ``value``; raise ``UnhashableValue`` if it has none."""
    token = _special(value, _FALLBACK)
    if token is not None:
        return token
    cls = type(value)
    if hasattr(cls, "__dataclass_fields__"):
        # A dataclass instance means dataclasses is loaded; importing it up front would cost
        # every run ~6M instructions for values that are rarely dataclasses.
        import dataclasses

        if dataclasses.is_dataclass(value):
            return _record("dataclass", value, [f.name for f in dataclasses.fields(value)])
    if (attributes := getattr(cls, "__attrs_attrs__", None)) is not None:
        return _record("attrs", value, [a.name for a in attributes])
    reason = ""
    if callable(value):
        reason = (
            "it is code, not data: ductwork fingerprints the code a step reaches from its "
            "source, and a callable passed as a value has no stable content"
        )
    raise UnhashableValue(_type_name(cls), reason=reason)


_FALLBACK = normalize.registry[object]


def _special(value: Any, current: Callable[[Any], Token]) -> Token | None:
    """Normalize ``value`` by its hook, as an enum or namedtuple, or by a lazy registration."""
    cls = type(value)
    if getattr(cls, "__ductwork_hash__", None) is not None:
        return _hook(value)
    if isinstance(value, Enum):
        return ["enum", _qualname(cls), value.name]
    if isinstance(value, tuple) and hasattr(cls, "_fields"):
        return _record("namedtuple", value, list(cls._fields))
    _LAZY.load(cls)
    handler = normalize.dispatch(cls)
    return None if handler is current else handler(value)


def _subclass(value: Any, body: Callable[[Any], Token], handler: Callable[[Any], Token]) -> Token:
    """Normalize an instance of a subclass of a supported type, tagged with its class."""
    token = _special(value, handler)
    return token if token is not None else ["subclass", _qualname(type(value)), body(value)]


def _hook(value: Any) -> Token:
    try:
        result = value.__ductwork_hash__()
    except RecursionError:
        raise  # a hook over a deeply nested value: reported as such by the caller
    except Exception as exc:
        # Never passed over: keying the value by anything else (its type's name) would
        # give different values one key -- a stale hit.
        raise HashHookError(
            _type_name(type(value)),
            reason=f"its __ductwork_hash__() raised {type(exc).__name__}: {exc}",
        ) from exc
    # Walked under ``value``, so a hook that returns its own value is refused as a cycle.
    inner = _walk(value, [("", result)], ".__ductwork_hash__(){}".format)
    return ["hook", _qualname(type(value)), *inner]


def _record(kind: str, value: Any, names: list[str]) -> Token:
    tokens = _walk(value, ((name, getattr(value, name)) for name in names), _at_attr)
    return [kind, _qualname(type(value)), *[[n, t] for n, t in zip(names, tokens, strict=True)]]


def register_hash(type_: type, fn: Callable[[Any], Token]) -> Callable[[Any], Token]:
    """Register ``fn(value) -> token`` as the normalizer of ``type_`` and its subclasses."""
    return normalize.register(type_)(fn)


def register_lazy(module_name: str, registration: Callable[[], None]) -> None:
    """Run ``registration()`` the first time a value from top-level ``module_name`` is seen."""
    _LAZY.add(module_name, registration)


# --- builtins and the standard library ------------------------------------------------------

# Exact scalar types are normalized without the dispatcher (see _walk); their subclasses and
# top-level values go through the same functions via the registrations below.
_ATOMS: dict[type, Callable[[Any], Token]] = {
    type(None): lambda _: ["None"],
    bool: lambda b: ["bool", 1 if b else 0],
    # The dunder calls turn a subclass instance into a plain value, without its overrides.
    int: lambda i: ["int", int.__int__(i)],
    float: lambda f: ["float", repr(float.__float__(f))],
    str: lambda s: ["str", str.__str__(s)],
    bytes: lambda b: ["bytes", bytes.__bytes__(b)],
}
_PLAIN: dict[type, Callable[[Any], Token]] = {
    type(None): _ATOMS[type(None)],
    bool: _ATOMS[bool],
    range: lambda r: ["range", r.start, r.stop, r.step],
    memoryview: lambda m: [
        "memoryview",
        m.format,
        list(m.shape),
        m if m.c_contiguous else m.tobytes(),
    ],
}
for _type_, _fn in _PLAIN.items():
    normalize.register(_type_, _fn)
del _type_, _fn


# Registered on first sight of a value of theirs: a value of these types cannot exist
# before its module is imported, and importing decimal, fractions and zoneinfo up front
# cost every run's start ~5 ms (pathlib, with the urllib.parse and ipaddress it imports,
# ~17M instructions).
def _register_decimal() -> None:
    from decimal import Decimal

    normalize.register(Decimal, lambda d: ["Decimal", str(d)])


def _register_fraction() -> None:
    from fractions import Fraction

    normalize.register(Fraction, lambda f: ["Fraction", f.numerator, f.denominator])


def _register_zone() -> None:
    from zoneinfo import ZoneInfo

    def _zone(value: ZoneInfo) -> Token:
        if value.key is None:
            raise UnhashableValue(_qualname(ZoneInfo),
                                  reason="a ZoneInfo read from a file has no key")
        return ["ZoneInfo", value.key]

    normalize.register(ZoneInfo, _zone)


def _register_path() -> None:
    from pathlib import PurePath, PureWindowsPath

    # A path is hashed as its name, not its content: @step(hash_paths=...) covers files.
    normalize.register(PurePath, lambda p: [
        "path", "windows" if isinstance(p, PureWindowsPath) else "posix", str(p)])


def _register_uuid() -> None:
    import uuid

    normalize.register(uuid.UUID, lambda u: ["UUID", u.bytes])


register_lazy("decimal", _register_decimal)
register_lazy("uuid", _register_uuid)
register_lazy("fractions", _register_fraction)
register_lazy("zoneinfo", _register_zone)
register_lazy("pathlib", _register_path)


@normalize.register(type)  # by class, not by annotation: get_type_hints costs a run
def _type(value: type) -> Token:
    raise UnhashableValue("type", reason=f"{_type_name(value)} is a class: code, not data")


@normalize.register(Enum)
def _enum(value: Enum) -> Token:
    return _special(value, _enum)  # the hook wins over the member's name


def _dict(value: dict, tag: str = "dict") -> Token:
    active = _enter(value)
    key, entries = None, []
    try:
        for key, item in value.items():
            atom = _ATOMS.get(type(key))
            key_token = normalize(key) if atom is None else atom(key)
            atom = _ATOMS.get(type(item))
            entries.append((key, key_token, normalize(item) if atom is None else atom(item)))
    except UnhashableValue as exc:
        exc.path = _at_key(key) + exc.path
        raise
    finally:
        active.discard(id(value))
    return [tag, *[[k, v] for _, k, v in entries]]  # in insertion order: code sees it


def _set(tag: str) -> Callable[[Any], Token]:
    def body(value: Any) -> Token:
        entries = list(zip(value, _walk(value, ((x, x) for x in value), _in_set), strict=True))
        _canonical(entries)
        return [tag, *[token for _, token in entries]]

    return body


def _tz(value: Any) -> Token:
    return _walk(value, [("tzinfo", value.tzinfo)], _at_attr)[0]


def _simple(base: type, body: Callable[[Any], Token]) -> None:
    """Register ``body`` for exact ``base``; subclasses go through ``_subclass``."""

    def handler(value: Any) -> Token:
        return body(value) if type(value) is base else _subclass(value, body, handler)

    normalize.register(base, handler)


for _base, _body in [
    *[(t, _ATOMS[t]) for t in (int, float, str, bytes)],
    (complex, lambda c: ["complex", repr(c.real), repr(c.imag)]),
    (bytearray, lambda b: ["bytearray", memoryview(b)]),
    (list, lambda v: ["list", *_walk(v, enumerate(v), _at_index)]),
    (tuple, lambda v: ["tuple", *_walk(v, enumerate(v), _at_index)]),
    (dict, _dict),
    (OrderedDict, lambda d: _dict(d, "OrderedDict")),
    (set, _set("set")),
    (frozenset, _set("frozenset")),
]:
    _simple(_base, _body)
del _base, _body


# Lazy too: the run's history (records/sqlite) no longer imports datetime through the
# sqlite3 package, and importing it here cost a first run ~6M instructions.
def _register_datetime() -> None:
    import datetime as dt

    normalize.register(dt.timezone, lambda tz: [
        "timezone", normalize(tz.utcoffset(None)), tz.tzname(None)])
    for base, body in [
        (dt.datetime, lambda d: ["datetime", d.replace(tzinfo=None).isoformat(), d.fold, _tz(d)]),
        (dt.date, lambda d: ["date", d.isoformat()]),
        (dt.time, lambda t: ["time", t.replace(tzinfo=None).isoformat(), t.fold, _tz(t)]),
        (dt.timedelta, lambda d: ["timedelta", d.days, d.seconds, d.microseconds]),
    ]:
        _simple(base, body)


register_lazy("datetime", _register_datetime)

# ``Environment`` was an attrs class and was hashed as one: it keeps that token (its fields
# in their order), so the key of a step with ``env=`` is what it was.
register_hash(Environment, lambda env: _record("attrs", env, list(Environment.__slots__)))
