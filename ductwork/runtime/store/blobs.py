"""Blob I/O for ``az://`` artifact stores, straight through azure-storage-blob.

Not through adlfs, for speed and for control of what an error says. Writing:
the serializer's bytes are spooled in memory (a ``bytes`` value by reference,
so it is never copied; past ``MEMORY_SPOOL``, in a local temp file), hashed on
the way, and then uploaded under their digest by one ``upload_blob`` with
``max_concurrency``. A blob larger than ``SINGLE_PUT`` is staged as blocks that
no reader can see until the block list is committed at the end, and a smaller
one is a single PUT, so an interrupted upload leaves nothing visible.
Reading: ``BlobReader`` fetches the next ranges on a few threads while the
loader reads (and the store hashes) them in order, pinned to the first
range's ETag. ``ArtifactStore.fs`` is still an adlfs filesystem with the same
credentials, for everything off this path.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping

from ductwork.runtime.store.azure import (
    CLIENT_OPTIONS,
    SECRET_OPTIONS,
    AzureAuth,
    AzureStoreError,
    resolve_auth,
    split_sas,
)
from ductwork.runtime.store.blob_reader import BlobReader
from ductwork.runtime.store.secrets import redact, redact_logs
from ductwork.runtime.store.spool import BufferSpool

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["AzureBlobs", "BlobReader", "open_az"]

MAX_CONCURRENCY = 8  # parallel block uploads / range downloads per blob
BLOCK_SIZE = 8 << 20  # upload block and download range: few requests, bounded memory
SINGLE_PUT = 32 << 20  # above this a blob is uploaded as staged blocks
# An object is spooled in memory up to this size (the SDK uploads from memory fastest),
# then in a local temp file.
def _memory_spool() -> int:
    try:
        return min(2 << 30, os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 8)
    except (AttributeError, ValueError, OSError):  # no sysconf (Windows)
        return 256 << 20


MEMORY_SPOOL = _memory_spool()

class AzureBlobs:
    """The few blob operations the artifact store needs, on fsspec-style paths
    (``container/name``), with Azure errors translated to ``AzureStoreError``."""

    def __init__(self, auth: AzureAuth, url: str, options: Mapping[str, Any]) -> None:
        self.auth, self.url = auth, url
        # The options a worker opens the same store with (a URL's SAS is among them).
        self.options = dict(options)
        self.concurrency = int(options.get("max_concurrency") or MAX_CONCURRENCY)
        # A wrong endpoint fails in seconds, not after the SDK's minute of backoff.
        client_options: dict[str, Any] = {
            "max_single_put_size": SINGLE_PUT, "max_block_size": BLOCK_SIZE,
            "max_chunk_get_size": BLOCK_SIZE, "retry_connect": 2, "initial_backoff": 1,
            "increment_base": 2, "connection_timeout": 10}
        client_options.update({k: options[k] for k in CLIENT_OPTIONS if k in options})
        self.range_size = int(client_options["max_chunk_get_size"])
        self._service = auth.service_client(**client_options)
        self._made: set[str] = set()

    def _blob(self, path: str) -> Any:
        container, _, name = path.partition("/")
        return self._service.get_blob_client(container, name)

    @contextlib.contextmanager
    def errors(self, action: str, path: str) -> Iterator[None]:
        """Translate Azure errors met while doing ``action`` on ``path``."""
        from azure.core.exceptions import (
            ClientAuthenticationError,
            HttpResponseError,
            ResourceNotFoundError,
            ServiceRequestError,
        )

        container = path.partition("/")[0]
        who = f"storage account {self.auth.account_name!r}, container {container!r} ({self.url})"
        try:
            yield
        except ResourceNotFoundError as e:
            raise FileNotFoundError(path) from _scrubbed(e, self.auth)
        except ClientAuthenticationError as e:
            raise self._refused(action, who, e) from None
        except ServiceRequestError as e:
            raise AzureStoreError(
                f"cannot reach {self.auth.account_url} for {who} while {action}: "
                f"{redact(str(e).splitlines()[0], self.auth.secrets)}. Check the account name "
                "and endpoint, and the network (for Azurite: bash scripts/services.sh up azurite)."
            ) from None
        except HttpResponseError as e:
            if e.status_code == 403:
                raise self._refused(action, who, e) from None
            raise AzureStoreError(
                f"Azure failed {action} in {who}: "
                f"{redact(str(e).splitlines()[0], self.auth.secrets)} ({_code(e)})"
            ) from None

    def _refused(self, action: str, who: str, e: Any) -> AzureStoreError:
        if self.auth.method == "DefaultAzureCredential":
            return AzureStoreError(
                f"no credential for {who}: none was given as store options or in the "
                "environment, and DefaultAzureCredential found no sign-in "
                f"({redact(str(e).splitlines()[0][:300] if str(e) else '')}). Run `az login` "
                "(or use a managed identity), or set AZURE_STORAGE_CONNECTION_STRING, or "
                "AZURE_STORAGE_ACCOUNT_KEY / AZURE_STORAGE_SAS_TOKEN."
            )
        return AzureStoreError(
            f"Azure refused {action} in {who} with {self.auth.describe()} ({_code(e)}: "
            f"{redact(str(e).splitlines()[0][:300] if str(e) else '', self.auth.secrets)}): the "
            "key, SAS token or connection string is wrong or expired, or may not use this "
            "container (a SAS token needs read, add, create, write, delete and list). Fix or "
            "unset it; credentials are looked up in this order: store options, "
            "AZURE_STORAGE_CONNECTION_STRING, AZURE_STORAGE_ACCOUNT_NAME with "
            "AZURE_STORAGE_ACCOUNT_KEY or AZURE_STORAGE_SAS_TOKEN, DefaultAzureCredential."
        )

    def _sign_in(self, root: str) -> None:
        """Get a token once, directly: a missing sign-in fails here at once, not after the
        blob client's retries."""
        container = root.partition("/")[0]
        who = f"storage account {self.auth.account_name!r}, container {container!r} ({self.url})"
        try:
            self.auth.credential.get_token("https://storage.azure.com/.default")
        except Exception as e:
            raise self._refused("signing in", who, e) from None

    def ensure_container(self, container: str) -> None:
        """Create ``container`` if it does not exist (once per store object)."""
        from azure.core.exceptions import ResourceExistsError

        if container in self._made:
            return
        with self.errors("creating the container", container), \
                contextlib.suppress(ResourceExistsError):
            self._service.create_container(container)
        self._made.add(container)

    def check(self, root: str) -> None:
        """Probe the store with one request: raise on bad credentials, create a missing
        container."""
        from azure.core.exceptions import ResourceNotFoundError

        if self.auth.credential is not None:
            self._sign_in(root)
        probe = self._blob(root.rstrip("/") + "/keys/.probe")
        try:
            with self.errors("opening the store", root):
                try:
                    probe.get_blob_properties()
                except ResourceNotFoundError as e:
                    if e.error_code != "ContainerNotFound":
                        return  # the container is there; the probe blob never is
                    raise
        except FileNotFoundError:
            self.ensure_container(root.partition("/")[0])

    # -- the fsspec-style methods ArtifactStore calls -----------------------------------

    def exists(self, path: str) -> bool:
        """Whether the blob ``path`` exists."""
        with self.errors("checking a blob", path):
            return self._blob(path).exists()

    def makedirs(self, path: str, exist_ok: bool = True) -> None:
        """Blob names have no folders: nothing to make."""

    def _upload(self, path: str, data: Any, length: int | None, overwrite: bool = True) -> None:
        from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

        blob = self._blob(path)
        for attempt in (0, 1):
            if hasattr(data, "seek"):
                data.seek(0)
            try:
                with self.errors("writing a blob", path):
                    try:
                        blob.upload_blob(data, length=length, overwrite=overwrite,
                                         max_concurrency=self.concurrency)
                        return
                    except ResourceExistsError:
                        if overwrite:
                            raise
                        return  # content-addressed: the blob there holds these bytes
                    except ResourceNotFoundError as e:
                        if attempt or e.error_code != "ContainerNotFound":
                            raise
            except FileNotFoundError:
                if attempt:
                    raise
            # A missing container is created on first write, as a local store makes its dir.
            self.ensure_container(path.partition("/")[0])

    def spool(self) -> BufferSpool:
        """Return a spool to serialize an object into before it is named and uploaded."""
        return BufferSpool(MEMORY_SPOOL)

    def put_spooled(self, path: str, spool: BufferSpool) -> None:
        """Upload a finished spool to ``path`` unless the blob exists; discard the spool."""
        try:
            if self.exists(path):
                return
            if spool.path is not None:
                self.put_file(spool.path, path)
            else:
                self._upload(path, spool.stream(), spool.size)
        finally:
            spool.discard()

    def put_file(self, lpath: str, rpath: str) -> None:
        """Upload a local file; a large one is staged as blocks and committed at the end."""
        with open(lpath, "rb") as f:
            self._upload(rpath, f, os.fstat(f.fileno()).st_size)

    def pipe_file(self, path: str, data: bytes) -> None:
        """Write ``data`` as one blob."""
        self._upload(path, data, len(data))

    def pipe_new(self, path: str, data: bytes) -> None:
        """Write ``data`` as one blob unless ``path`` exists (one conditional PUT)."""
        self._upload(path, data, len(data), overwrite=False)

    def cat_file(self, path: str) -> bytes:
        """Return a blob's bytes."""
        with self.errors("reading a blob", path):
            return self._blob(path).download_blob(max_concurrency=self.concurrency).readall()

    def open(self, path: str, mode: str = "rb") -> BlobReader:
        """Open a blob for sequential reading, with ranges prefetched in parallel."""
        if mode != "rb":
            raise ValueError(f"only 'rb' is supported, not {mode!r}")
        return BlobReader(self, path)

    def find(self, path: str) -> list[str]:
        """Return every blob path under the folder ``path``."""
        container, _, prefix = path.rstrip("/").partition("/")
        prefix = f"{prefix}/" if prefix else ""
        client = self._service.get_container_client(container)
        with self.errors("listing blobs", path):
            try:
                return [f"{container}/{b.name}" for b in client.list_blobs(name_starts_with=prefix)]
            except FileNotFoundError:
                return []

    def rm_file(self, path: str) -> None:
        """Delete the blob ``path``; FileNotFoundError if absent."""
        with self.errors("deleting a blob", path):
            self._blob(path).delete_blob()

    def close(self) -> None:
        """Close the HTTP connections."""
        self._service.close()


def _code(e: Any) -> str:
    code = getattr(e, "error_code", None) or getattr(e, "reason", None) or type(e).__name__
    return str(getattr(code, "value", code))


def _scrubbed(e: BaseException, auth: AzureAuth) -> BaseException:
    """A stand-in cause carrying the error's first line, redacted."""
    return AzureStoreError(redact(str(e).splitlines()[0] if str(e) else type(e).__name__,
                                  auth.secrets))


def open_az(url: str, options: Mapping[str, Any]) -> tuple[str, str, AzureBlobs]:
    """Open ``az://container/prefix[?SAS]``: return its root path, normalized URL (never
    with the SAS) and blob I/O, whose ``options`` hold the SAS for worker processes."""
    url, url_sas = split_sas(url.rstrip("?"), "the store URL")
    root = url.partition("://")[2].strip("/")
    if not root.split("/", 1)[0]:
        raise ValueError(f"{url!r} names no container: use az://CONTAINER[/PREFIX]")
    norm = f"az://{root}"
    options = _sas_as_option(options, url_sas, norm)
    auth = resolve_auth(options, where=norm)
    if url_sas and auth.sas_token == url_sas:
        auth = auth.replace(source="the store URL")  # errors say where the SAS is
    if auth.sas_token and options.get("sas_token") == auth.sas_token:
        # A worker process may have been started before this account was set in the
        # environment: the SAS travels with the rest of what it needs.
        options.setdefault("account_name", auth.account_name)
        options.setdefault("account_url", auth.account_url)
    # From the first az:// store on, the SDK's logs are redacted, with this one's secrets.
    redact_logs(auth.secrets)
    return root, norm, AzureBlobs(auth, norm, options)


def _sas_as_option(options: Mapping[str, Any], url_sas: str | None,
                   where: str) -> dict[str, Any]:
    """The options with a SAS from the store URL or the account URL as ``sas_token``,
    so that workers get it with the other options and the URLs are plain."""
    options = dict(options)
    account_url, account_sas = split_sas(options.get("account_url") or "",
                                         "the account_url option")
    if account_sas:
        options["account_url"] = account_url
    for sas in (account_sas, url_sas):
        if not sas:
            continue
        given = [k for k in SECRET_OPTIONS if options.get(k) and options.get(k) != sas]
        if given:
            raise AzureStoreError(
                f"{where} has a SAS token in its URL and also the storage option(s) "
                f"{', '.join(given)}: give one credential."
            )
        options["sas_token"] = sas
    return options
