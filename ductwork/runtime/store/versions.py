"""Numbered versions of a named thing, kept as JSON files in the artifact store.

Layout: ``<folder>/<N>.json``, one file per version ``N`` (1, 2, 3, ...), and an
optional ``<folder>/state.json`` for what changes afterwards (a default, a flag).
Registered datasets (``data/registry``) and published pipelines
(``publish/catalog``) are both kept this way, so every machine sharing the store
sees the same versions.

A version is created exclusively -- a local file is linked into place
(``os.link`` fails if the name exists), a blob is uploaded conditionally
(``If-None-Match: *``), a ``memory://`` file is written under a lock -- so two
writers adding a version at once both get one: the loser of a race takes the
next number. Nothing is lost and no number is given twice.

``state.json`` is replaced whole: renamed into place locally, one PUT remotely
(as the store writes its key index), so a reader sees the old or the new state,
never a torn one. ``update_state`` reads, changes and writes it under a lock (a
file lock beside a local store), so two changes on one machine never lose either.
"""

from __future__ import annotations

import contextlib
import json
import os
import posixpath
import re
import threading
import uuid
from collections.abc import Callable

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "create_file", "create_version", "folder", "read_state", "read_versions", "update_state",
    "write_state",
]

_MEMORY_LOCK = threading.Lock()  # one process owns a memory:// store: a lock makes it exclusive
_STATE_LOCK = threading.Lock()
_STATE = "state.json"


#: The name of a versioned thing (a dataset, a published pipeline): one path segment.
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def names(store: Any, kind: str) -> list[str]:
    """The valid names under ``<root>/<kind>/``, sorted ([] when there is none yet)."""
    fs, top = store.fs, folder(store, kind)
    fs.invalidate_cache(top)
    try:
        listed = fs.ls(top, detail=False)
    except FileNotFoundError:
        return []
    found = (str(p).replace("\\", "/").rstrip("/").rpartition("/")[2] for p in listed)
    return sorted(n for n in found if NAME.fullmatch(n))


def folder(store: Any, *parts: str) -> str:
    """Return the path of ``parts`` under the store's root."""
    join = os.path.join if store.is_local else posixpath.join
    return join(store.root, *parts)


def read_versions(store: Any, where: str) -> dict[int, dict[str, Any]]:
    """Every version record in ``where``, by number; unreadable files are skipped."""
    fs = store.fs
    fs.invalidate_cache(where)
    try:
        names = fs.ls(where, detail=False)
    except FileNotFoundError:
        return {}
    found = {}
    for path in names:
        stem = posixpath.basename(str(path).replace("\\", "/"))
        if stem.endswith(".json") and stem[:-5].isdigit():
            found[int(stem[:-5])] = path
    records = {}
    for version, path in found.items():
        with contextlib.suppress(FileNotFoundError, ValueError):
            records[version] = json.loads(fs.cat_file(path))
    return records


def create_version(store: Any, where: str, record: dict[str, Any], start: int,
                   same: Callable[[dict[str, Any]], bool] | None = None) -> dict[str, Any]:
    """Write ``record`` as the first free version from ``start`` on and return it, with its
    ``version`` set.

    When a number is taken by another writer meanwhile and ``same`` says that version is
    the one being written (identical content), that version is returned instead of a new
    one: concurrent writers of one thing agree on one version.
    """
    version = start
    while True:
        record = {**record, "version": version}
        # Keys in the order given: a schema's properties are in the signature's order.
        data = json.dumps(record, default=repr).encode()
        path = (os.path.join if store.is_local else posixpath.join)(where, f"{version}.json")
        if _create(store, path, data):
            return record
        if same is not None:
            with contextlib.suppress(FileNotFoundError, ValueError):
                taken = json.loads(store.fs.cat_file(path))
                if same(taken):
                    return taken
        version += 1  # another writer took this number first


def create_file(store: Any, path: str, data: bytes) -> bool:
    """Write ``path`` whole if it does not exist; return False if it does (another writer
    made it first). Schedules claim fire times with it (``server.schedules``)."""
    return _create(store, path, data)


def _create(store: Any, path: str, data: bytes) -> bool:
    """Write ``path`` whole if it does not exist; return False if it does."""
    fs = store.fs
    if store.is_local:
        where = os.path.dirname(path)
        os.makedirs(where, exist_ok=True)
        tmp = os.path.join(where, f".{uuid.uuid4().hex}.tmp")
        try:
            with open(tmp, "wb") as f:
                f.write(data)
            os.link(tmp, path)  # atomic, whole, and refused if the name is taken
            return True
        except FileExistsError:
            return False
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
    if store.in_memory:
        with _MEMORY_LOCK:
            if fs.exists(path):
                return False
            fs.pipe_file(path, data)
            return True
    try:
        # adlfs (and s3fs, gcsfs) turn this into a conditional PUT (If-None-Match: *).
        fs.pipe_file(path, data, mode="create")
    except FileExistsError:
        return False
    except TypeError:  # a filesystem with no conditional create: the best it can do
        fs.invalidate_cache(path)
        if fs.exists(path):
            return False
        fs.pipe_file(path, data)
    finally:
        fs.invalidate_cache(posixpath.dirname(path))
    return True


def read_state(store: Any, where: str, name: str = _STATE) -> dict[str, Any]:
    """The state kept beside the versions in ``where`` (in file ``name``); empty if none
    was written."""
    path = (os.path.join if store.is_local else posixpath.join)(where, name)
    fs = store.fs
    fs.invalidate_cache(path)
    try:
        state = json.loads(fs.cat_file(path))
    except (FileNotFoundError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


def write_state(store: Any, where: str, state: dict[str, Any], name: str = _STATE) -> None:
    """Replace the state in ``where`` (file ``name``) whole: readers see the old state or
    the new one."""
    data = json.dumps(state, sort_keys=True).encode()
    if store.is_local:
        os.makedirs(where, exist_ok=True)
        tmp = os.path.join(where, f".{uuid.uuid4().hex}.tmp")
        try:
            with open(tmp, "wb") as f:
                f.write(data)
            os.replace(tmp, os.path.join(where, name))
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        return
    path = posixpath.join(where, name)
    store.fs.pipe_file(path, data)  # one PUT: visible whole or not at all
    store.fs.invalidate_cache(where)


@contextlib.contextmanager
def _state_lock(store: Any, where: str) -> Any:
    """Serialize read-change-write of one state on this machine: a file lock beside a local
    store, the process lock for ``memory://``. Remote writers from several machines are
    last-writer-wins (each write is still whole)."""
    if store.in_memory:
        with _STATE_LOCK:
            yield
        return
    if not store.is_local:
        yield
        return
    import fcntl

    os.makedirs(where, exist_ok=True)
    with open(os.path.join(where, ".state.lock"), "a+b") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def update_state(store: Any, where: str, change: Callable[[dict[str, Any]], dict[str, Any]]
                 ) -> dict[str, Any]:
    """Apply ``change`` to the state in ``where`` and write the result; return it."""
    with _state_lock(store, where):
        state = change(read_state(store, where))
        write_state(store, where, state)
        return state
