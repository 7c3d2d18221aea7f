"""File operations on any fsspec filesystem, beneath datastores and datasets.

Listing a path, a folder or a glob afresh (``find_files``), fetching a file to a
local path through a temporary name (``fetch_file``), copying a local file
atomically (``copy_atomic``), and the glob helpers. In-flight files carry
``TMP_MARK`` in their names, and listings skip them. Nothing here knows a
datastore's name or configuration.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import re

TYPE_CHECKING = False
if TYPE_CHECKING:  # pathlib is imported where a Path is made: a run needs none
    from pathlib import Path
    from typing import Any

__all__ = ["TMP_MARK", "copy_atomic", "fetch_file", "find_files", "glob_base", "has_magic"]

TMP_MARK = ".dwtmp-"  # in-flight uploads; listings skip them
_MAGIC = re.compile(r"[*?\[]")


def has_magic(path: str) -> bool:
    """Whether ``path`` is a glob pattern."""
    return bool(_MAGIC.search(path))


def glob_base(pattern: str) -> str:
    """The folder of a glob pattern above its first wildcard."""
    return _MAGIC.split(pattern, 1)[0].rsplit("/", 1)[0]


def copy_atomic(src: Path, dest: str) -> None:
    """Copy ``src`` to ``dest`` through a temporary name beside it: ``dest`` is whole or absent."""
    folder, name = os.path.split(dest)
    os.makedirs(folder, exist_ok=True)
    import shutil
    import uuid  # here: a run that copies no file should not import these

    tmp = os.path.join(folder, f".{name}{TMP_MARK}{uuid.uuid4().hex}")
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, dest)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def fetch_file(fs: Any, path: str, dest: str | os.PathLike[str]) -> Path:
    """Download ``path`` to ``dest`` through a temporary name, so ``dest`` is whole or absent."""
    from pathlib import Path

    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    import uuid

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
