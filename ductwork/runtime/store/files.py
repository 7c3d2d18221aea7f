"""Where an artifact store lives, and the few file operations it is built from.

A store is opened on a local directory, an ``az://`` URL (through the Azure SDK,
in ``blobs``) or any other fsspec URL; its files are reached through one
I/O object (``_io``) for remote stores and plain ``os`` calls for local ones.
``StoreFiles`` holds that choice and the operations the content-addressed
``ArtifactStore`` (in ``store``) builds on: read a file whole, write a local
file atomically (under a ``tmp/`` name on the same filesystem, then renamed
into place), walk the two-hex-digit prefix folders, remove a file, and clean up
crash leftovers in ``tmp/``. It knows nothing of objects, digests or cache keys.
A write that finds its disk full raises ``StoreFull`` naming that disk (the
store's, or the local temp folder a remote store spools to) and what to do.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import posixpath
import time
from collections.abc import Iterator

from ductwork.dsl.core import DuctworkError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class StoreFull(DuctworkError):
    """The disk a write needed is full (ENOSPC, EDQUOT); the message says which and what to do."""


_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})


def disk_full(exc: OSError, where: str, remedy: str) -> StoreFull | None:
    """The ``StoreFull`` naming ``where`` that ``exc`` means, or None if it is another error."""
    if exc.errno not in _FULL:
        return None
    reason = exc.strerror or os.strerror(exc.errno)
    return StoreFull(f"the disk holding {where} is full ({reason}). {remedy}")


@contextlib.contextmanager
def full_disk_named(where: str, remedy: str) -> Iterator[None]:
    """Turn a full disk inside the block into ``StoreFull`` naming ``where``."""
    try:
        yield
    except OSError as exc:
        full = disk_full(exc, where, remedy)
        if full is None:
            raise
        raise full from exc


def _replace(src: str, dest: str) -> None:
    """Rename into place, making the two-hex-digit prefix folder only when it is missing."""
    try:
        os.replace(src, dest)
    except FileNotFoundError:
        folder = os.path.dirname(dest)
        try:
            os.mkdir(folder)  # the prefix folder, one level: a cold store makes hundreds
        except FileExistsError:
            pass
        except FileNotFoundError:
            os.makedirs(folder, exist_ok=True)
        os.replace(src, dest)


_CREATE = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC
_SMALL_READ = 1 << 16  # a key entry (a few hundred bytes, inline values up to ~1.4 KiB) fits


def _create(path: str) -> int:
    """Open ``path`` for writing as a file descriptor, making its folder when missing."""
    try:
        return os.open(path, _CREATE, 0o666)
    except FileNotFoundError:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        return os.open(path, _CREATE, 0o666)


class _TmpNames:
    """Unique temp-file names: a random per-process prefix and a counter.

    Cheaper than a uuid4 per file (a cold store makes two temp files per output), and
    as unique: the prefix is drawn again in a forked child, so parent and child never
    share one, and it is random, so two machines sharing a store never do either.
    """

    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._prefix = os.urandom(8).hex()
        self._counter = itertools.count()

    def next(self) -> str:
        """Return a name no other writer of any store uses."""
        return f"{self._prefix}-{next(self._counter)}"


_TMP_NAMES = _TmpNames()


class StoreFiles:
    """The files under a store's root, on a local path, ``az://`` or another fsspec URL."""

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
            from ductwork.runtime.store.blobs import open_az

            self._local = False
            self._root, self._url, self._azure = open_az(url, storage_options)
            self._options = self._azure.options  # a SAS from the URL, for workers
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
        self._tmp_dir = os.path.join(self._root, "tmp", "") if self._local else ""  # + a name
        # What _join puts before relative parts: the root and one separator (none after
        # an empty root or "/"), as os.path.join / posixpath.join would.
        self._prefix = self._root if self._root.endswith("/") or not self._root \
            else self._root + "/"

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
        # Parts are the store's own relative names (never absolute, never empty): plain
        # concatenation is what join gives them, at a tenth of its cost on every lookup.
        return self._prefix + "/".join(parts)

    def close(self) -> None:
        """Release network connections (an ``az://`` store's); local stores hold none."""
        if self._azure is not None:
            self._azure.close()

    def _full_here(self) -> contextlib.AbstractContextManager[None]:
        """Name this store in a ``StoreFull`` raised by a write inside the block."""
        return full_disk_named(*self._full_words())

    def _full_words(self) -> tuple[str, str]:
        return (f"the artifact store {self._url}",
                "Free space there or point the store elsewhere (store=, DUCTWORK_STORE).")

    def _raise_if_full(self, exc: OSError) -> None:
        """Raise ``StoreFull`` naming this store if ``exc`` is a full disk (a write's error
        seen in an ``except``: no context manager entered per write on the hot path)."""
        full = disk_full(exc, *self._full_words())
        if full is not None:
            raise full from exc

    def _spooling(self) -> contextlib.AbstractContextManager[None]:
        """Name the local temp folder a remote store spools large values to, when it fills."""
        if self._local or self._azure is not None:  # local: the store itself; azure: memory
            return contextlib.nullcontext()
        import tempfile  # only remote stores spool locally

        return full_disk_named(
            f"the local temporary folder {tempfile.gettempdir()} (values bound for "
            f"{self._url} are spooled there)", "Free space there or set TMPDIR elsewhere.")

    def _tmp_name(self) -> str:
        # The tmp folder is made by whoever opens the name (hashio.open_new, _create).
        return self._tmp_dir + _TMP_NAMES.next()  # os.path.join costs more than the name

    def _cat(self, path: str) -> bytes:
        if self._local:
            with open(path, "rb") as f:
                return f.read()
        return self._io.cat_file(path)

    def _cat_small(self, path: str) -> bytes:
        """Read a small file whole (a key entry) in the fewest system calls."""
        if not self._local:
            return self._io.cat_file(path)
        # open + read + close: a buffered open() adds an fstat, an ioctl and an lseek, and
        # a warm step reads one entry. A regular file's read comes back short only at its
        # end, so a short first read needs no second one to see EOF (and an entry cut short
        # anyway would not parse: a miss, never a wrong hit).
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            chunk = os.read(fd, _SMALL_READ)
            if len(chunk) < _SMALL_READ:
                return chunk
            chunks = [chunk]
            while chunk := os.read(fd, _SMALL_READ):
                chunks.append(chunk)
        finally:
            os.close(fd)
        return b"".join(chunks)

    def _write_atomic(self, dest: str, data: bytes) -> None:
        # Written beside the store under a temp name, then renamed: readers see all or none.
        # Unbuffered: open + write + close + rename, without open()'s fstat, ioctl and lseek
        # (a cold step writes its entry this way).
        tmp = self._tmp_name()
        try:
            fd = _create(tmp)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
            finally:
                os.close(fd)
            _replace(tmp, dest)
        except BaseException:  # only a failed write leaves its temp file: a rename moved it
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

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


STORE_FORMS = (
    "a local path (default ./.ductwork, or $DUCTWORK_STORE), memory://, az://container/prefix, "
    "or another fsspec URL"
)


def check_location(store: Any) -> None:
    """Refuse a store that is no path or URL, is blank, or whose local path runs through a file.

    Raises ``RunOptionError`` naming the value (or ``DUCTWORK_STORE``) before anything
    is created, so a typo never becomes a store in the current directory and a file
    in the way is never touched.
    """
    from ductwork.dsl.core import RunOptionError

    given = f"store={store!r}"
    if store is None:
        store = os.environ.get("DUCTWORK_STORE") or None
        if store is None:
            return  # ./.ductwork
        given = f"DUCTWORK_STORE={store!r}"
    if isinstance(store, os.PathLike):
        store = os.fspath(store)
    if not isinstance(store, str):
        raise RunOptionError(
            f"{given} is not a store location: give {STORE_FORMS}, as a str or a pathlib.Path."
        )
    protocol, _, rest = store.partition("://") if "://" in store else ("", "", store)
    if protocol not in ("", "file", "local"):
        return
    if not rest.strip():
        raise RunOptionError(
            f"{given} names no location (it would be the current directory): give "
            f"{STORE_FORMS}."
        )
    # The nearest existing part of the path must be a directory: the store is made below it.
    probe = os.path.abspath(os.path.expanduser(rest))
    while not os.path.exists(probe) and os.path.dirname(probe) != probe:
        probe = os.path.dirname(probe)
    if not os.path.isdir(probe):
        raise RunOptionError(
            f"{given}: {probe} is a file, not a directory. A local store is a directory (made "
            f"if missing); point the store at a directory or a new path. A store may be "
            f"{STORE_FORMS}."
        )
