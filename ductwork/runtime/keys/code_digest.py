"""``hash_tagged`` for what a code fingerprint hashes: strings and sorted string pairs.

Every component of a fingerprint is ``hash_tagged(tag, text, ..., [(name, ref), ...])``
over ``str`` parts and a list of ``(str, str)`` pairs. ``hash_code`` builds the token
``normalize`` would build for those -- ``["str", s]``, ``["list", ["tuple", ["str", k],
["str", v]], ...]`` -- without dispatching on each part and pair, and hashes it the same
way: the digests are ``hash_tagged``'s (pinned in tests/runtime/keys/test_code_digest.py).
Anything else goes through ``hash_tagged`` itself.
"""

from __future__ import annotations

from ductwork.runtime.keys.encoding import _encode
from ductwork.runtime.keys.hashing import _TAGGED_PREFIX, hash_tagged, new_hasher

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["hash_code"]


def hash_code(tag: str, *parts: Any) -> str:
    """Return ``hash_tagged(tag, *parts)``, quickly for ``str`` parts and lists of str pairs."""
    token: list[Any] = [tag]
    for part in parts:
        kind = type(part)
        if kind is str:
            token.append(["str", part])
        elif kind is list and all(
            type(p) is tuple and len(p) == 2 and type(p[0]) is str and type(p[1]) is str
            for p in part
        ):
            token.append(["list", *[["tuple", ["str", k], ["str", v]] for k, v in part]])
        else:
            return hash_tagged(tag, *parts)
    return new_hasher(_TAGGED_PREFIX + _encode(token)).hexdigest()
