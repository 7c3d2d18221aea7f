"""Who is looking at the studio: one-time sign-in links, sessions and CSRF tokens.

Signing in exchanges a secret for a session, as Jupyter does: either the one-time
link ``ductwork serve`` prints (``/signin?once=CODE``, good for one use, as the
``admin`` who started the server), or an API token pasted into the sign-in page
(the session then has that token's role). The session is a random id in an
``HttpOnly``, ``SameSite=Strict`` cookie; the server keeps, per id, who it is, the
hash of the token it came from and the session's CSRF token. Sessions live in the
server's memory: a restart signs everyone out, and nothing about them is on disk.

A token's session is checked against the token store on every request (the row
must still be live with the same hash), so revoking a token ends its sessions at
once and a role is read fresh. Every state-changing form carries the session's
CSRF token in a hidden field, compared in constant time; the sign-in form itself
uses a double-submit cookie (login CSRF).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time

import attrs
from starlette.requests import Request

from ductwork.server import tokens

__all__ = ["COOKIE", "LINK_ROLE", "PRE_COOKIE", "Sessions", "Who"]

COOKIE = "dw_session"
PRE_COOKIE = "dw_signin"
LINK_ROLE = "admin"
SESSION_TTL = 12 * 3600.0
LINK_TTL = 24 * 3600.0


@attrs.frozen
class Who:
    """The signed-in user of a request: a name, a role and the session's CSRF token."""

    name: str
    role: str
    csrf: str

    def allows(self, role: str) -> bool:
        """Whether this user's role is ``role`` or above."""
        return tokens.ROLES.index(self.role) >= tokens.ROLES.index(role)


@attrs.define
class _Session:
    name: str
    role: str
    csrf: str
    token_hash: str | None
    expires: float


class Sessions:
    """The studio's sessions and one-time sign-in codes, in this server's memory."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sessions: dict[str, _Session] = {}
        self._codes: dict[str, float] = {}

    def one_time_code(self) -> str:
        """A new sign-in code, good for one use within a day."""
        code = secrets.token_urlsafe(32)
        with self._lock:
            self._codes[code] = time.time() + LINK_TTL
        return code

    def _start(self, name: str, role: str, token_hash: str | None) -> str:
        sid = secrets.token_urlsafe(32)
        with self._lock:
            now = time.time()
            for old in [k for k, s in self._sessions.items() if s.expires < now]:
                del self._sessions[old]
            self._sessions[sid] = _Session(name, role, secrets.token_urlsafe(32), token_hash,
                                           now + SESSION_TTL)
        return sid

    def redeem(self, code: str) -> str | None:
        """A session id for a one-time code (which is then spent), or None."""
        with self._lock:
            expires = self._codes.pop(code, None) if isinstance(code, str) else None
        if expires is None or expires < time.time():
            return None
        return self._start("sign-in link", LINK_ROLE, None)

    def sign_in(self, state: object, token: str) -> str | None:
        """A session id for a live API token's text, or None."""
        found = tokens.check(state, token.strip())  # type: ignore[arg-type]
        if found is None:
            return None
        return self._start(found.name, found.role, _hash(token.strip()))

    def end(self, sid: str | None) -> None:
        """Forget a session (signing out)."""
        with self._lock:
            self._sessions.pop(sid or "", None)

    def who(self, request: Request) -> Who | None:
        """The signed-in user of ``request``, or None."""
        sid = request.cookies.get(COOKIE)
        with self._lock:
            session = self._sessions.get(sid or "")
        if session is None or session.expires < time.time():
            return None
        role = session.role
        if session.token_hash is not None:
            rows = request.app.state.server.state.read(
                "SELECT role, hash FROM tokens WHERE name = ? AND revoked IS NULL",
                (session.name,))
            live = [r for r in rows if r["hash"] and hmac.compare_digest(
                r["hash"].encode(), session.token_hash.encode())]
            if not live or live[0]["role"] not in tokens.ROLES:
                self.end(sid)
                return None
            role = live[0]["role"]
        return Who(session.name, role, session.csrf)


def _hash(token: str) -> str:
    # The same hash the token store keeps, so a session can be checked against it.
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def csrf_ok(who: Who, sent: str | None) -> bool:
    """Whether a form's CSRF field matches the session's token."""
    return bool(sent) and hmac.compare_digest(who.csrf.encode(), str(sent).encode())
