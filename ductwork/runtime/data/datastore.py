"""Datastores: named places for data files, on a local path or any fsspec URL.

A ``Datastore`` is a root directory inside an fsspec filesystem, with
``upload_files``, ``upload_dir``, ``download`` and ``list``. Three ways to get one:

- ``Datastore(url, **storage_options)`` -- any fsspec URL or local path;
- ``datastore("name")`` -- ``[tool.ductwork.datastores.<name>]`` in pyproject.toml
  or ``ductwork.toml``: ``url`` plus storage options (``${VAR}`` read from the
  environment);
- ``datastore()`` -- the run store's own datastore, ``<store>/datastore/``, a
  prefix of its own beside ``objects/`` and ``keys/`` so the two never mix.
  Inside a running step it is the store of that run (``context.run_store`` is set by the
  code that runs steps); outside a run, ``$DUCTWORK_STORE`` or ``./.ductwork``.

Secrets stay in the process that was given them: ``repr`` shows the URL without
its password or query string, and a pickled datastore (sent to a worker inside a
dataset) carries only its name, URL and the storage options that are not
secrets, at any depth (``secrets.public_options``: ``client_kwargs={"credential":
...}`` and ``headers={"Authorization": ...}`` lose those entries) -- the worker
authenticates from its own environment or configuration.

Writes are atomic: a local file is written under a temporary name in its
directory and renamed; an object store makes a blob visible once its upload
completes.

An ``az://`` (or ``abfs://``) datastore creates its container on its first
write, as the artifact store does; a read from a container that does not exist
is an error naming the datastore and its URL, not an empty listing. Errors the
filesystem raises (adlfs, fsspec, the network) come out as ``DatastoreAccessError``
naming the datastore, its URL and the path, with the original chained and no
secret in the message.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
from collections.abc import Iterable, Iterator

from ductwork.dsl.core import DuctworkError
from ductwork.runtime.context import UNREACHABLE, current_run_store, run_store
from ductwork.runtime.data.errors import DatastoreAccessError, DatastoreError
from ductwork.runtime.data.files import copy_atomic, fetch_file, find_files
from ductwork.runtime.store.secrets import is_secret, public_options, redact, redact_url

TYPE_CHECKING = False
if TYPE_CHECKING:  # pathlib is imported where a Path is made: a run needs none
    from pathlib import Path
    from typing import Any

# ``is_secret`` and ``redact_url`` are used here and re-exported for the engine, which
# imports them from this module; the errors live in ``errors`` and are re-exported too.
# The file operations beneath a datastore (listing, fetching, atomic copies) are in
# ``files``. ``run_store`` lives in ``context`` (a run sets it without importing this
# module) and is re-exported here.
__all__ = ["Datastore", "DatastoreAccessError", "DatastoreError", "datastore", "is_secret",
           "redact_url", "run_store"]

DATASTORE_PREFIX = "datastore"
_CONTAINERS = ("az", "abfs", "abfss")  # filesystems whose first path part is a container


def current_store() -> Any:
    """The run's artifact store here: the one ``run_store`` set, else the default store."""
    store = current_run_store()
    if store is UNREACHABLE:
        raise DatastoreError(
            "The run's store lives in the memory of the process that started the run "
            "(memory://), which this worker cannot reach, so it has no default datastore. "
            "Run with a store on disk or in the cloud (store='./.ductwork', 'az://...'), or "
            "name a datastore: dw.datastore('name') or a full URL."
        )
    if store is None:
        from ductwork.runtime.store.artifacts import ArtifactStore

        store = ArtifactStore(None)
    return store


def datastore(name: str | None = None) -> Datastore:
    """Open datastore ``name`` from the configuration, or the run store's own datastore."""
    if name is None:
        store = current_store()
        if store.is_local:
            root = url = os.path.join(store.root, DATASTORE_PREFIX)
        else:
            root = posixpath.join(store.root, DATASTORE_PREFIX)
            base = store.url if store.url.endswith("://") else store.url.rstrip("/") + "/"
            url = base + DATASTORE_PREFIX
        return Datastore._over(store.fs, root, url, local=store.is_local)
    from ductwork.runtime.config import datastore_settings

    if not isinstance(name, str) or not name:
        raise DatastoreError(f"dw.datastore() takes a configured datastore's name, got {name!r}.")
    settings = datastore_settings(name)
    url = settings.pop("url")
    return Datastore(url, name=name, **settings)


def _restore(name: str | None, url: str, options: dict[str, Any]) -> Datastore:
    if name is not None:
        from ductwork.runtime.config import ConfigError

        with contextlib.suppress(ConfigError):
            found = datastore(name)
            if found.url == redact_url(url):
                return found  # this machine's configuration, with its secrets
    return Datastore(url, name=name, **options)


class Datastore:
    """A root directory for data files on a local path or an fsspec URL."""

    def __init__(self, url: str | os.PathLike[str], *, name: str | None = None,
                 **storage_options: Any) -> None:
        """Open the datastore at ``url``; ``storage_options`` go to the fsspec filesystem."""
        url = os.fspath(url)
        protocol = url.split("://", 1)[0] if "://" in url else ""
        self.name = name
        self._options = storage_options
        self._local = protocol in ("", "file", "local")
        self._fs: Any = None
        self._container_made = False
        self._blob = protocol in _CONTAINERS
        if self._local:
            path = url.split("://", 1)[1] if protocol else url
            self._root = os.path.abspath(os.path.expanduser(path))
            self._url = self._root
        else:
            self._root = None
            self._url = url.rstrip("/")

    @classmethod
    def _over(cls, fs: Any, root: str, url: str, local: bool) -> Datastore:
        """A datastore on a filesystem already opened (the run store's)."""
        made = cls(root if local else url)
        made._fs, made._root = fs, root
        return made

    def __repr__(self) -> str:
        named = f", name={self.name!r}" if self.name else ""
        return f"Datastore({self.url!r}{named})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Datastore) and (self.url, self.name) == (other.url, other.name)

    def __hash__(self) -> int:
        return hash((self.url, self.name))

    def __reduce__(self) -> tuple[Any, ...]:
        return (_restore, (self.name, redact_url(self._url), self.public_options))

    @property
    def public_options(self) -> dict[str, Any]:
        """The storage options without credentials at any depth (``client_kwargs``,
        ``headers``...): those never leave this process."""
        return public_options(self._options)

    @property
    def url(self) -> str:
        """Where the datastore is: an absolute path if local, else its URL without secrets."""
        return redact_url(self._url)

    @property
    def is_local(self) -> bool:
        """Whether the datastore is a directory on this machine."""
        return self._local

    @property
    def fs(self) -> Any:
        """The fsspec filesystem holding the datastore."""
        if self._fs is None:
            if self._local:
                from fsspec.implementations.local import LocalFileSystem

                self._fs = LocalFileSystem()
            else:
                import fsspec.core

                self._fs, path = fsspec.core.url_to_fs(self._url, **self._options)
                self._root = path.rstrip("/")
        return self._fs

    @property
    def root(self) -> str:
        """The datastore's directory inside its filesystem."""
        if self._root is None:
            self.fs  # noqa: B018 -- opening the filesystem finds the root
        assert self._root is not None
        return self._root

    def full_path(self, path: str = "") -> str:
        """The path inside the filesystem of ``path``, relative to the datastore's root."""
        parts = [p for p in str(path).replace("\\", "/").split("/") if p not in ("", ".")]
        if ".." in parts:
            raise DatastoreError(
                f"{self!r}: path {path!r} climbs out of the datastore with '..'; give a path "
                "relative to its root."
            )
        if not parts:
            return self.root
        return (os.path.join if self._local else posixpath.join)(self.root, *parts)

    def relative(self, full: str) -> str:
        """The path of ``full`` relative to the datastore's root, with '/' separators."""
        root = self.root.rstrip("/\\")
        rel = full[len(root):] if full.startswith(root) else full
        return rel.replace("\\", "/").lstrip("/")

    # -- errors and containers -----------------------------------------------------------

    def _label(self) -> str:
        return f"Datastore {self.name!r} ({self.url})" if self.name else f"Datastore {self.url}"

    @contextlib.contextmanager
    def _access(self, action: str, path: str) -> Iterator[None]:
        """Raise a filesystem's error in the block as ``DatastoreAccessError`` naming this
        datastore, its URL and ``path``; ductwork's own errors pass through."""
        try:
            yield
        except DuctworkError:
            raise
        except Exception as exc:
            secrets = tuple(_strings(self._options))
            raise DatastoreAccessError(
                f"{self._label()}: {action} {path!r} failed: "
                f"{redact(f'{type(exc).__name__}: {exc}', secrets)}. Check the path, that "
                "this machine can reach the datastore, and its credentials (storage options "
                "or the environment)."
            ) from exc

    @property
    def _container(self) -> str | None:
        """The blob container this datastore lives in, or None on other filesystems."""
        return self.root.partition("/")[0] if self._blob else None

    def _check_container(self, path: str) -> None:
        """Raise if this datastore's container does not exist: a read there finds nothing."""
        container = self._container
        if container is None:
            return
        with self._access("checking the container of", path):
            self.fs.invalidate_cache(container)
            there = self.fs.exists(container)
        if not there:
            raise DatastoreAccessError(
                f"{self._label()}: the container {container!r} does not exist, so {path!r} "
                "cannot be read. Check the URL, or upload to the datastore first (its first "
                "upload creates the container)."
            )

    def _make_container(self) -> None:
        """Create this datastore's container if missing, once, as the artifact store does."""
        container = self._container
        if container is None or self._container_made:
            return
        fs = self.fs
        with self._access("creating the container", container):
            fs.invalidate_cache(container)
            if not fs.exists(container):
                try:
                    fs.mkdir(container)
                except ValueError:  # adlfs's wrapping of a concurrent creator's success
                    fs.invalidate_cache(container)
                    if not fs.exists(container):
                        raise
        self._container_made = True

    # -- reading -------------------------------------------------------------------------

    def find(self, path: str = "") -> dict[str, dict[str, Any]]:
        """Every file at, below or matching ``path`` (a file, folder or glob): full path -> info."""
        full = self.full_path(path)
        with self._access("listing", path):
            found = find_files(self.fs, full)
        if not found:
            self._check_container(path)
        return found

    def list(self, prefix: str = "") -> list[str]:
        """The files at or below ``prefix`` (or matching a glob), relative to the root, sorted."""
        return sorted(self.relative(full) for full in self.find(prefix))

    def exists(self, path: str) -> bool:
        """Whether a file or folder exists at ``path``."""
        full = self.full_path(path)
        with self._access("checking", path):
            self.fs.invalidate_cache(full)
            return bool(self.fs.exists(full))

    def download(self, target_path: str | os.PathLike[str], prefix: str = "",
                 overwrite: bool = False) -> list[Path]:
        """Copy the files below ``prefix`` into ``target_path``, keeping their datastore paths."""
        found = self.find(prefix)
        if prefix and not found:
            raise DatastoreError(
                f"{self!r} has no file at or below {prefix!r}; {self!r}.list() shows what it has."
            )
        from pathlib import Path

        target = Path(target_path)
        pairs = [(full, target / self.relative(full)) for full in sorted(found)]
        clash = [str(dest) for _, dest in pairs if dest.exists()]
        if clash and not overwrite:
            raise DatastoreError(
                f"Datastore download into {target}: {clash[0]} already exists"
                f"{f' (and {len(clash) - 1} more)' if len(clash) > 1 else ''}; pass "
                "overwrite=True to replace local files."
            )
        for full, dest in pairs:
            with self._access("downloading", self.relative(full)):
                fetch_file(self.fs, full, dest)
        return [dest for _, dest in pairs]

    # -- writing -------------------------------------------------------------------------

    def upload_files(self, files: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
                     target_path: str = "", overwrite: bool = False,
                     relative_root: str | os.PathLike[str] | None = None) -> list[str]:
        """Upload local files into ``target_path`` (by file name, or their path below
        ``relative_root``); return their datastore paths."""
        from pathlib import Path

        sources = [Path(files)] if isinstance(files, str | os.PathLike) else [
            Path(f) for f in files]
        base = Path(relative_root).resolve() if relative_root is not None else None
        pairs = []
        for src in sources:
            if not src.is_file():
                raise DatastoreError(
                    f"upload_files: {src} is not a file (missing, or a folder: use upload_dir)."
                )
            if base is None:
                rel = src.name
            else:
                try:
                    rel = src.resolve().relative_to(base).as_posix()
                except ValueError:
                    raise DatastoreError(
                        f"upload_files: {src} is not inside relative_root={relative_root!s}."
                    ) from None
            pairs.append((src, _join(target_path, rel)))
        return self._put(pairs, overwrite)

    def upload_dir(self, src_dir: str | os.PathLike[str], target_path: str = "",
                   overwrite: bool = False) -> list[str]:
        """Upload every file below ``src_dir`` into ``target_path``, keeping relative paths."""
        from pathlib import Path

        root = Path(src_dir)
        if not root.is_dir():
            raise DatastoreError(f"upload_dir: {root} is not a folder.")
        pairs = [(p, _join(target_path, p.relative_to(root).as_posix()))
                 for p in sorted(root.rglob("*")) if p.is_file()]
        return self._put(pairs, overwrite)

    def _put(self, pairs: list[tuple[Path, str]], overwrite: bool) -> list[str]:
        targets = [(src, self.full_path(rel)) for src, rel in pairs]
        self._make_container()
        fs = self.fs
        if not overwrite:
            # Checked for every file before any is written: a refused upload changes nothing.
            for _, full in targets:
                with self._access("checking", self.relative(full)):
                    fs.invalidate_cache(full)
                    there = fs.exists(full)
                if there:
                    raise DatastoreError(
                        f"{self!r} already has {self.relative(full)!r} ({full}); pass "
                        "overwrite=True to replace it."
                    )
        for src, full in targets:
            with self._access("uploading", self.relative(full)):
                if self._local:
                    copy_atomic(src, full)
                else:
                    fs.makedirs(posixpath.dirname(full), exist_ok=True)
                    fs.put_file(str(src), full)  # an object store shows a blob once it is whole
                    fs.invalidate_cache(full)
        return [self.relative(full) for _, full in targets]


def _strings(options: Any) -> Iterator[str]:
    """Every string value in storage options, at any depth: what a message must not show."""
    if isinstance(options, dict):
        for value in options.values():
            yield from _strings(value)
    elif isinstance(options, list | tuple):
        for value in options:
            yield from _strings(value)
    elif isinstance(options, str):
        yield options


def _join(target: str, rel: str) -> str:
    target = str(target or "").strip("/")
    return f"{target}/{rel}" if target else rel
