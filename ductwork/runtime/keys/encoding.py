"""The byte encoding of a token, as it is fed to the hasher: a prefix code.

A token (see ``tokens.normalize``) is a nested list of ``str``, ``bytes``
(``bytearray``, a flat ``memoryview``), ``int`` and ``None``. ``_write`` spells
it out item by item, each stating its size before its content:

- ``l<n>:`` a list of n items, followed by the items;
- ``s<n>:`` n bytes of UTF-8 (lone surrogates kept with ``surrogatepass``);
- ``b<n>:`` n raw bytes;
- ``i<hex>;`` an int, in hex so huge ints need no decimal conversion;
- ``n`` None.

No encoding is a prefix of another, so two different tokens never encode
alike. Small items gather in a list of chunks; a leaf of 64 KiB or more
(bytes, an array's data) is handed to the ``sink`` (the hasher) as it is --
one pass over its memory, no copy. Headers of small lists, strings and ints
are precomputed: this loop runs for every node of every key a step computes.
``_encode`` is the same for a small token, returned as bytes (``tokens`` sorts
dict entries and set elements by it). ``Token`` is defined here, with the only
code that reads one.
"""

from __future__ import annotations

from collections.abc import Iterable

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, TypeAlias

__all__ = ["Token"]

Token: TypeAlias = "str | bytes | bytearray | memoryview | int | list[Token] | None"

_STREAM_MIN = 1 << 16  # leaves this big skip the buffer and go to the hasher uncopied
_LIST_HEAD = [b"l%d:" % n for n in range(64)]
_STR_HEAD = [b"s%d:" % n for n in range(256)]
# Filled as ints are seen: formatting the whole range up front cost every process ~1.3M
# instructions, most of it for ints no key of the run ever holds.
_SMALL_INT: dict[int, bytes] = {}


def _int_head(n: int) -> bytes:
    head = b"i%x;" % n
    if -256 <= n < 1024:  # bounded: a key of huge ints must not grow the table
        _SMALL_INT[n] = head
    return head


def _encode(token: Token) -> bytes:
    """Return the encoding of a (small) token."""
    out: list[Any] = []
    _write((token,), out, None)
    return b"".join(out)


def _write(items: Iterable[Token], out: list[Any], sink: Any) -> None:
    """Append the encoding of each token to ``out``; hand leaves of 64 KiB+ to ``sink`` whole."""
    # Leaves are handled inline and only lists recurse: this loop runs for every node of every
    # key a step computes, and Python function calls are its main cost.
    for item in items:
        kind = type(item)
        if kind is list:
            size = len(item)
            out.append(_LIST_HEAD[size] if size < 64 else b"l%d:" % size)
            _write(item, out, sink)
        elif kind is str:
            try:
                data = item.encode()
            except UnicodeEncodeError:  # lone surrogates are still distinct strings
                data = item.encode("utf-8", "surrogatepass")
            size = len(data)
            out.append(_STR_HEAD[size] if size < 256 else b"s%d:" % size)
            out.append(data)
        elif kind is int:  # hex: no decimal digit limit for huge ints
            out.append(_SMALL_INT.get(item) or _int_head(item))
        elif item is None:
            out.append(b"n")
        elif kind is bytes or kind is bytearray or kind is memoryview:
            size = item.nbytes if kind is memoryview else len(item)
            out.append(b"b%d:" % size)
            if sink is not None and size >= _STREAM_MIN:
                sink.update(b"".join(out))
                out.clear()
                sink.update(item)
            else:
                out.append(item)
        else:
            raise TypeError(
                f"a normalize handler put a {kind.__name__} in its token; tokens hold only "
                "str, bytes, int, None and lists: wrap that part in normalize(...)"
            )
