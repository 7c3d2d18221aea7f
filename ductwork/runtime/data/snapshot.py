"""Snapshots: a registered version's files copied into the content-addressed store.

``register(name, snapshot=True)`` copies each file of the version into the
artifact store's ``objects/`` through its ordinary ``put``, as a ``bytes`` value:
that serializer stores the bytes themselves, so the object *is* the file, named
by the BLAKE3 digest of its bytes. That digest is also a local file's identity in
the dataset's fingerprint, so a file whose object the store already has is not
read again, and the same bytes under two names or in two versions are stored
once. The version records ``{relative name: digest}`` (``snapshot``), and gc
keeps every object a version names (``records.gc``): no run refers to them and
the bytes may exist nowhere else.

Reading a snapshot version never looks at the files it was registered from: it
is keyed by the fingerprint it recorded, and each object is fetched into the
download cache (``reading.cache_dir``) under the file's relative name -- a step
sees ``a.txt``, and a table's extension still names its format -- and its digest
is checked before the file is used, so a damaged object is an error naming the
version and file, never other bytes. A remote store's objects in ``mode="mount"``
stream through fsspec like any mounted file.

A file is read whole into memory to be stored (the store's ``put`` takes a
value); a version's files are copied one at a time.
"""

from __future__ import annotations

import os
import posixpath
from pathlib import Path

from ductwork.runtime.data.datastore import redact_url
from ductwork.runtime.data.errors import DatasetError
from ductwork.runtime.data.reading import MountedFile, cache_dir, fetch, read_table

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["materialize", "take"]

_BLAKE3 = "blake3:"


def take(artifacts: Any, dataset: Any, scanned: tuple[Any, ...]) -> dict[str, str]:
    """Copy the files of a just-scanned dataset into ``artifacts``; return name -> digest.

    ``scanned`` is ``dataset._scan()``: the listing the version's fingerprint was made of.
    """
    fs, local, base, _, entries = scanned
    held = dict(dataset.snapshot[1]) if dataset.snapshot is not None else {}
    source = _open(dataset.snapshot[0]) if held else None
    join = os.path.join if local else posixpath.join
    digests = {}
    for rel, size, identity in entries:
        known = held.get(rel) or (identity[len(_BLAKE3):] if identity.startswith(_BLAKE3)
                                  else None)
        if known is not None and artifacts.has(known):
            digests[rel] = known  # already stored: nothing to copy
            continue
        path = source.object_path(known) if source is not None else join(base, *rel.split("/"))
        data = (source.fs if source is not None else fs).cat_file(path)
        ref = artifacts.put(data)
        if len(data) != size or (known is not None and ref.digest != known):
            raise DatasetError(
                f"Dataset {dataset.describe()}: {rel} changed while it was being registered "
                f"({len(data)} bytes, listed as {size}); register it again once the files "
                "are complete."
            )
        digests[rel] = ref.digest
    return digests


def _open(url: str) -> Any:
    from ductwork.runtime.store.artifacts import open_store

    return open_store(url)


def _label(dataset: Any) -> str:
    return f"Dataset {dataset.name!r} version {dataset.version}"


def materialize(dataset: Any, context: Any) -> Any:
    """What a step taking the snapshot version ``dataset`` receives: paths, mounted files,
    or a DataFrame, read from the objects its version recorded."""
    url, objects = dataset.snapshot
    fingerprint, entries = dataset.pinned
    store = _open(url)
    digests = dict(objects)
    cache = cache_dir(context, fingerprint)
    got: list[Any] = []
    for rel, size, _ in entries:
        digest = digests[rel]
        path = store.object_path(digest)
        if not store.has(digest):
            raise DatasetError(
                f"{_label(dataset)}: the stored copy of {rel} (object {digest} in the store "
                f"{redact_url(store.url)}) is missing; it was deleted outside ductwork (gc "
                "keeps the objects of dataset versions). That version cannot be read; if you "
                f"still have the files, register them again (a new version of "
                f"{dataset.name!r})."
            )
        if dataset.mode == "mount" and dataset.kind == "files" and not store.is_local:
            got.append(MountedFile(store.fs, path, rel, size, cache))
            continue
        dest = cache / rel
        fresh = not (dest.is_file() and dest.stat().st_size == size)
        local = fetch(store.fs, path, dest, size)
        if fresh:
            _verify(dataset, store, rel, digest, local)
        got.append(local)
    if dataset.kind == "files":
        return got
    return read_table(got, dataset.read_options, repr(dataset))


def _verify(dataset: Any, store: Any, rel: str, digest: str, local: Path) -> None:
    """Check a fetched object's bytes against its digest; a damaged one is an error."""
    from ductwork.runtime.keys.hashing import new_hasher

    hasher = new_hasher()
    with open(local, "rb") as f:
        while chunk := f.read(1 << 20):
            hasher.update(chunk)
    if hasher.hexdigest() == digest:
        return
    local.unlink()
    raise DatasetError(
        f"{_label(dataset)}: the stored copy of {rel} (object {digest} in the store "
        f"{redact_url(store.url)}) is corrupt: its bytes hash to {hasher.hexdigest()}. The "
        "object is kept for inspection and nothing was read from it. If you still have the "
        f"files, register them again (a new version of {dataset.name!r})."
    )
