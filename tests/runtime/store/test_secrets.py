"""The one place that knows what a secret is: option names, URLs, free text."""

from __future__ import annotations

import base64
import logging

import pytest

from ductwork.runtime.store.secrets import (
    is_secret,
    public_options,
    redact,
    redact_logs,
    redact_url,
)

# Shaped like a storage account key (64 bytes, base64), so masking by shape is exercised.
KEY = base64.b64encode(bytes(range(64))).decode()


@pytest.mark.parametrize("name", ["account_key", "sas_token", "Password", "client_secret",
                                  "credential", "connection_string", "sig"])
def test_secret_option_names(name):
    assert is_secret(name)


@pytest.mark.parametrize("name", ["account_name", "account_url", "anon", "max_concurrency"])
def test_plain_option_names(name):
    assert not is_secret(name)


def test_redact_url_drops_password_and_query():
    assert redact_url("https://u:pw@host/c/p?sv=1&sig=abc") == "https://u:***@host/c/p"
    assert redact_url("az://container/prefix") == "az://container/prefix"
    assert redact_url("/a/local/path?x") == "/a/local/path?x"  # not a URL: left alone


def test_redact_masks_every_kind_of_credential_in_text():
    text = (f"AccountName=acct;AccountKey={KEY};BlobEndpoint=http://h/acct "
            "https://a.blob.core.windows.net/c/b?sv=2024&sig=abc%2Fdef&se=2030 "
            "Authorization: SharedKey acct:c2lnbmF0dXJl "
            f"bare {KEY} Bearer eyJ0eXAi.abc.def known-value-123")
    out = redact(text, ("known-value-123",))
    for secret in (KEY, "abc%2Fdef", "c2lnbmF0dXJl", "eyJ0eXAi", "known-value-123"):
        assert secret not in out
    assert "AccountName=acct" in out and "se=2030" in out


def test_redact_leaves_short_known_values_alone():
    assert redact("a b c", ("b",)) == "a b c"


def test_redact_masks_an_url_encoded_signature():
    # A SAS URL nested in another URL's query (a copy source) is encoded once more.
    out = redact("copy=https%3A%2F%2Fa%2Fc%2Fb%3Fsv%3D1%26sig%3Dabc%252Fdef%26se%3D2030")
    assert "abc%252Fdef" not in out and "se%3D2030" in out


def test_public_options_drop_secrets_at_any_depth():
    options = {
        "anon": False,
        "account_key": KEY,
        "client_kwargs": {"credential": "s3cr3t-credential", "timeout": 5,
                          "nested": [{"password": "pw-0123456789"}, {"region": "eu"}]},
        "headers": {"Authorization": "Bearer eyJ0eXAi.abc.def", "Accept": "text/csv",
                    "Cookie": "session=c00kie-value"},
        "endpoint": "https://a.blob.core.windows.net/c?sv=1&sig=abcdef123",
    }
    public = public_options(options)
    assert public == {"anon": False,
                      "client_kwargs": {"timeout": 5, "nested": [{}, {"region": "eu"}]},
                      "headers": {"Accept": "text/csv"}}
    for secret in (KEY, "s3cr3t-credential", "pw-0123456789", "eyJ0eXAi", "c00kie-value",
                   "abcdef123"):
        assert secret not in repr(public)
    assert options["client_kwargs"]["credential"] == "s3cr3t-credential"  # not changed in place


def test_logs_of_the_azure_sdk_and_its_transport_are_redacted():
    """Records of any logger below ``azure`` or ``urllib3`` (the SDK's HTTP transport, which
    logs each request line with its query) lose SAS signatures and the known secrets,
    in their message, their arguments and their traceback, even at DEBUG."""
    known = "known-secret-value-42"
    redact_logs((known,))
    records: list[logging.LogRecord] = []
    handler = _Capture(records)
    loggers = [logging.getLogger(name) for name in (
        "azure", "azure.core.pipeline.policies.http_logging_policy", "urllib3.connectionpool",
        f"azure.made.later.{id(records)}")]
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        for log in loggers:
            log.debug('%s "GET /acct/c/b?sv=2024&sig=%s HTTP/1.1" 200', "http://h", "s1gnature%3D")
            log.debug("token %s", known)
            log.debug({"sas": f"se=1&sig=dict-s1gnature-{known}"})
            try:
                raise RuntimeError(f"failed: /acct/c/b?sig=exc-s1gnature {known}")
            except RuntimeError:
                log.debug("request failed", exc_info=True)
        logging.getLogger("ductwork.other").debug("sig=not-ours-untouched")
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    text = "\n".join(handler.format(r) for r in records)
    assert text.count("request failed") == len(loggers)
    for secret in ("s1gnature", known):
        assert secret not in text
    assert "sig=not-ours-untouched" in text  # other libraries' records are left alone


class _Capture(logging.Handler):
    def __init__(self, records: list[logging.LogRecord]) -> None:
        super().__init__(logging.DEBUG)
        self.records = records

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_store_config_for_workers_carries_no_secret_at_any_depth():
    from ductwork.runtime.engine.driver import store_config
    from ductwork.runtime.store.artifacts import ArtifactStore

    store = ArtifactStore("memory://dw-store-config", anon=True,
                          client_kwargs={"aws_secret_access_key": "nested-secret-0123",
                                         "region_name": "eu"},
                          headers={"Authorization": "Bearer nested-bearer-0123"})
    config = store_config(store)
    assert config == {"url": "memory://dw-store-config",
                      "options": {"anon": True, "client_kwargs": {"region_name": "eu"},
                                  "headers": {}}}
