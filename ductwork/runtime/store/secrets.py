"""What a secret is, and taking it out of text: the one place that knows both.

Three kinds of secret reach ductwork, and each has one rule here:

- **storage options** (``account_key=``, ``sas_token=``, ``password=``...): an
  option whose *name* holds a secret word (``is_secret``) never leaves the
  process that was given it -- not in a pickle, a record or a message;
- **URLs**: ``redact_url`` drops a password in the user part and the whole
  query string (where a SAS token travels);
- **free text** (an SDK's error message, a header echoed back): ``redact``
  masks ``key=value`` credentials (``AccountKey=``, a SAS ``sig=``, ...),
  ``SharedKey``/``Bearer`` authorizations, anything shaped like a storage
  account key (64 bytes in base64), and the secret values the caller knows.

Masking is by pattern, so it errs towards hiding: a value that merely looks
like a key is hidden too.
"""

from __future__ import annotations

import re

__all__ = ["SECRET_WORDS", "is_secret", "redact", "redact_url"]

#: Words that mark a storage option's name as a credential.
SECRET_WORDS = ("key", "secret", "token", "password", "credential", "connection_string",
                "sas", "sig")

_MASK = "***"
_REDACTIONS = [
    # key=value secrets in connection strings, headers and SDK messages
    (re.compile(r"(?i)\b(AccountKey|SharedAccessSignature|SharedAccessKey|sig|"
                r"client_secret|access_token)(\s*[=:]\s*)[^;&\s\"',]+"), rf"\1\2{_MASK}"),
    (re.compile(r"(?i)\b(SharedKey(?:Lite)?\s+[^:\s]+:)\S+"), rf"\1{_MASK}"),
    (re.compile(r"(?i)\b(Bearer\s+)[A-Za-z0-9._~+/=-]+"), rf"\1{_MASK}"),
    # a bare storage account key: 64 bytes in base64
    (re.compile(r"(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{86}==(?![A-Za-z0-9+/=])"), _MASK),
]
# Shorter known values are left alone: masking "abc" everywhere would garble the text.
_MIN_KNOWN = 8


def is_secret(option: str) -> bool:
    """Whether a storage option's name says it holds a credential."""
    lowered = option.lower()
    return any(word in lowered for word in SECRET_WORDS)


def redact_url(url: str) -> str:
    """``url`` without a password in its user part or a query string (a SAS token)."""
    if "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    rest = rest.split("?", 1)[0]
    head, sep, tail = rest.partition("/")
    if "@" in head and ":" in head.split("@", 1)[0]:
        head = head.split(":", 1)[0] + f":{_MASK}@" + head.split("@", 1)[1]
    return f"{scheme}://{head}{sep}{tail}"


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    """Return ``text`` without account keys, SAS signatures, other credentials, or ``secrets``."""
    for secret in secrets:
        if secret and len(secret) >= _MIN_KNOWN:
            text = text.replace(secret, _MASK)
    for pattern, replacement in _REDACTIONS:
        text = pattern.sub(replacement, text)
    return text
