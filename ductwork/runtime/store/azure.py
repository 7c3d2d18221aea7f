"""Azure Blob Storage for ``az://container/prefix`` artifact stores.

Credentials are resolved once, when the store is opened, from the first source
that has them:

1. storage options given to ``ArtifactStore(url, **options)``: ``connection_string``,
   or ``account_name`` with ``account_key``, ``sas_token`` or ``credential``;
2. ``AZURE_STORAGE_CONNECTION_STRING``;
3. ``AZURE_STORAGE_ACCOUNT_NAME`` with ``AZURE_STORAGE_ACCOUNT_KEY`` or
   ``AZURE_STORAGE_SAS_TOKEN``;
4. ``DefaultAzureCredential`` (azure-identity: environment, managed identity,
   ``az login``) for ``AZURE_STORAGE_ACCOUNT_NAME``.

The endpoint is the connection string's, else the ``account_url`` option or
``DUCTWORK_AZURE_ACCOUNT_URL`` (for Azurite or sovereign clouds), else
``https://<account>.blob.core.windows.net``.

A SAS token may also come as the query of a URL, as the portal's "Blob SAS URL"
gives it: ``az://container/prefix?sv=...&sig=...`` (it becomes the store's
``sas_token`` option), or an account URL with one (``account_url`` or
``DUCTWORK_AZURE_ACCOUNT_URL``), which is then the SAS of its source. ``split_sas``
takes it off, so the store's URL, its errors and its records never show it.

Only the options the user passed travel to worker processes (in their
environment, never in a log, an error, the run history or the graph); a secret
that came from the environment is found again in the worker's environment.

The blob I/O itself is in ``blobs``. Every Azure error leaves it as an
``AzureStoreError`` whose text went through ``secrets.redact``: it names the account,
container and what to do, never a secret.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from ductwork.dsl.core import DuctworkError
from ductwork.dsl.slotted import Frozen, fill

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["AzureAuth", "AzureStoreError", "resolve_auth", "split_sas"]

SECRET_OPTIONS = ("connection_string", "account_key", "sas_token", "credential")
# SDK client settings a user may tune per store (sizes in bytes); the rest is refused.
CLIENT_OPTIONS = ("max_single_put_size", "max_block_size", "max_single_get_size",
                  "max_chunk_get_size", "connection_timeout", "read_timeout")
OPTIONS = ("account_name", "account_url", "max_concurrency", *SECRET_OPTIONS, *CLIENT_OPTIONS)


class AzureStoreError(DuctworkError):
    """An Azure Blob store could not be reached, authenticated or used; says how to fix it."""


def split_sas(url: str, what: str = "an az:// URL") -> tuple[str, str | None]:
    """Return ``url`` without its query, and the query if it is a SAS token (else None)."""
    base, sep, query = url.partition("?")
    if not sep:
        return url, None
    query = query.lstrip("?")
    if "sig=" not in query:
        # Not shown: a query may hold a secret, even one that is not a SAS.
        raise AzureStoreError(
            f"{what} ({base}) has a query that is not a SAS token (it has no sig=): its only "
            "query can be a SAS token (?sv=...&sig=...). Remove the query, or pass storage "
            "options as keyword arguments."
        )
    return base, query


def _parse_connection_string(cs: str) -> dict[str, str]:
    parts = (p.split("=", 1) for p in cs.strip().strip(";").split(";") if "=" in p)
    return {k.strip().lower(): v.strip() for k, v in parts}


class AzureAuth(Frozen):
    """How to reach one storage account: its endpoint and one credential (never printed)."""

    __slots__ = ("account_name", "account_url", "method", "source", "connection_string",
                 "account_key", "sas_token", "credential")
    account_name: str
    account_url: str
    method: str  # "connection string", "account key", "SAS token", "credential", ...
    source: str  # "storage options" or "environment"
    connection_string: str | None
    account_key: str | None
    sas_token: str | None
    credential: Any

    def __init__(self, account_name: str, account_url: str, method: str, source: str,
                 connection_string: str | None = None, account_key: str | None = None,
                 sas_token: str | None = None, credential: Any = None) -> None:
        fill(self, account_name, account_url, method, source, connection_string, account_key,
             sas_token, credential)

    def __repr__(self) -> str:
        return f"AzureAuth({self.account_name!r}, {self.method} from {self.source})"

    @property
    def secrets(self) -> tuple[str, ...]:
        """The secret strings, for ``redact``."""
        return tuple(s for s in (self.connection_string, self.account_key, self.sas_token) if s)

    def describe(self) -> str:
        """Say which credential is in use, without its value."""
        env = {"connection string": "AZURE_STORAGE_CONNECTION_STRING",
               "account key": "AZURE_STORAGE_ACCOUNT_KEY", "SAS token": "AZURE_STORAGE_SAS_TOKEN"}
        if self.source == "environment" and self.method in env:
            return f"the {self.method} in ${env[self.method]}"
        return f"the {self.method} from {self.source}"

    def service_client(self, **client_options: Any) -> Any:
        """Return a sync azure-storage-blob ``BlobServiceClient``."""
        from azure.storage.blob import BlobServiceClient

        if self.connection_string:
            return BlobServiceClient.from_connection_string(self.connection_string,
                                                            **client_options)
        if self.account_key:
            credential: Any = {"account_name": self.account_name, "account_key": self.account_key}
        elif self.sas_token:
            credential = self.sas_token.lstrip("?")
        else:
            credential = self.credential
        return BlobServiceClient(self.account_url, credential=credential, **client_options)

    def adlfs_options(self) -> dict[str, Any]:
        """Return keyword arguments for ``adlfs.AzureBlobFileSystem`` with this credential."""
        default_url = f"https://{self.account_name}.blob.core.windows.net"
        custom = self.account_url.rstrip("/") != default_url
        if self.connection_string:
            return {"connection_string": self.connection_string}
        if custom and (self.account_key or self.sas_token):
            # adlfs builds https URLs from a host; a connection string carries any endpoint.
            secret = (f"AccountKey={self.account_key}" if self.account_key
                      else f"SharedAccessSignature={self.sas_token.lstrip('?')}")
            return {"connection_string": f"AccountName={self.account_name};{secret};"
                                         f"BlobEndpoint={self.account_url};"}
        options: dict[str, Any] = {"account_name": self.account_name}
        if custom:
            options["account_host"] = self.account_url.split("://", 1)[-1].rstrip("/")
        if self.account_key:
            options["account_key"] = self.account_key
        elif self.sas_token:
            options["sas_token"] = self.sas_token
        elif self.method == "credential":
            options["credential"] = self.credential  # else adlfs makes its own (async) default
        return options


def resolve_auth(options: Mapping[str, Any], environ: Mapping[str, str] | None = None,
                 where: str = "az://") -> AzureAuth:
    """Pick the credential for an ``az://`` store: options, then the environment, then
    DefaultAzureCredential (see the module docstring for the order)."""
    env = os.environ if environ is None else environ
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise AzureStoreError(f"unknown storage option(s) {unknown} for {where}; known: "
                              f"{', '.join(OPTIONS)}")
    name = options.get("account_name") or env.get("AZURE_STORAGE_ACCOUNT_NAME") or ""
    # An account URL's SAS belongs to where the URL came from (options or environment).
    url, option_sas = split_sas(options.get("account_url") or "", "the account_url option")
    url_env, env_sas = split_sas(env.get("DUCTWORK_AZURE_ACCOUNT_URL") or "",
                                 "$DUCTWORK_AZURE_ACCOUNT_URL")
    url = url or url_env
    explicit = any(options.get(k) for k in SECRET_OPTIONS) or bool(option_sas)
    source = "storage options" if explicit else "environment"
    src = {**options, "sas_token": options.get("sas_token") or option_sas} if explicit else {
        "connection_string": env.get("AZURE_STORAGE_CONNECTION_STRING"),
        "account_key": env.get("AZURE_STORAGE_ACCOUNT_KEY"),
        "sas_token": env.get("AZURE_STORAGE_SAS_TOKEN") or env_sas,
    }
    cs = src.get("connection_string")
    if cs:
        parts = _parse_connection_string(cs)
        name = parts.get("accountname") or name
        endpoint = parts.get("blobendpoint") or url
        if not endpoint and name:
            endpoint = (f"{parts.get('defaultendpointsprotocol', 'https')}://{name}.blob."
                        f"{parts.get('endpointsuffix', 'core.windows.net')}")
        name = name or _account_from_url(endpoint)
        return AzureAuth(name or "?", endpoint, "connection string", source, connection_string=cs)
    name = name or (_account_from_url(url) if url else "")
    if not name:
        raise AzureStoreError(
            f"no Azure credentials for {where}: set AZURE_STORAGE_CONNECTION_STRING, or "
            "AZURE_STORAGE_ACCOUNT_NAME with AZURE_STORAGE_ACCOUNT_KEY or AZURE_STORAGE_SAS_TOKEN "
            "(or only AZURE_STORAGE_ACCOUNT_NAME to sign in with DefaultAzureCredential, e.g. "
            "after `az login`), or pass them as store options: "
            "ArtifactStore(url, account_name=..., account_key=...)."
        )
    url = url or f"https://{name}.blob.core.windows.net"
    if src.get("account_key"):
        return AzureAuth(name, url, "account key", source, account_key=src["account_key"])
    if src.get("sas_token"):
        if not explicit and not env.get("AZURE_STORAGE_SAS_TOKEN"):
            source = "$DUCTWORK_AZURE_ACCOUNT_URL"  # describe() names where the SAS is
        return AzureAuth(name, url, "SAS token", source, sas_token=src["sas_token"])
    if not url.startswith("https://"):  # only token credentials are left
        raise AzureStoreError(
            f"storage account {name!r} ({where}): a token credential (credential= or "
            f"DefaultAzureCredential) is only sent over https, and the endpoint is {url}. Use "
            "its connection string or account key (for Azurite: AZURE_STORAGE_CONNECTION_STRING)"
            ", or an https endpoint."
        )
    if src.get("credential") is not None:
        return AzureAuth(name, url, "credential", source, credential=src["credential"])
    try:
        from azure.identity import DefaultAzureCredential
    except ImportError:
        raise AzureStoreError(
            f"no key, SAS token or connection string for account {name!r} ({where}), and "
            "azure-identity is not installed for DefaultAzureCredential: "
            "pip install 'ductwork[azure]', or set AZURE_STORAGE_ACCOUNT_KEY."
        ) from None
    return AzureAuth(name, url, "DefaultAzureCredential", "azure-identity",
                     credential=DefaultAzureCredential())


def _account_from_url(url: str) -> str:
    host_and_path = url.split("://", 1)[-1]
    host, _, path = host_and_path.partition("/")
    if re.fullmatch(r"[0-9.]+(:\d+)?|localhost(:\d+)?|[^.]+(:\d+)?", host):
        return path.split("/", 1)[0]  # emulator style: the account is the first path segment
    return host.split(".", 1)[0]
