"""The key index's entry format: ``ArtifactRef`` and its JSON, and how an entry is read.

An entry (``keys/<k[:2]>/<k[2:]>.json``) is ``{"version": 1, "outputs": {name: ref}}``,
each ref ``{"digest", "serializer", "size"}`` with optional ``"classes"`` and, for a
small step output, ``"inline"``: the serialized bytes, base64 (``INLINE_MAX``). The
store (``artifacts``) writes and reads entries; this module says what one means, how
one is spelled (``entry_bytes``) and what makes one damaged (``BadEntry``: the lookup
is a miss with a warning).
"""

from __future__ import annotations

import binascii
import json
import re
import warnings
from collections.abc import Mapping

from ductwork.dsl.slotted import Frozen, setter
from ductwork.runtime import caches
from ductwork.runtime.keys.classes import register_recorded
from ductwork.runtime.keys.hashing import new_hasher, register_hash
from ductwork.runtime.store.serializers import SerializerError, get_serializer

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["INLINE_MAX", "ArtifactRef", "BadEntry", "entry_bytes", "parse_entry", "warn_bad_entry"]

# A digest is 64 lowercase hex digits, checked by length and character set: what the
# regular expression it was checked with checks, without compiling one at import.
_HEX = frozenset("0123456789abcdef")
_INDEX_VERSION = 1
#: Serialized step outputs up to this many bytes live in their ref, entry and run record,
#: not in an object file. Below it a file create (~0.1 ms, plus a folder on a new prefix)
#: is what a small output costs, against microseconds to encode and hash it; above it
#: the copies (every entry and run record holding the ref, a third larger as base64, a
#: map's element refs all in one row) would grow. Scalars, short strings, small lists,
#: dicts and metrics fit; a cold entry with a few of them stays within one 4 KiB block.
INLINE_MAX = 1024


def is_digest(text: str) -> bool:
    """Whether the string ``text`` spells a digest: 64 lowercase hex digits."""
    return len(text) == 64 and _HEX.issuperset(text)


def _check_digest(digest: str) -> str:
    if not isinstance(digest, str) or not is_digest(digest):
        raise ValueError(f"not a 64-hex-digit digest: {digest!r}")
    return digest


class ArtifactRef(Frozen):
    """A stored value: its content digest, the serializer that wrote it and its size.

    ``classes`` names the classes the value is made of (``keys.classes``): a step
    reading it has their code in its key, without reading the value back. ``inline``
    holds a small value's serialized bytes, when no object file holds them
    (``INLINE_MAX``): not part of what the ref is (equality, hashing, keys), nor of
    its repr.
    """

    __slots__ = ("digest", "serializer", "size", "classes", "inline")
    _no_eq = _no_repr = ("inline",)
    digest: str
    serializer: str
    size: int
    classes: tuple[str, ...]
    inline: bytes | None

    def __init__(self, digest: str, serializer: str, size: int,
                 classes: tuple[str, ...] | list[str] = (), inline: bytes | None = None) -> None:
        set_ = setter(self)
        set_("digest", _check_digest(digest))
        set_("serializer", serializer)
        set_("size", size)
        set_("classes", tuple(classes))
        set_("inline", inline)

    def __getstate__(self) -> dict[str, Any]:
        return {"digest": self.digest, "serializer": self.serializer, "size": self.size,
                "classes": self.classes, "inline": self.inline}

    def __setstate__(self, state: dict[str, Any]) -> None:
        # A ref pickled by an older ductwork (a worker of a cluster not yet upgraded) has
        # no ``inline``: its bytes are an object.
        object.__setattr__(self, "inline", None)
        for name, value in state.items():
            object.__setattr__(self, name, value)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict."""
        d: dict[str, Any] = {"digest": self.digest, "serializer": self.serializer,
                             "size": self.size}
        if self.classes:
            d["classes"] = list(self.classes)
        if self.inline is not None:
            d["inline"] = binascii.b2a_base64(self.inline, newline=False).decode("ascii")
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ArtifactRef:
        """Build from ``to_dict()`` output."""
        inline = d.get("inline")
        return cls(str(d["digest"]), str(d["serializer"]), int(d["size"]),
                   tuple(str(c) for c in d.get("classes", ())),
                   None if inline is None else binascii.a2b_base64(inline, strict_mode=True))


class BadEntry(ValueError):
    """A key-index entry that does not make sense; the message says what is wrong with it."""


def parse_entry(data: bytes) -> dict[str, ArtifactRef]:
    """The outputs an index entry's bytes record; ``BadEntry`` saying what is wrong."""
    found = _PARSED.get(data)
    if found is not None:
        return dict(found)
    outputs = read_canonical(data)
    if outputs is None:
        outputs = _parse_json(data)
    if len(data) <= _PARSED_MAX:
        _PARSED.put(data, outputs)
    return dict(outputs)


# Entry bytes -> the outputs they record, for sound entries only (a damaged one raised).
# Reading an entry is a pure function of its bytes (serializers are never unregistered), so
# bytes read again -- every warm run in a notebook or a server reads the same entries --
# mean the same refs, inline bytes already verified: the file is still read every time, so
# an entry replaced or damaged since is parsed (and judged) afresh, never served from here.
_PARSED = caches.memo("store.parsed_entries", maxsize=4096)
_PARSED_MAX = 4096  # bytes: a few outputs with inline values; bigger entries are not kept


# An entry exactly as ``put_key`` writes it (``json.dumps(sort_keys=True)``) with plain
# ASCII names and no ``classes``: a warm step's entry, almost always. Matched whole, it is
# read without building the JSON tree and checking it again field by field: the pattern
# admits only what the full parse accepts (64 hex digits, a byte count, base64 text), and
# anything else -- an escape, another spacing, a damaged byte -- takes the full parse.
# Compiled on the first read (``_output_match``): compiling it costs ~1.7M instructions,
# which a process that reads no entry it wrote before -- a first run -- never needs.
_OUTPUT = (
    rb'"([A-Za-z0-9_]+)": \{"digest": "([0-9a-f]{64})", (?:"inline": "([A-Za-z0-9+/]*=?=?)", )?'
    rb'"serializer": "([A-Za-z0-9_.\-]+)", "size": (0|[1-9][0-9]{0,17})\}')
_HEAD, _TAIL = b'{"outputs": {', b'}, "version": 1}'


_OUTPUT_MATCH: Any = None


def _output_match() -> Any:
    """``_OUTPUT`` compiled (once), its ``match`` method."""
    global _OUTPUT_MATCH
    _OUTPUT_MATCH = re.compile(_OUTPUT).match
    return _OUTPUT_MATCH


def read_canonical(data: bytes) -> dict[str, ArtifactRef] | None:
    """The outputs of an entry in ``put_key``'s own spelling, checked as ``parse_entry``
    checks them; None when the bytes are spelled otherwise (``parse_entry`` reads those)."""
    if not (data.startswith(_HEAD) and data.endswith(_TAIL)):
        return None
    end, pos = len(data) - len(_TAIL), len(_HEAD)
    outputs = {}
    match, registered = _OUTPUT_MATCH or _output_match(), _REGISTERED
    while True:
        found = match(data, pos, end)
        if found is None:
            return None
        name, digest, inline, serializer, size = found.groups()
        pos = found.end()
        name, digest, serializer, size = name.decode(), digest.decode(), serializer.decode(), \
            int(size)
        if serializer not in registered:
            try:
                get_serializer(serializer)
            except SerializerError:
                return None  # the full parse says which
            registered.add(serializer)  # none is ever unregistered
        if inline is not None:
            try:
                inline = binascii.a2b_base64(inline, strict_mode=True)
                sound = len(inline) == size and new_hasher(inline).hexdigest() == digest
            except binascii.Error:
                sound = False
            if not sound:  # checked again, slowly: BadEntry says what is wrong
                inline = _inline_bytes(name, found.group(3).decode(), size, digest)
        outputs[name] = _ref(digest, serializer, size, inline)
        if pos == end:
            return outputs
        if data[pos:pos + 2] != b", ":
            return None
        pos += 2


_REGISTERED: set[str] = set()  # serializer names found registered in this process


def _ref(digest: str, serializer: str, size: int, inline: bytes | None) -> ArtifactRef:
    """An ``ArtifactRef`` of fields already checked (its digest is not matched again)."""
    ref = ArtifactRef.__new__(ArtifactRef)
    _set(ref, "digest", digest)
    _set(ref, "serializer", serializer)
    _set(ref, "size", size)
    _set(ref, "classes", ())
    _set(ref, "inline", inline)
    return ref


_set = object.__setattr__


def _parse_json(data: bytes) -> dict[str, ArtifactRef]:
    """``parse_entry`` of any spelling: the JSON tree, checked field by field."""
    try:
        body = json.loads(data)
    except ValueError as exc:  # UnicodeDecodeError included
        raise BadEntry(f"is not valid JSON ({exc})") from None
    if not isinstance(body, dict) or not isinstance(body.get("outputs"), dict):
        raise BadEntry('is not {"version": 1, "outputs": {name: ref}}')
    if body.get("version") != _INDEX_VERSION:
        raise BadEntry(f"has format version {body.get('version')!r}; this ductwork reads "
                       f"{_INDEX_VERSION}")
    outputs = {}
    for name, d in body["outputs"].items():
        try:
            digest, serializer, size = d["digest"], d["serializer"], d["size"]
        except (TypeError, KeyError):  # TypeError: not a dict (a list, a string, ...)
            raise BadEntry(f"output {name!r} is not a {{digest, serializer, size}} record") \
                from None
        if type(digest) is not str or not is_digest(digest):
            raise BadEntry(f"output {name!r} has digest {digest!r}, not 64 hex digits")
        if type(size) is not int or size < 0:  # type(): a bool is no byte count
            raise BadEntry(f"output {name!r} has size {size!r}, not a byte count")
        try:
            get_serializer(serializer)
        except (SerializerError, TypeError):  # TypeError: an unhashable name
            raise BadEntry(f"output {name!r} names serializer {serializer!r}, which is "
                           "not registered in this process") from None
        classes = d.get("classes", ())
        if classes and (type(classes) is not list
                        or not all(type(c) is str for c in classes)):
            raise BadEntry(f"output {name!r} has classes {classes!r}, not a list of names")
        inline = d.get("inline")
        if inline is not None:
            inline = _inline_bytes(name, inline, size, digest)
        outputs[name] = ArtifactRef(digest, serializer, size, tuple(classes), inline)
    return outputs


def _inline_bytes(name: str, text: Any, size: int, digest: str) -> bytes:
    """An entry's inline data, decoded; ``BadEntry`` unless it is base64 of ``size`` bytes
    that hash to ``digest``.

    Checked here, not only when loaded: a hit served from a damaged entry would be served
    again after its consumer failed to verify it (no object to delete makes it a miss),
    and hashing at most ``INLINE_MAX`` bytes costs about a microsecond.
    """
    if type(text) is not str:
        raise BadEntry(f"output {name!r} has inline data of type {type(text).__name__}, "
                       "not base64 text")
    try:
        data = binascii.a2b_base64(text, strict_mode=True)
    except binascii.Error as exc:
        raise BadEntry(f"output {name!r} has inline data that is not base64 ({exc})") \
            from None
    if len(data) != size:
        raise BadEntry(f"output {name!r} has {len(data)} bytes of inline data, but its size "
                       f"is {size}")
    found = new_hasher(data).hexdigest()
    if found != digest:
        raise BadEntry(f"output {name!r} has inline data that hashes to {found}, not to its "
                       f"digest {digest}")
    return data


def warn_bad_entry(path: str, key: str, problem: str) -> None:
    """Warn that the index entry at ``path`` is ignored because of ``problem``."""
    warnings.warn(f"cache index entry {path} (key {key}) {problem}; ignoring it: the step "
                  "reruns and its entry is replaced", RuntimeWarning, stacklevel=3)


# Pickled (to workers, in job payloads) under the module it has always been imported from,
# so a worker of another ductwork version finds it there.
ArtifactRef.__module__ = "ductwork.runtime.store.artifacts"

# An upstream output enters a downstream key by what identifies its bytes and how they
# are read back: two types serialized to equal bytes (str vs bytes) must not collide.
register_hash(ArtifactRef, lambda ref: ["artifact", ref.digest, ref.serializer])
# Its value's classes, recorded when it was written: their code goes in the key beside it.
register_recorded(ArtifactRef, lambda ref: ref.classes)


# json.dumps(body, sort_keys=True): the spelling parse_entry reads fastest.
_ENCODE_ENTRY = json.JSONEncoder(sort_keys=True).encode
_quote = json.encoder.encode_basestring_ascii  # how that encoder spells a str
_STR = frozenset({str})
_ENTRY_TAIL = '}, "version": ' + str(_INDEX_VERSION) + "}"


def entry_bytes(outputs: Mapping[str, ArtifactRef]) -> bytes:
    """An entry's bytes: ``json.dumps({"version": 1, "outputs": {name: ref.to_dict()}},
    sort_keys=True)``, the same text, spelled out for the usual refs (str names, no
    classes): the encoder makes a C encoder per call, ~30k instructions per cold step."""
    pieces = []
    for name in sorted(outputs) if set(map(type, outputs)) <= _STR else ():
        ref = outputs[name]
        if type(ref) is not ArtifactRef or ref.classes or type(ref.size) is not int \
                or type(ref.serializer) is not str:
            break
        inline = "" if ref.inline is None else (
            f'"inline": "{binascii.b2a_base64(ref.inline, newline=False).decode("ascii")}", ')
        pieces.append(f'{_quote(name)}: {{"digest": "{ref.digest}", {inline}'
                      f'"serializer": {_quote(ref.serializer)}, "size": {ref.size}}}')
    if len(pieces) != len(outputs):
        body = {"version": _INDEX_VERSION, "outputs": {n: r.to_dict() for n, r in outputs.items()}}
        return _ENCODE_ENTRY(body).encode()
    return f'{{"outputs": {{{", ".join(pieces)}{_ENTRY_TAIL}'.encode()
