"""What a secret is, and taking it out of text: the one place that knows both.

Three kinds of secret reach ductwork, and each has one rule here:

- **storage options** (``account_key=``, ``sas_token=``, ``password=``...): an
  option whose *name* holds a secret word (``is_secret``) never leaves the
  process that was given it -- not in a pickle, a record or a message.
  ``public_options`` applies the rule at any depth (``client_kwargs={"credential":
  ...}``, ``headers={"Authorization": ...}``), and also drops a string value
  that ``redact`` would change (an endpoint URL carrying a SAS);
- **URLs**: ``redact_url`` drops a password in the user part and the whole
  query string (where a SAS token travels);
- **free text** (an SDK's error message, a header echoed back): ``redact``
  masks ``key=value`` credentials (``AccountKey=``, a SAS ``sig=``, ...),
  ``SharedKey``/``Bearer`` authorizations, anything shaped like a storage
  account key (64 bytes in base64), and the secret values the caller knows;
- **log records** of the Azure SDK and of urllib3, its HTTP transport (which
  logs every request line, query and SAS included, at DEBUG): ``redact_logs``
  passes each one through ``redact`` as it is made, with the secrets of every
  store opened so far.

Masking is by pattern, so it errs towards hiding: a value that merely looks
like a key is hidden too.
"""

from __future__ import annotations

import _thread  # threading's locks, without threading (~2.6M instructions and an exit hook)
import functools
import re
from collections.abc import Iterable

TYPE_CHECKING = False
if TYPE_CHECKING:
    import logging
    from typing import Any

__all__ = ["SECRET_WORDS", "is_secret", "public_options", "redact", "redact_logs", "redact_url"]

#: Words that mark a storage option's name (or an HTTP header's) as a credential.
SECRET_WORDS = ("key", "secret", "token", "password", "credential", "connection_string",
                "sas", "sig", "authorization", "cookie")

_MASK = "***"


@functools.cache  # compiled on first use: most runs never redact anything
def _redactions() -> list[tuple[re.Pattern[str], str]]:
    return [(re.compile(pattern), replacement) for pattern, replacement in _PATTERNS]


_PATTERNS = [
    # key=value secrets in connection strings, headers and SDK messages
    (r"(?i)\b(AccountKey|SharedAccessSignature|SharedAccessKey|sig|"
     r"client_secret|access_token)(\s*[=:]\s*)[^;&\s\"',]+", rf"\1\2{_MASK}"),
    # a SAS URL inside another URL's query (a copy source) has its '=' and '&' encoded
    (r"(?i)(?<![a-z])(sig%3D)[^&;\s\"',]+?(?=%26|[&;\s\"',]|$)", rf"\1{_MASK}"),
    (r"(?i)\b(SharedKey(?:Lite)?\s+[^:\s]+:)\S+", rf"\1{_MASK}"),
    (r"(?i)\b(Bearer\s+)[A-Za-z0-9._~+/=-]+", rf"\1{_MASK}"),
    # a bare storage account key: 64 bytes in base64
    (r"(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{86}==(?![A-Za-z0-9+/=])", _MASK),
]
# Shorter known values are left alone: masking "abc" everywhere would garble the text.
_MIN_KNOWN = 8


@functools.lru_cache(maxsize=4096)  # argument names recur: each element of a map asks
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
    for pattern, replacement in _redactions():
        text = pattern.sub(replacement, text)
    return text


def public_options(options: Any) -> Any:
    """Return a copy of ``options`` without credentials at any depth (see the module docstring)."""
    if isinstance(options, dict):
        return {k: public_options(v) for k, v in options.items()
                if not (isinstance(k, str) and is_secret(k)) and not _secret_value(v)}
    if isinstance(options, list | tuple):
        return type(options)(public_options(v) for v in options if not _secret_value(v))
    return options


def _secret_value(value: Any) -> bool:
    return isinstance(value, str) and redact(value) != value


# -- log records ----------------------------------------------------------------------------

#: Loggers whose records are redacted: the Azure SDK, adlfs, and urllib3 (the SDK's HTTP
#: transport, whose DEBUG request lines carry the URL's query, SAS signature included).
LOGGERS = ("azure", "adlfs", "urllib3")
_KNOWN: set[str] = set()
_LOCK = _thread.allocate_lock()
_installed = False


def _redact_record(record: logging.LogRecord) -> bool:
    """Redact a record's message, arguments and traceback in place; keep the record.

    A plain function, which ``logging`` takes as a filter: a ``logging.Filter`` subclass
    would import ``logging`` with this module, in every run.
    """
    if not _ours(record.name) or getattr(record, "_dw_redacted", False):
        return True
    known = tuple(_KNOWN)
    try:
        message = record.getMessage()
    except Exception:  # bad arguments: keep what can be shown of them, redacted
        message = f"{record.msg} {record.args!r}"
    record.msg, record.args = redact(message, known), ()
    if record.exc_info and not record.exc_text:
        import logging

        # Formatters print exc_text when it is set, instead of formatting exc_info.
        record.exc_text = redact(logging.Formatter().formatException(record.exc_info), known)
    if record.stack_info:
        record.stack_info = redact(record.stack_info, known)
    record._dw_redacted = True
    return True


def _ours(name: str) -> bool:
    return any(name == top or name.startswith(top + ".") for top in LOGGERS)


def redact_logs(secrets: Iterable[str] = ()) -> None:
    """Redact every record of the ``LOGGERS`` from now on, also the known ``secrets``.

    Installed once, by the first store that talks to Azure, never at import. A filter
    on the ``azure`` logger alone would not do: a logger's filters see only records
    logged on it, not those its children (``azure.core.pipeline...``) propagate. So
    the redactor wraps the log-record factory, which makes every record, and is also
    set on the ``LOGGERS`` and their existing children for code that makes records
    itself.
    """
    global _installed
    with _LOCK:
        _KNOWN.update(s for s in secrets if s and len(s) >= _MIN_KNOWN)
        if _installed:
            return
        _installed = True
        import logging

        redactor = _redact_record
        make = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = make(*args, **kwargs)
            redactor(record)
            return record

        logging.setLogRecordFactory(factory)
        for name in [*LOGGERS, *list(logging.Logger.manager.loggerDict)]:
            if _ours(name):
                logger = logging.getLogger(name)
                if redactor not in logger.filters:
                    logger.addFilter(redactor)
