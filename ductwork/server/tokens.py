"""Bearer tokens: named, with a role, shown once and stored only as a hash.

A token is ``dw_`` and 43 URL-safe characters from ``secrets.token_urlsafe(32)``
(256 random bits). Only its SHA-256 is kept. A fast hash is enough here -- unlike a
password, a token has full entropy, so nothing is gained by a slow key-derivation
function except per-request latency: inverting SHA-256 of 256 random bits is out of
reach whatever the speed.

Every request looks its token up in the file, with no cache, so a revoked token
stops working at once. The lookup compares the hash with every live token's hash
with ``hmac.compare_digest``, all of them whatever matches, so neither the answer's
timing nor an index walk tells how much of a guess was right.

Roles are ordered: ``viewer`` reads; ``runner`` also triggers and cancels runs;
``admin`` also sets defaults, disables and enables.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from typing import Any

import attrs

from ductwork.server.state import ServerError, ServerState

__all__ = ["ROLES", "Token", "check", "create", "list_tokens", "revoke"]

ROLES = ("viewer", "runner", "admin")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
_PREFIX = "dw_"


@attrs.frozen
class Token:
    """Who a request is: the token's name and role (never the token itself)."""

    name: str
    role: str
    created: float = 0.0

    def allows(self, role: str) -> bool:
        """Whether this token's role is ``role`` or above."""
        return ROLES.index(self.role) >= ROLES.index(role)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def create(state: ServerState, name: str, role: str = "viewer") -> str:
    """Make a token named ``name`` with ``role``; return its text (shown once, never kept)."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ServerError(f"A token name is 1-64 letters, digits, '.', '_', '@' or '-', got "
                          f"{name!r}.")
    if role not in ROLES:
        raise ServerError(f"A token's role is one of {', '.join(ROLES)}, got {role!r}.")
    token = _PREFIX + secrets.token_urlsafe(32)
    with state.transaction() as db:
        row = db.execute("SELECT revoked FROM tokens WHERE name = ?", (name,)).fetchone()
        if row is not None and row[0] is None:
            raise ServerError(f"A token named {name!r} exists; revoke it first "
                              f"(`ductwork token revoke {name}`) or choose another name.")
        db.execute("INSERT OR REPLACE INTO tokens (name, role, hash, created, revoked) "
                   "VALUES (?, ?, ?, ?, NULL)", (name, role, _hash(token), time.time()))
    return token


def list_tokens(state: ServerState) -> list[dict[str, Any]]:
    """Every token that still works: name, role, created (never its hash)."""
    return [{"name": r["name"], "role": r["role"], "created": r["created"]}
            for r in state.read("SELECT name, role, created FROM tokens WHERE revoked IS NULL "
                                "ORDER BY created")]


def revoke(state: ServerState, name: str) -> None:
    """Stop the token ``name`` from working, at once; its hash is forgotten."""
    with state.transaction() as db:
        done = db.execute("UPDATE tokens SET revoked = ?, hash = NULL "
                          "WHERE name = ? AND revoked IS NULL", (time.time(), name)).rowcount
    if not done:
        known = ", ".join(t["name"] for t in list_tokens(state)) or "none"
        raise ServerError(f"No token named {name!r} to revoke; tokens: {known}.")


def check(state: ServerState, token: str) -> Token | None:
    """The live token whose text is ``token``, or None."""
    if not token.startswith(_PREFIX) or len(token) > 256:
        return None
    wanted = _hash(token).encode()
    found = None
    for row in state.read("SELECT name, role, hash, created FROM tokens "
                          "WHERE revoked IS NULL AND hash IS NOT NULL"):
        if hmac.compare_digest(wanted, row["hash"].encode()) and row["role"] in ROLES:
            found = Token(row["name"], row["role"], row["created"])
    return found
