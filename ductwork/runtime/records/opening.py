"""Opening a run store's SQLite file: damage set aside, read-only stores read as they are.

History must never stop work. A ``runs.sqlite`` that is not a database, is cut
short, fails SQLite's ``quick_check`` or is a directory is *moved aside* -- kept,
as ``runs.sqlite.damaged-<timestamp>`` beside it -- with a warning naming both
paths, and a new file is started. Processes opening the same damaged file at once
take a lock (``runs.sqlite.lock``) and look again under it, so only the first moves
it and none moves the new file another just made.

Read-only commands open an existing file read-only (``immutable`` when its
directory cannot be written, so SQLite creates no ``-shm`` beside it) and never
create a file that is not there.
"""

from __future__ import annotations

import _sqlite3 as sqlite3  # not the sqlite3 package: its dbapi2 imports datetime (~6M)
import contextlib
import os
import time
import warnings

#: Files up to this size are checked page by page when opened (quick_check is linear).
CHECK_LIMIT = 16 * 1024 * 1024
_MAGIC = b"SQLite format 3\x00"
_DAMAGE = ("not a database", "malformed", "disk image")


def is_damage(exc: BaseException) -> bool:
    """Whether an SQLite error says the file itself is broken (not busy, not full)."""
    return isinstance(exc, sqlite3.DatabaseError) and any(m in str(exc) for m in _DAMAGE)


def damage_of(path: str, thorough: bool = False) -> str | None:
    """What is wrong with the file at ``path`` as an SQLite database, or None; files over
    ``CHECK_LIMIT`` are read page by page only when ``thorough``."""
    if os.path.isdir(path):
        return "it is a directory"
    try:
        size = os.stat(path).st_size
        with open(path, "rb") as f:
            header = f.read(100)
    except FileNotFoundError:
        return None
    if size == 0:
        return None  # a database being created: SQLite writes its first page on first use
    if len(header) < 100 or not header.startswith(_MAGIC):
        return "it is not an SQLite database"
    page = int.from_bytes(header[16:18], "big")
    page = 65536 if page == 1 else page
    pages = int.from_bytes(header[28:32], "big")
    # The header's page count is valid only when the two change counters agree.
    if pages and header[24:28] == header[92:96] and size < pages * page:
        return f"it is truncated ({size} of {pages * page} bytes)"
    if size > CHECK_LIMIT and not thorough:
        return None
    try:
        db = sqlite3.connect(path, timeout=60)
        try:
            result = [row[0] for row in db.execute("PRAGMA quick_check")]
        finally:
            db.close()
    except sqlite3.DatabaseError as exc:
        return f"SQLite cannot read it ({exc})" if is_damage(exc) else None
    return None if result == ["ok"] else f"SQLite's quick_check found: {'; '.join(result[:3])}"


def set_aside(path: str, reason: str | None = None, inode: int | None = None) -> str | None:
    """Move a damaged history file (and its WAL) aside, keeping it; warn naming both paths.

    The file is looked at again under a lock; ``reason`` (an error SQLite gave on the file
    whose inode is ``inode``) counts only if the file is still that one, so a file another
    process has just made anew is left alone. Returns where the damaged file went.
    """
    import fcntl

    with open(path + ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            found = damage_of(path, thorough=reason is not None)
            if found is not None:
                # A file another process is creating can look cut short for an instant:
                # only damage that is still there a moment later, on the same file, counts.
                time.sleep(0.2)
                again = damage_of(path, thorough=reason is not None)
                found = again if again is not None and (
                    inode is None or _inode(path) == inode) else None
            if found is None:
                return None
            stamp = time.strftime("%Y%m%d-%H%M%S")  # local time, as datetime.now() gave
            aside = f"{path}.damaged-{stamp}"
            n = 1
            while os.path.lexists(aside):
                n += 1
                aside = f"{path}.damaged-{stamp}-{n}"
            os.replace(path, aside)
            with contextlib.suppress(FileNotFoundError):
                os.replace(f"{path}-wal", f"{aside}-wal")
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"{path}-shm")  # shared-memory index only: rebuilt from the WAL
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    warnings.warn(
        f"run history {path} was damaged ({found}); it was moved to {aside} (kept, for "
        f"inspection or recovery) and a new history was started at {path}.",
        RuntimeWarning, stacklevel=4)
    return aside


def _inode(path: str) -> int | None:
    try:
        return os.stat(path).st_ino
    except FileNotFoundError:
        return None


def connect_read_only(path: str) -> sqlite3.Connection:
    """Open an existing history file for reading only; never creates a file."""
    import urllib.parse  # only for a read-only history: it loads ipaddress too

    quoted = urllib.parse.quote(path)
    if os.access(os.path.dirname(path) or ".", os.W_OK) and os.access(path, os.W_OK):
        uri = f"file:{quoted}?mode=ro"
    else:
        # No -shm can be made beside it: read the file as it is, without locking.
        uri = f"file:{quoted}?mode=ro&immutable=1"
    return sqlite3.connect(uri, uri=True, timeout=60, check_same_thread=False,
                           isolation_level=None)
