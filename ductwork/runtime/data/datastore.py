"""Datastores: named places for data files, on a local path or any fsspec URL.

A ``Datastore`` is a root directory inside an fsspec filesystem, with
``upload_files``, ``upload_dir``, ``download`` and ``list``. Three ways to get one:

- ``Datastore(url, **storage_options)`` -- any fsspec URL or local path;
- ``datastore("name")`` -- ``[tool.ductwork.datastores.<name>]`` in pyproject.toml
  or ``ductwork.toml``: ``url`` plus storage options (``${VAR}`` read from the
  environment);
- ``datastore()`` -- the run store's own datastore, ``<store>/datastore/``, a
  prefix of its own beside ``objects/`` and ``keys/`` so the two never mix.
  Inside a running step it is the store of that run (``run_store`` is set by the
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
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import re
import shutil
import uuid
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from ductwork.dsl.core import DuctworkError
from ductwork.runtime.store.secrets import is_secret, public_options, redact_url

# ``is_secret`` and ``redact_url`` are used here and re-exported for the engine, which
# imports them from this module.
__all__ = ["Datastore", "DatastoreError", "datastore", "is_secret", "redact_url", "run_store"]

DATASTORE_PREFIX = "datastore"
TMP_MARK = ".dwtmp-"  # in-flight uploads; listings skip them
_MAGIC = re.compile(r"[*?\[]")
_UNREACHABLE = object()  # a worker whose run store lives in another process's memory
_RUN_STORE: ContextVar[Any] = ContextVar("ductwork_run_store", default=None)


class DatastoreError(DuctworkError):
    """A datastore operation cannot be done as asked (a target exists, a source is missing)."""


def has_magic(path: str) -> bool:
    """Whether ``path`` is a glob pattern."""
    return bool(_MAGIC.search(path))


def glob_base(pattern: str) -> str:
    """The folder of a glob pattern above its first wildcard."""
    return _MAGIC.split(pattern, 1)[0].rsplit("/", 1)[0]


@contextlib.contextmanager
def run_store(store: Any) -> Iterator[None]:
    """Make ``datastore()`` mean ``store``'s datastore in the block (None: unreachable)."""
    token = _RUN_STORE.set(_UNREACHABLE if store is None else store)
    try:
        yield
    finally:
        _RUN_STORE.reset(token)


def current_store() -> Any:
    """The run's artifact store here: the one ``run_store`` set, else the default store."""
    store = _RUN_STORE.get()
    if store is _UNREACHABLE:
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

    # -- reading -------------------------------------------------------------------------

    def find(self, path: str = "") -> dict[str, dict[str, Any]]:
        """Every file at, below or matching ``path`` (a file, folder or glob): full path -> info."""
        return find_files(self.fs, self.full_path(path))

    def list(self, prefix: str = "") -> list[str]:
        """The files at or below ``prefix`` (or matching a glob), relative to the root, sorted."""
        return sorted(self.relative(full) for full in self.find(prefix))

    def exists(self, path: str) -> bool:
        """Whether a file or folder exists at ``path``."""
        full = self.full_path(path)
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
            fetch_file(self.fs, full, dest)
        return [dest for _, dest in pairs]

    # -- writing -------------------------------------------------------------------------

    def upload_files(self, files: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
                     target_path: str = "", overwrite: bool = False,
                     relative_root: str | os.PathLike[str] | None = None) -> list[str]:
        """Upload local files into ``target_path`` (by file name, or their path below
        ``relative_root``); return their datastore paths."""
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
        root = Path(src_dir)
        if not root.is_dir():
            raise DatastoreError(f"upload_dir: {root} is not a folder.")
        pairs = [(p, _join(target_path, p.relative_to(root).as_posix()))
                 for p in sorted(root.rglob("*")) if p.is_file()]
        return self._put(pairs, overwrite)

    def _put(self, pairs: list[tuple[Path, str]], overwrite: bool) -> list[str]:
        fs = self.fs
        targets = [(src, self.full_path(rel)) for src, rel in pairs]
        if not overwrite:
            # Checked for every file before any is written: a refused upload changes nothing.
            for _, full in targets:
                fs.invalidate_cache(full)
                if fs.exists(full):
                    raise DatastoreError(
                        f"{self!r} already has {self.relative(full)!r} ({full}); pass "
                        "overwrite=True to replace it."
                    )
        for src, full in targets:
            if self._local:
                _copy_atomic(src, full)
            else:
                fs.makedirs(posixpath.dirname(full), exist_ok=True)
                fs.put_file(str(src), full)  # an object store shows a blob once it is whole
                fs.invalidate_cache(full)
        return [self.relative(full) for _, full in targets]


def _join(target: str, rel: str) -> str:
    target = str(target or "").strip("/")
    return f"{target}/{rel}" if target else rel


def _copy_atomic(src: Path, dest: str) -> None:
    folder, name = os.path.split(dest)
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".{name}{TMP_MARK}{uuid.uuid4().hex}")
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, dest)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def fetch_file(fs: Any, path: str, dest: str | os.PathLike[str]) -> Path:
    """Download ``path`` to ``dest`` through a temporary name, so ``dest`` is whole or absent."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f".{dest.name}{TMP_MARK}{uuid.uuid4().hex}"
    try:
        fs.get_file(path, str(tmp))
        os.replace(tmp, dest)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return dest


def find_files(fs: Any, path: str) -> dict[str, dict[str, Any]]:
    """Files at ``path``, below it if a folder, or matching it if a glob: full path -> info.

    Listings are read afresh (fsspec caches them per filesystem instance, and a
    blob changed by another machine must be seen).
    """
    if has_magic(path):
        static = glob_base(path)
        fs.invalidate_cache(static or None)
        hits = fs.glob(path, detail=True)
    else:
        fs.invalidate_cache(path)
        try:
            info = fs.info(path)
        except FileNotFoundError:
            return {}
        hits = {path: info}
    files: dict[str, dict[str, Any]] = {}
    for name, info in hits.items():
        if info.get("type") == "directory":
            files.update(fs.find(name, detail=True))
        else:
            files[name] = info
    return {
        _strip_protocol(fs, name): info for name, info in files.items()
        if info.get("type") != "directory" and TMP_MARK not in posixpath.basename(name)
    }


def _strip_protocol(fs: Any, name: str) -> str:
    return fs._strip_protocol(name) if "://" in name else name
