"""The one place that knows what a secret is: option names, URLs, free text."""

from __future__ import annotations

import base64

import pytest

from ductwork.runtime.store.secrets import is_secret, redact, redact_url

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
