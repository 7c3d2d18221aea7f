"""Datasets: files or a table in a datastore, as lazy step inputs keyed by their content.

``Dataset.files(path_or_glob)`` and ``Dataset.tabular(path)`` name data by
where it is -- a path inside a datastore (the run store's own by default) or a
full fsspec URL -- and read nothing when made, so a pipeline body that passes
one to a step only records it. Two hooks do the work, both where the step
runs:

- ``__ductwork_hash__`` (when the step's cache key is computed) lists the files
  and returns their *fingerprint*: per file its relative name, size and
  identity -- the blob's etag where the filesystem has one, else a BLAKE3 hash
  of its bytes (local files: touching a file without changing it reruns
  nothing). Content hashes of local files are memoized by (path, size, mtime,
  inode), so a file is read once until it changes; listings are read afresh
  every time, so a fingerprint is never stale. The dataset's location is not
  part of it (the same bytes elsewhere are the same input), except beside
  etags, which only mean something within their container.
- ``__ductwork_materialize__(context)`` (called by ``execute`` just before the
  step function) turns the dataset into what the step receives: a list of
  local paths, or a pandas DataFrame. Local files are passed as their real
  paths. Remote files are downloaded (``mode="download"``) into
  ``$DUCTWORK_HOME/cache/datasets/<fingerprint>/``, atomically, file by file,
  so a second step or run finds them there; with ``mode="mount"`` the step gets
  ``MountedFile`` objects (``data.reading``) that stream through fsspec on ``open()`` and
  fetch just that file into the same cache on ``os.fspath()``.

The key is computed before the step runs -- often in another process -- so the
files may change in between, and outputs of the new content would be cached
under the old content's key for good. ``__ductwork_hash__`` therefore records
the fingerprint it returned on the dataset (a plain attribute, pickled with it),
and when ``execute`` materializes the inputs of a job that has a key, the
dataset lists the files again and refuses to read content other than what the
key was made of (the engine marks such a job with ``reading.reading_for_key``);
the step fails and says to rerun. Materializing lists afresh rather than reusing
the listing made for the key: reusing it would skip exactly this check, and
could fill the content-addressed download folder with other bytes. A step run
without a key (``cache=False``) or called as a plain function reads what is
there now, so a fingerprint left on the object by an earlier run never matters.
The check is against the latest key made with this object: one dataset object
given to two steps whose files change between the two keys is checked against
the second key's content.

A dataset holds no filesystem and no secret: a datastore's name, a URL without
its query string, or a ``Datastore`` that pickles without its credentials. It
travels to workers by cloudpickle, and workers open the filesystem themselves.

Versions (``register``, ``get``, ``list``) live in ``data.registry``, reading in
``data.reading``, snapshot versions (``register(snapshot=True)``) in
``data.snapshot``; this module is their public face and the only one that makes a
``Dataset``, so neither imports it.
"""

from __future__ import annotations

import os
import posixpath
from pathlib import Path

from ductwork.runtime import caches
from ductwork.runtime.data import locations, registry
from ductwork.runtime.data import snapshot as snapshots
from ductwork.runtime.data.datastore import Datastore, redact_url
from ductwork.runtime.data.datastore import datastore as open_datastore
from ductwork.runtime.data.errors import DatasetError
from ductwork.runtime.data.files import find_files, glob_base, has_magic
from ductwork.runtime.data.reading import (
    MountedFile,
    cache_dir,
    fetch,
    materializing_for_key,
    read_table,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["Dataset", "DatasetError"]

_MODES = ("download", "mount")
# Content hashes of local files by (path, size, mtime, inode): a file is read once until
# it changes. Bounded generously -- a dataset with more local files than this rehashes
# the excess on every key -- since an entry is a few hundred bytes.
_HASHES = caches.cache("data.local_file_hashes", maxsize=200_000)


class Dataset:
    """Files or a table in a datastore, read when a step that takes it runs."""

    def __init__(self, kind: str, path: str, datastore: str | Datastore | None = None,
                 mode: str = "download", read_options: dict[str, Any] | None = None, *,
                 name: str | None = None, version: int | None = None,
                 pinned: tuple[str, tuple[tuple[str, int, str], ...]] | None = None,
                 snapshot: tuple[str, tuple[tuple[str, str], ...]] | None = None) -> None:
        """Prefer ``Dataset.files``, ``Dataset.tabular`` and ``Dataset.get``."""
        if not isinstance(path, str | os.PathLike) or not os.fspath(path):
            raise DatasetError(f"Dataset.{kind}() needs a path, glob or URL, got {path!r}.")
        if mode not in _MODES:
            raise DatasetError(f"Dataset mode must be 'download' or 'mount', got {mode!r}.")
        if datastore is not None and not isinstance(datastore, str | Datastore):
            raise DatasetError(
                f"datastore= takes a configured datastore's name or a dw.Datastore, got "
                f"{type(datastore).__name__}."
            )
        self.kind = kind
        self.path = os.fspath(path)
        self.datastore = datastore
        self.mode = mode
        self.read_options = dict(read_options or {})
        self.name = name
        self.version = version
        self.pinned = pinned
        # (the store's URL, ((relative name, object digest), ...)): a snapshot version.
        self.snapshot = snapshot
        self._keyed: str | None = None  # the content of the latest key: see the module doc
        if kind == "tabular":
            from ductwork.runtime.keys.hashing import UnhashableValue, hash_value

            try:
                hash_value(self.read_options)
            except UnhashableValue as exc:
                raise DatasetError(
                    f"Dataset.tabular({self.path!r}): read option {exc.path or ''} has no "
                    "stable hash, and read options are part of the consuming step's cache "
                    "key. Pass plain values (str, numbers, lists, dicts), or read the files "
                    "with Dataset.files() and parse them in the step."
                ) from None

    @classmethod
    def files(cls, path_or_glob: str | os.PathLike[str], datastore: str | Datastore | None = None,
              mode: str = "download") -> Dataset:
        """Files at a path, below a folder or matching a glob; a step gets local paths."""
        return cls("files", path_or_glob, datastore, mode)

    @classmethod
    def tabular(cls, path: str | os.PathLike[str], datastore: str | Datastore | None = None,
                **read_options: Any) -> Dataset:
        """A csv/tsv/parquet/json(l) file (or a glob of them, concatenated); a step gets a
        DataFrame. ``read_options`` go to pandas; ``format="csv"`` overrides the extension."""
        return cls("tabular", path, datastore, "download", read_options)

    @classmethod
    def get(cls, name: str, version: int | None = None, store: Any = None) -> Dataset:
        """The registered dataset ``name``: its latest version, or ``version``."""
        return cls(**registry.get(name, version, store))

    def register(self, name: str, description: str = "", store: Any = None,
                 snapshot: bool = False) -> Dataset:
        """Record this dataset's content as a new version of ``name`` (or return the latest
        version if its content is unchanged); the registry lives in the artifact store.

        With ``snapshot=True`` the files' bytes are copied into the store's content-addressed
        objects (each only if not already there), so the version reads the same bytes
        forever, even once its files are overwritten or deleted. Without it a version
        whose files changed since cannot be read (``DatasetError`` naming what changed).
        """
        return Dataset(**registry.register(self, name, description, store, snapshot))

    @classmethod
    def versions(cls, name: str, store: Any = None) -> list[dict[str, Any]]:
        """The versions of dataset ``name``, newest first, as ``Dataset.list()`` shows them."""
        return registry.summaries(name, store)

    # Last of the class's signatures that say ``list[...]``: below it, ``list`` in the class
    # body would mean this method.
    @classmethod
    def list(cls, store: Any = None) -> list[dict[str, Any]]:
        """Every registered dataset, by name: ``{"name", "versions"}``, versions newest first,
        each with ``version``, ``created``, ``description``, ``kind``, ``path``,
        ``datastore``, ``files``, ``bytes``, ``fingerprint`` and ``snapshot``."""
        return registry.list_datasets(store)

    def as_mount(self) -> Dataset:
        """This dataset, streamed to the step through fsspec instead of downloaded."""
        return Dataset(**{**self._fields(), "mode": "mount"})

    def relocated(self, place: locations.Place) -> Dataset:
        """This dataset read where ``place(folder, what)`` puts each local folder it reads
        (a container's mounts); it keys and checks the same content."""
        moved = Dataset(**locations.relocate(self, place))
        moved._keyed = self._keyed  # the content its key was made of, checked where it runs
        return moved

    def _fields(self) -> dict[str, Any]:
        return {"kind": self.kind, "path": self.path, "datastore": self.datastore,
                "mode": self.mode, "read_options": self.read_options, "name": self.name,
                "version": self.version, "pinned": self.pinned, "snapshot": self.snapshot}

    def __repr__(self) -> str:
        if self.name is not None:
            return f"Dataset.get({self.name!r}, version={self.version})"
        where = ""
        if isinstance(self.datastore, str):
            where = f", datastore={self.datastore!r}"
        elif self.datastore is not None:
            where = f", datastore={self.datastore!r}"
        mode = f", mode={self.mode!r}" if self.mode != "download" else ""
        options = "".join(f", {k}={v!r}" for k, v in self.read_options.items())
        return f"Dataset.{self.kind}({redact_url(self.path)!r}{where}{mode}{options})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Dataset) and self._identity() == other._identity()

    def __hash__(self) -> int:
        return hash(repr(self))

    def _identity(self) -> tuple[Any, ...]:
        return (self.kind, self.path, self.datastore, self.mode, self.read_options,
                self.name, self.version, self.pinned, self.snapshot)

    # -- where the files are --------------------------------------------------------------

    @property
    def external(self) -> bool:
        """Whether the path is a full URL (or, with no datastore, an absolute local path)."""
        return "://" in self.path or (self.datastore is None and os.path.isabs(self.path))

    def describe(self) -> str:
        """Where this dataset reads from, for messages (no secrets)."""
        if self.external:
            return repr(redact_url(self.path))
        store = self.datastore if isinstance(self.datastore, Datastore) else None
        label = (f"datastore '{self.datastore}'" if isinstance(self.datastore, str)
                 else repr(store) if store else "the run store's datastore")
        return f"{self.path!r} in {label}"

    def _open(self) -> tuple[Any, str, str, bool, Datastore | None]:
        """Return ``(filesystem, full path or glob, base folder, is local, datastore)``."""
        store = None
        if self.external:
            import fsspec.core

            protocol = self.path.split("://", 1)[0] if "://" in self.path else "file"
            fs, full = fsspec.core.url_to_fs(self.path)
            local = protocol in ("file", "local")
        else:
            store = (self.datastore if isinstance(self.datastore, Datastore)
                     else open_datastore(self.datastore))
            fs, full, local = store.fs, store.full_path(self.path), store.is_local
        base = glob_base(full) if has_magic(full) else full
        return fs, full, base, local, store

    def _scan(self) -> tuple[Any, bool, str, str, tuple[tuple[str, int, str], ...]]:
        """List the files now: ``(fs, is local, base folder, fingerprint, entries)``, where an
        entry is ``(name relative to the base, size, identity)``. A snapshot version lists
        nothing: its content is what it recorded."""
        if self.snapshot is not None and self.pinned is not None:
            return None, False, "", self.pinned[0], self.pinned[1]
        fs, full, base, local, store = self._open()
        try:
            # Through the datastore: its errors name it, and a missing container is said.
            files = store.find(self.path) if store is not None else find_files(fs, full)
        except Exception as exc:
            raise DatasetError(
                f"Dataset {self.describe()} could not be listed: {type(exc).__name__}: {exc}. "
                "Check the path and that this machine can reach and read the datastore."
            ) from None
        if not files:
            what = "glob" if has_magic(full) else "path"
            raise DatasetError(
                f"Dataset {self.describe()}: the {what} {redact_url(full)!r} matches no file. "
                "Check the path (Datastore.list() shows what a datastore has), or upload "
                "the data first."
            )
        if list(files) == [full]:
            base = (os.path if local else posixpath).dirname(full)  # one file: by its name
        entries, etags = [], False
        for path, info in sorted(files.items()):
            etag = info.get("etag") or info.get("ETag")
            if etag:
                identity, etags = f"etag:{str(etag).strip(chr(34))}", True
            else:
                identity = "blake3:" + _content_hash(fs, path, info, local)
            rel = path[len(base):].replace("\\", "/").lstrip("/")
            entries.append((rel, int(info.get("size") or 0), identity))
        from ductwork.runtime.keys.hashing import hash_tagged

        # An etag identifies bytes only within its container, so its location counts too.
        where = [_protocol(fs), getattr(fs, "account_name", None), base] if etags else None
        fingerprint = hash_tagged("DatasetContent", where, entries)
        if self.pinned is not None and fingerprint != self.pinned[0]:
            raise DatasetError(_changed_message(self, self.pinned[1], tuple(entries)))
        return fs, local, base, fingerprint, tuple(entries)

    def manifest(self) -> tuple[str, tuple[tuple[str, int, str], ...]]:
        """List the files now: ``(fingerprint, ((relative name, size, identity), ...))``."""
        return self._scan()[3:]

    def fingerprint(self) -> str:
        """The content fingerprint of the files this dataset names now."""
        return self._scan()[3]

    # -- the two hooks --------------------------------------------------------------------

    def __ductwork_hash__(self) -> tuple[Any, ...]:
        fingerprint = self.fingerprint()
        # What the key is made of, for __ductwork_materialize__ to check; it is pickled
        # with the dataset, so a worker in another process checks it too.
        self._keyed = fingerprint
        # The mode is left out: how the bytes arrive does not change what they are.
        return ("ductwork.Dataset/1", self.kind, fingerprint, self.read_options)

    def __ductwork_materialize__(self, context: Any) -> Any:
        if self.snapshot is not None:
            return snapshots.materialize(self, context)
        fs, local, base, fingerprint, entries = self._scan()
        keyed = getattr(self, "_keyed", None)
        if keyed is not None and fingerprint != keyed and materializing_for_key():
            raise DatasetError(
                f"Dataset {self.describe()} changed while the run was starting: its content "
                f"when the step's cache key was computed ({keyed[:12]}) is not what is there "
                f"now ({fingerprint[:12]}), and the step's outputs would be cached under the "
                "key of content it did not read. Rerun the pipeline (it keys the step by the "
                "new content); if the files are still being written, wait until they are "
                "complete."
            )
        join = os.path.join if local else posixpath.join
        sources = [(join(base, *rel.split("/")), rel, size) for rel, size, _ in entries]
        if local:
            paths: list[Any] = [Path(src) for src, _, _ in sources]
        else:
            cache = cache_dir(context, fingerprint)
            if self.kind == "files" and self.mode == "mount":
                return [MountedFile(fs, src, rel, size, cache) for src, rel, size in sources]
            paths = [fetch(fs, src, cache / rel, size) for src, rel, size in sources]
        if self.kind == "files":
            return paths
        return read_table(paths, self.read_options, self.describe())

    def materialize(self) -> Any:
        """What a step taking this dataset receives, here and now (for notebooks and tests)."""
        from ductwork.runtime.context import context

        return self.__ductwork_materialize__(context())


def _protocol(fs: Any) -> str:
    protocol = fs.protocol
    return protocol if isinstance(protocol, str) else protocol[0]


def _content_hash(fs: Any, path: str, info: dict[str, Any], local: bool) -> str:
    from ductwork.runtime.keys.hashing import new_hasher

    memo = None
    if local:
        stat = os.stat(path)
        memo = (path, stat.st_size, stat.st_mtime_ns, stat.st_ino)
        known = _HASHES.get(memo)
        if known is not None:
            return known
    hasher = new_hasher()
    with (open(path, "rb") if local else fs.open(path, "rb")) as f:
        while chunk := f.read(1 << 20):
            hasher.update(chunk)
    digest = hasher.hexdigest()
    if memo is not None:
        _HASHES.put(memo, digest)
    return digest


def _changed_message(dataset: Dataset, old: tuple[tuple[str, int, str], ...],
                     new: tuple[tuple[str, int, str], ...]) -> str:
    before, now = {e[0]: e for e in old}, {e[0]: e for e in new}
    changes = [f"changed {n}" for n in sorted(before.keys() & now.keys()) if before[n] != now[n]]
    changes += [f"removed {n}" for n in sorted(before.keys() - now.keys())]
    changes += [f"added {n}" for n in sorted(now.keys() - before.keys())]
    shown = ", ".join(changes[:5]) + (f" and {len(changes) - 5} more" if len(changes) > 5 else "")
    return (
        f"Dataset {dataset.name!r} version {dataset.version} ({dataset!r}) is pinned to the "
        f"content it had when registered, but its files ({dataset.describe()}) have changed "
        f"since: {shown}. That version was registered without a snapshot, so ductwork holds "
        "no copy of its bytes and it cannot be read any more. Restore the files, or register "
        f"the current content as a new version (.register({dataset.name!r})) and read the "
        f"latest with Dataset.get({dataset.name!r}); register with snapshot=True to keep a "
        "version readable whatever happens to its files."
    )
