"""The content-addressed artifact store, on a local directory or any fsspec URL.

Layout under the store's root::

    objects/<d[:2]>/<d[2:]>     one serialized value, named by the BLAKE3 hex
                                digest ``d`` of its bytes
    keys/<k[:2]>/<k[2:]>.json   the cache index: cache key ``k`` ->
                                {"version": 1, "outputs": {name: ArtifactRef}}
    tmp/<uuid>                  in-flight writes (local stores only)

This is Hamilton's two levels: a key names data versions, a digest names bytes.

Writing (``put``): the value's serializer streams into a writer that feeds a
BLAKE3 hasher and forwards every write, so the digest exists once the value is
written, with no second pass and no in-memory copy; large writes are hashed on a
second thread while the first writes (BLAKE3 and file writes release the GIL).
A local store writes ``tmp/<uuid>`` on the same filesystem and ``os.replace``-s
it to its object path: readers never see a partial object, concurrent writers
of the same bytes both succeed, and a crash leaves only a tmp file
(``clean_tmp``). A remote store spools to a local temporary file and uploads it
only if the object is absent; object stores make an object visible once its
upload completes (``az://`` goes through ``azure_blobs``: an in-memory spool and
blocks committed at the end). Callers write the key index after its objects, so a key never
refers to an object that has not landed. There is no fsync: a torn object left
by a power loss fails verification, like any corruption.

Reading (``get``) verifies the digest before a value is returned. A large
local object is hashed by a second thread reading its own file handle while the
serializer loads from the first: the read costs max(load, hash), not the sum.
Small objects are read whole, verified, then loaded. On a mismatch the object is
deleted (so a rerun can put it again) and ``CorruptArtifact`` is raised: a wrong
value is never returned.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import posixpath
import re
import time
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

import attrs

from ductwork.dsl.core import DuctworkError
from ductwork.runtime.hashing import new_hasher, register_hash
from ductwork.runtime.hashio import (
    THREAD_MIN,
    FileHasher,
    HashingReader,
    HashingWriter,
    Spool,
    local_tmp,
)
from ductwork.runtime.serializers import get_serializer, serializer_for

__all__ = ["ArtifactRef", "ArtifactStore", "CorruptArtifact", "MissingArtifact"]

_DIGEST_RE = re.compile(r"[0-9a-f]{64}")
_KEY_RE = re.compile(r"[0-9a-z_-]{3,255}")
_INDEX_VERSION = 1


class CorruptArtifact(DuctworkError):
    """A stored object's bytes do not hash to its digest; ``.digest`` names it."""

    def __init__(self, message: str, digest: str = "") -> None:
        super().__init__(message)
        self.digest = digest

    def __reduce__(self) -> tuple[Any, ...]:
        return (CorruptArtifact, (str(self), self.digest))


class MissingArtifact(DuctworkError, LookupError):
    """A referenced object is not in the store."""


def _check_digest(digest: str) -> str:
    if not isinstance(digest, str) or not _DIGEST_RE.fullmatch(digest):
        raise ValueError(f"not a 64-hex-digit digest: {digest!r}")
    return digest


@attrs.frozen
class ArtifactRef:
    """A stored value: its content digest, the serializer that wrote it and its size."""

    digest: str = attrs.field(validator=lambda _, __, v: _check_digest(v))
    serializer: str
    size: int

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict."""
        return {"digest": self.digest, "serializer": self.serializer, "size": self.size}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ArtifactRef:
        """Build from ``to_dict()`` output."""
        return cls(str(d["digest"]), str(d["serializer"]), int(d["size"]))


# An upstream output enters a downstream key by what identifies its bytes and how they
# are read back: two types serialized to equal bytes (str vs bytes) must not collide.
register_hash(ArtifactRef, lambda ref: ["artifact", ref.digest, ref.serializer])


def _replace(src: str, dest: str) -> None:
    """Rename into place, making the two-hex-digit prefix folder only when it is missing."""
    try:
        os.replace(src, dest)
    except FileNotFoundError:
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        os.replace(src, dest)


class ArtifactStore:
    """Content-addressed values and the cache-key index, under a local path or fsspec URL."""

    def __init__(self, url: str | os.PathLike[str] | None = None, **storage_options: Any) -> None:
        """Open the store at ``url`` (default ``$DUCTWORK_STORE`` or ``./.ductwork``)."""
        if url is None:
            url = os.environ.get("DUCTWORK_STORE") or "./.ductwork"
        url = os.fspath(url)
        protocol, _, rest = url.partition("://") if "://" in url else ("", "", url)
        self._fs: Any = None
        self._azure: Any = None
        # Kept for worker processes to open the same store; never shown (may hold secrets).
        self._options = dict(storage_options)
        if protocol in ("", "file", "local"):
            self._local = True
            self._root = os.path.abspath(os.path.expanduser(rest))
            self._url = self._root
        elif protocol == "az":
            from ductwork.runtime.azure_blobs import open_az

            self._local = False
            self._root, self._url, self._azure = open_az(url, storage_options)
        else:
            import fsspec.core

            self._local = False
            self._fs, path = fsspec.core.url_to_fs(url, **storage_options)
            self._root = path.rstrip("/") or "/"
            self._url = url.rstrip("/") if rest.strip("/") else f"{protocol}://"
        # Remote object I/O: the fsspec filesystem, or the Azure SDK for az:// (faster,
        # atomic, and with errors that name the account and never a secret).
        self._io: Any = self._azure if self._azure is not None else self._fs
        self._tmp = os.path.join(self._root, "tmp") if self._local else None
        self._tmp_ready = False

    def __repr__(self) -> str:
        return f"ArtifactStore({self._url!r})"

    @property
    def storage_options(self) -> dict[str, Any]:
        """The JSON-able options this store was opened with, for workers to open it too.

        They may hold secrets the user passed: send them only through a process's
        environment or pipe. Credentials found in the environment are not included; a
        worker finds them in its own environment.
        """
        return {k: v for k, v in self._options.items() if k != "credential"}

    def check(self) -> None:
        """Probe a remote store once, before a run: raise a clear error on bad credentials;
        create a missing Azure container."""
        if self._azure is not None:
            self._azure.check(self._root)

    @property
    def url(self) -> str:
        """The store's location: an absolute path if local, else the URL given."""
        return self._url

    @property
    def is_local(self) -> bool:
        """Whether the store is a directory on this machine."""
        return self._local

    @property
    def in_memory(self) -> bool:
        """Whether the store lives in this process's memory (``memory://``): no other
        process can reach it."""
        if self._local or self._azure is not None:
            return False
        protocols = self._fs.protocol
        return "memory" in ((protocols,) if isinstance(protocols, str) else protocols)

    @property
    def root(self) -> str:
        """The store's directory: a local path, or the path inside the fsspec filesystem."""
        return self._root

    @property
    def fs(self) -> Any:
        """The fsspec filesystem holding the store (a LocalFileSystem if local)."""
        if self._fs is None and self._azure is not None:
            import fsspec

            self._fs = fsspec.filesystem("az", **self._azure.auth.adlfs_options())
        elif self._fs is None:
            from fsspec.implementations.local import LocalFileSystem

            self._fs = LocalFileSystem()
        return self._fs

    def _join(self, *parts: str) -> str:
        return (os.path if self._local else posixpath).join(self._root, *parts)

    def object_path(self, digest: str) -> str:
        """Return where the object ``digest`` lives."""
        _check_digest(digest)
        return self._join("objects", digest[:2], digest[2:])

    def _tmp_name(self) -> str:
        # The tmp folder is made once per store object, not stat-ed on every write.
        if not self._tmp_ready:
            os.makedirs(self._tmp, exist_ok=True)
            self._tmp_ready = True
        return os.path.join(self._tmp, uuid.uuid4().hex)

    def key_path(self, key: str) -> str:
        """Return where the index record of cache key ``key`` lives."""
        if not isinstance(key, str) or not _KEY_RE.fullmatch(key):
            raise ValueError(f"cache key {key!r} must be 3-255 characters of [0-9a-z_-]")
        return self._join("keys", key[:2], key[2:] + ".json")

    # -- objects ---------------------------------------------------------------

    def put(self, value: Any) -> ArtifactRef:
        """Serialize ``value`` into the store (once, hashing as it writes) and return its ref."""
        serializer = serializer_for(value)
        if self._azure is not None:
            spool: Any = self._azure.spool()
        else:
            spool = Spool(self._tmp_name if self._local else local_tmp)
        try:
            writer = HashingWriter(spool)
            try:
                serializer.dump(value, writer)
            except BaseException as e:
                e.add_note(f"serializing a {type(value).__qualname__} with {serializer.name!r}")
                raise
            spool.finish()
        except BaseException:
            spool.discard()
            raise
        digest = writer.hexdigest()
        if self._azure is not None:
            self._azure.put_spooled(self.object_path(digest), spool)
            return ArtifactRef(digest, serializer.name, writer.size)
        if spool.path is None:
            self._put_small(digest, spool.getvalue())
            return ArtifactRef(digest, serializer.name, writer.size)
        tmp = spool.path
        try:
            dest = self.object_path(digest)
            if self._local:
                if not os.path.exists(dest):
                    _replace(tmp, dest)  # atomic; a concurrent twin replaces it with equal bytes
            elif not self._io.exists(dest):
                self._io.makedirs(posixpath.dirname(dest), exist_ok=True)
                self._io.put_file(tmp, dest)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        return ArtifactRef(digest, serializer.name, writer.size)

    def _put_small(self, digest: str, data: bytes) -> None:
        # A small value is hashed in memory first, so one that is already stored costs a
        # stat, not a temp file, a write and an unlink.
        dest = self.object_path(digest)
        if self._local:
            if not os.path.exists(dest):
                self._write_atomic(dest, data)
        elif not self._io.exists(dest):
            self._io.makedirs(posixpath.dirname(dest), exist_ok=True)
            self._io.pipe_file(dest, data)  # one PUT: visible whole or not at all

    def get(self, ref: ArtifactRef) -> Any:
        """Load the value of ``ref``, verifying its digest; raise CorruptArtifact on a mismatch."""
        serializer = get_serializer(ref.serializer)
        path = self.object_path(ref.digest)
        try:
            if ref.size < THREAD_MIN:
                data = self._cat(path)
                self._verify(ref, path, new_hasher(data).hexdigest(), len(data))
                return serializer.load(io.BytesIO(data))
            if self._local:
                return self._get_local(ref, path, serializer)
            return self._get_streamed(ref, path, serializer)
        except FileNotFoundError:
            if self.has(ref.digest):
                raise  # not the object itself: something the loader opened
            raise MissingArtifact(
                f"artifact {ref.digest} is not in the store {self._url} (expected at {path}); it "
                "was deleted or garbage-collected. Rerun the step that produced it "
                "(e.g. run(regenerate=[step]))."
            ) from None

    def _cat(self, path: str) -> bytes:
        if self._local:
            with open(path, "rb") as f:
                return f.read()
        return self._io.cat_file(path)

    def _get_local(self, ref: ArtifactRef, path: str, serializer: Any) -> Any:
        with open(path, "rb") as f:
            hasher = FileHasher(path)
            hasher.start()
            try:
                value = serializer.load(f)
            except Exception as e:  # corrupt bytes can make any loader fail: check which
                hasher.join()
                if hasher.error is None:
                    self._verify(ref, path, hasher.digest, hasher.size, cause=e)
                raise
            hasher.join()
        if hasher.error is not None:
            raise hasher.error
        self._verify(ref, path, hasher.digest, hasher.size)
        return value

    def _get_streamed(self, ref: ArtifactRef, path: str, serializer: Any) -> Any:
        with self._io.open(path, "rb") as raw:
            reader = HashingReader(raw)
            try:
                value = serializer.load(reader)
            except Exception as e:
                reader.drain()
                self._verify(ref, path, reader.hexdigest(), reader.size, cause=e)
                raise
            reader.drain()
        self._verify(ref, path, reader.hexdigest(), reader.size)
        return value

    def _verify(self, ref: ArtifactRef, path: str, digest: str, size: int, cause: Any = None):
        if digest == ref.digest:
            return
        self.delete_object(ref.digest)
        raise CorruptArtifact(
            f"artifact {ref.digest} at {path} is corrupt: its {size} bytes hash to {digest} "
            f"(expected {ref.size} bytes). It has been deleted; rerun to recompute it.",
            ref.digest,
        ) from cause

    def has(self, digest: str) -> bool:
        """Whether the object ``digest`` is in the store."""
        path = self.object_path(digest)
        return os.path.exists(path) if self._local else self._io.exists(path)

    def iter_objects(self) -> Iterator[str]:
        """Yield the digest of every stored object."""
        for prefix, name in self._walk("objects"):
            if _DIGEST_RE.fullmatch(prefix + name):
                yield prefix + name

    def delete_object(self, digest: str) -> None:
        """Delete the object ``digest``, if present."""
        self._remove(self.object_path(digest))

    # -- cache index -----------------------------------------------------------

    def put_key(self, key: str, outputs: Mapping[str, ArtifactRef]) -> None:
        """Record that cache key ``key`` produced ``outputs`` (atomically replacing any record)."""
        path = self.key_path(key)
        body = {"version": _INDEX_VERSION, "outputs": {n: r.to_dict() for n, r in outputs.items()}}
        data = json.dumps(body, sort_keys=True).encode()
        if not self._local:
            self._io.pipe_file(path, data)  # one PUT: visible whole or not at all
            return
        self._write_atomic(path, data)

    def _write_atomic(self, dest: str, data: bytes) -> None:
        # Written beside the store under a temp name, then renamed: readers see all or none.
        tmp = self._tmp_name()
        try:
            with open(tmp, "wb") as f:
                f.write(data)
            _replace(tmp, dest)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    def get_key(self, key: str) -> dict[str, ArtifactRef] | None:
        """Return the outputs recorded for ``key``, or None if absent or any object is missing."""
        path = self.key_path(key)
        try:
            body = json.loads(self._cat(path))
            if body.get("version") != _INDEX_VERSION:
                return None
            outputs = {str(n): ArtifactRef.from_dict(d) for n, d in body["outputs"].items()}
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError, AttributeError):
            return None  # unreadable record: treat as a miss; the rerun rewrites it
        if not all(self.has(r.digest) for r in outputs.values()):
            return None
        return outputs

    def iter_keys(self) -> Iterator[str]:
        """Yield every cache key in the index."""
        for prefix, name in self._walk("keys"):
            if name.endswith(".json") and _KEY_RE.fullmatch(key := prefix + name[:-5]):
                yield key

    def delete_key(self, key: str) -> None:
        """Delete the index record of ``key``, if present."""
        self._remove(self.key_path(key))

    def clean_tmp(self, older_than: float = 3600.0) -> int:
        """Delete tmp files older than ``older_than`` seconds (crash leftovers); count them."""
        if not self._local:
            return 0
        cutoff, removed = time.time() - older_than, 0
        try:
            entries = list(os.scandir(self._tmp))
        except FileNotFoundError:
            return 0
        for entry in entries:
            with contextlib.suppress(FileNotFoundError):
                if entry.stat().st_mtime < cutoff:
                    os.unlink(entry.path)
                    removed += 1
        return removed

    # -- helpers ---------------------------------------------------------------

    def _walk(self, top: str) -> Iterator[tuple[str, str]]:
        """Yield (two-character prefix, file name) under ``top``."""
        base = self._join(top)
        if not self._local:
            for path in self._io.find(base):
                prefix, name = posixpath.split(path)
                yield posixpath.basename(prefix), name
            return
        try:
            prefixes = [e for e in os.scandir(base) if e.is_dir() and len(e.name) == 2]
        except FileNotFoundError:
            return
        for d in prefixes:
            with contextlib.suppress(FileNotFoundError):
                for entry in os.scandir(d.path):
                    yield d.name, entry.name

    def _remove(self, path: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            if self._local:
                os.unlink(path)
            else:
                self._io.rm_file(path)
