"""The content-addressed artifact store, on a local directory or any fsspec URL.

Layout under the store's root::

    objects/<d[:2]>/<d[2:]>     one serialized value, named by the BLAKE3 hex
                                digest ``d`` of its bytes
    keys/<k[:2]>/<k[2:]>.json   the cache index: cache key ``k`` ->
                                {"version": 1, "outputs": {name: ArtifactRef}}
    tmp/<prefix>-<n>            in-flight writes (local stores only; files._TmpNames)

Small step outputs are inlined (``put(value, inline=True)``, up to ``INLINE_MAX``
serialized bytes): the ref carries the bytes (``ArtifactRef.inline``, base64 in
JSON), and so do the cache entry and the run record that hold it; no object file
is written. A cold step then costs one file (its entry) instead of two, and a
warm lookup no stat of the object. The digest is still the BLAKE3 hash of those
bytes, so downstream keys do not change; an entry without ``inline`` (an older
store, or a larger value) reads its object as before, and older code reading a
newer entry finds no object and recomputes (a miss, not an error).

This is Hamilton's two levels: a key names data versions, a digest names bytes.
Opening the root (local, ``az://`` or fsspec) and the file operations below it
are in ``files``; this module holds the two levels and their formats.

Writing (``put``): the value's serializer streams into a writer that feeds a
BLAKE3 hasher and forwards every write, so the digest exists once the value is
written, with no second pass and no in-memory copy; large writes are hashed on a
second thread while the first writes (BLAKE3 and file writes release the GIL).
JSON data, a ``str`` or ``bytes`` -- whose built-in serializers make the bytes whole
in memory anyway (``builtin_serializers.dumps_whole``) -- are hashed once from those
bytes instead, without a spool or a writer: a cold step's small output costs a few
calls. The bytes are the same, so digests and keys are. An entry is spelled out as
``json.dumps(body, sort_keys=True)`` spells it (``entry.entry_bytes``).
A local store writes ``tmp/<name>`` on the same filesystem and ``os.replace``-s
it to its object path: readers never see a partial object, concurrent writers
of the same bytes both succeed, and a crash leaves only a tmp file
(``clean_tmp``). A remote store spools to a local temporary file and uploads it
only if the object is absent; object stores make an object visible once its
upload completes (``az://`` goes through ``blobs``: an in-memory spool and
blocks committed at the end). Callers write the key index after its objects, so a key never
refers to an object that has not landed. There is no fsync: a torn object left
by a power loss fails verification, like any corruption.

Reading (``get``) verifies the digest before a value is returned. A large
local object's reads are hashed as they land (``VerifyingRaw``): a read into the
serializer's own buffer (an array's) is read once and hashed on a second thread
a piece behind it; a whole-file read (``bytes``) is hashed meanwhile through a
second handle; what the serializer skipped or left unread is hashed after it.
Small objects are read whole, verified, then loaded. On a mismatch the object is
deleted (so a rerun can put it again) and ``CorruptArtifact`` is raised: a wrong
value is never returned.
"""

from __future__ import annotations

import contextlib
import io
import os
import posixpath
from collections.abc import Iterator, Mapping

from ductwork.dsl.core import DuctworkError
from ductwork.runtime.keys.classes import class_names
from ductwork.runtime.keys.hashing import new_hasher
from ductwork.runtime.store.builtin_serializers import dumps_whole
from ductwork.runtime.store.entry import (
    INLINE_MAX,
    ArtifactRef,
    BadEntry,
    _check_digest,
    entry_bytes,
    is_digest,
    parse_entry,
    warn_bad_entry,
)
from ductwork.runtime.store.files import StoreFiles, StoreFull, _replace, check_location
from ductwork.runtime.store.serializers import get_serializer, serializer_for

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "INLINE_MAX", "ArtifactRef", "ArtifactStore", "BadEntry", "CorruptArtifact",
    "MissingArtifact", "StoreFull", "parse_entry", "warn_bad_entry",
]

# A cache key is 3-255 of these, checked by length and character set (what a regular
# expression checked, without compiling one at import).
_KEY_CHARS = frozenset("0123456789abcdefghijklmnopqrstuvwxyz_-")


def _is_key(key: str) -> bool:
    return 3 <= len(key) <= 255 and _KEY_CHARS.issuperset(key)


class CorruptArtifact(DuctworkError):
    """A stored object's bytes do not hash to its digest; ``.digest`` names it."""

    def __init__(self, message: str, digest: str = "") -> None:
        super().__init__(message)
        self.digest = digest

    def __reduce__(self) -> tuple[Any, ...]:
        return (CorruptArtifact, (str(self), self.digest))


class MissingArtifact(DuctworkError, LookupError):
    """A referenced object is not in the store."""


class ArtifactStore(StoreFiles):
    """Content-addressed values and the cache-key index, under a local path or fsspec URL."""

    def __repr__(self) -> str:
        return f"ArtifactStore({self._url!r})"

    def object_path(self, digest: str) -> str:
        """Return where the object ``digest`` lives."""
        _check_digest(digest)
        return self._join("objects", digest[:2], digest[2:])

    def key_path(self, key: str) -> str:
        """Return where the index record of cache key ``key`` lives."""
        if not isinstance(key, str) or not _is_key(key):
            raise ValueError(f"cache key {key!r} must be 3-255 characters of [0-9a-z_-]")
        return self._join("keys", key[:2], key[2:] + ".json")

    # -- objects ---------------------------------------------------------------

    def put(self, value: Any, inline: bool = False) -> ArtifactRef:
        """Serialize ``value`` into the store (once, hashing as it writes) and return its ref.

        With ``inline``, a value of at most ``INLINE_MAX`` serialized bytes is not written:
        the ref carries its bytes (for step outputs, whose refs are kept in entries and run
        records). Raises ``StoreFull`` naming the disk when one fills up; nothing partial
        is left.
        """
        try:
            serializer = serializer_for(value)
            try:
                data = dumps_whole(serializer, value)
            except BaseException as e:
                _note_serializing(e, value, serializer)
                raise
            if data is None:
                return self._put(value, serializer, class_names(value), inline)
            # JSON data, a str or bytes: whole in memory already, and made of builtins only
            # (no classes to name). Hashed once; a small one is inlined, the rest is stored as
            # the streamed path would store the same bytes.
            if inline and len(data) <= INLINE_MAX:
                return ArtifactRef(new_hasher(data).hexdigest(), serializer.name, len(data),
                                   (), data)
            # hashio only past the inline case: a run of small outputs writes no object.
            from ductwork.runtime.store.hashio import SPILL

            if len(data) < SPILL and self._azure is None:
                digest = new_hasher(data).hexdigest()
                self._put_small(digest, data)
                return ArtifactRef(digest, serializer.name, len(data))
            return self._put(value, serializer, (), inline, data)
        except OSError as exc:
            self._raise_if_full(exc)
            raise

    def _put(self, value: Any, serializer: Any, classes: tuple[str, ...], inline: bool,
             data: bytes | None = None) -> ArtifactRef:
        """Stream ``value`` (or its bytes ``data``, already made) into a spool, hashing it."""
        from ductwork.runtime.store.hashio import HashingWriter, Spool, local_tmp

        if self._azure is not None:
            spool: Any = self._azure.spool()
        else:
            spool = Spool(self._tmp_name if self._local else local_tmp)
        try:
            writer = HashingWriter(spool)
            with self._spooling():
                try:
                    if data is None:
                        serializer.dump(value, writer)
                    else:
                        writer.write(data)
                except BaseException as e:
                    _note_serializing(e, value, serializer)
                    raise
                spool.finish()
        except BaseException:
            spool.discard()
            raise
        digest = writer.hexdigest()
        if inline and writer.size <= INLINE_MAX and spool.path is None:
            data = _spooled_bytes(spool)
            spool.discard()
            return ArtifactRef(digest, serializer.name, writer.size, classes, data)
        if self._azure is not None:
            self._azure.put_spooled(self.object_path(digest), spool)
            return ArtifactRef(digest, serializer.name, writer.size, classes)
        if spool.path is None:
            self._put_small(digest, spool.getvalue())
            return ArtifactRef(digest, serializer.name, writer.size, classes)
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
        return ArtifactRef(digest, serializer.name, writer.size, classes)

    def _put_small(self, digest: str, data: bytes) -> None:
        # A small value is hashed in memory first, so one that is already stored costs a
        # stat, not a temp file, a write and an unlink.
        dest = self.object_path(digest)
        if self._local:
            if not os.path.exists(dest):
                self._write_atomic(dest, data)
        elif self._azure is not None:
            self._azure.pipe_new(dest, data)  # one conditional PUT, not a HEAD then a PUT
        elif not self._io.exists(dest):
            self._io.makedirs(posixpath.dirname(dest), exist_ok=True)
            self._io.pipe_file(dest, data)  # one PUT: visible whole or not at all

    def get(self, ref: ArtifactRef) -> Any:
        """Load the value of ``ref``, verifying its digest; raise CorruptArtifact on a mismatch."""
        serializer = get_serializer(ref.serializer)
        if ref.inline is not None:
            digest = new_hasher(ref.inline).hexdigest()
            if digest != ref.digest:  # nothing to delete: the producer rewrites its entry
                raise CorruptArtifact(
                    f"artifact {ref.digest} (inlined in its cache entry or run record) is "
                    f"corrupt: its {len(ref.inline)} bytes hash to {digest}. Rerun to "
                    "recompute it.", ref.digest)
            return serializer.load(io.BytesIO(ref.inline))
        from ductwork.runtime.store.hashio import THREAD_MIN  # past the inline case, as put

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

    def _get_local(self, ref: ArtifactRef, path: str, serializer: Any) -> Any:
        # One pass: the loader's reads are hashed as they land (see VerifyingRaw).
        from ductwork.runtime.store.hashio import VerifyingRaw

        with open(path, "rb", buffering=0) as raw:
            reader = VerifyingRaw(raw)
            try:
                value = serializer.load(io.BufferedReader(reader))
            except Exception as e:  # corrupt bytes can make any loader fail: check which
                try:
                    digest = reader.finish()
                except BaseException:  # no digest to judge by: the loader's error stands
                    raise e from None
                self._verify(ref, path, digest, reader.size, cause=e)
                raise
            digest = reader.finish()
        self._verify(ref, path, digest, reader.size)
        return value

    def _get_streamed(self, ref: ArtifactRef, path: str, serializer: Any) -> Any:
        from ductwork.runtime.store.hashio import HashingReader

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
            if is_digest(prefix + name):
                yield prefix + name

    def delete_object(self, digest: str) -> None:
        """Delete the object ``digest``, if present."""
        self._remove(self.object_path(digest))

    # -- cache index -----------------------------------------------------------

    def put_key(self, key: str, outputs: Mapping[str, ArtifactRef]) -> None:
        """Record that cache key ``key`` produced ``outputs`` (atomically replacing any record)."""
        path = self.key_path(key)
        data = entry_bytes(outputs)
        if not self._local:
            self._io.pipe_file(path, data)  # one PUT: visible whole or not at all
            return
        try:
            self._write_atomic(path, data)
        except IsADirectoryError:
            # A directory where the entry belongs (a damaged store): get_key reported it as a
            # miss; replace it, or the step would rerun on every run.
            import shutil  # a damaged store only

            shutil.rmtree(path, ignore_errors=True)
            self._write_atomic(path, data)
        except OSError as exc:
            self._raise_if_full(exc)
            raise

    def get_key(self, key: str) -> dict[str, ArtifactRef] | None:
        """Return the outputs recorded for ``key``, or None if absent, damaged or any object
        is missing.

        A damaged entry (unreadable, not JSON, the wrong shape, an unknown serializer, a
        digest that is not one) is a miss with a warning naming it: the step reruns and
        ``put_key`` replaces it. It must never stop a run.
        """
        if not isinstance(key, str) or not _is_key(key):
            path = self.key_path(key)  # raises, saying what a key is
        path = f"{self._prefix}keys/{key[:2]}/{key[2:]}.json"  # key_path's, on every lookup
        try:
            outputs = parse_entry(self._cat_small(path))
        except FileNotFoundError:
            return None
        except (OSError, BadEntry) as exc:
            warn_bad_entry(path, key, str(exc) if isinstance(exc, BadEntry)
                           else f"cannot be read ({type(exc).__name__}: {exc})")
            return None
        for ref in outputs.values():  # an inlined output holds its own bytes
            if ref.inline is None and not self.has(ref.digest):
                return None
        return outputs

    def iter_keys(self) -> Iterator[str]:
        """Yield every cache key in the index."""
        for prefix, name in self._walk("keys"):
            if name.endswith(".json") and _is_key(key := prefix + name[:-5]):
                yield key

    def delete_key(self, key: str) -> None:
        """Delete the index record of ``key``, if present."""
        self._remove(self.key_path(key))


def _note_serializing(exc: BaseException, value: Any, serializer: Any) -> None:
    exc.add_note(f"serializing a {type(value).__qualname__} with {serializer.name!r}")


def _spooled_bytes(spool: Any) -> bytes:
    """The bytes a finished in-memory spool holds (a local ``Spool`` or an Azure one)."""
    if hasattr(spool, "getvalue"):
        return spool.getvalue()
    found = spool.stream()
    return bytes(found) if isinstance(found, bytes | bytearray) else found.read()


def open_store(store: Any = None) -> ArtifactStore:
    """Return an ``ArtifactStore`` for a URL, a path, an open store, or the default (None)."""
    if isinstance(store, ArtifactStore):
        return store
    check_location(store)
    return ArtifactStore(store)
