"""Reading a dataset where its step runs: the download cache, mounted files, tables.

Whoever materializes a step's inputs says whether that step's outputs will be
stored under a cache key (``reading_for_key``); a dataset then checks that it
reads the content the key was made of (``materializing_for_key``). A
``ContextVar``, so threads and nested runs each see their own.

Downloads go to ``$DUCTWORK_HOME/cache/datasets/<fingerprint>/`` (the step's
scratch dir when home is read-only): the folder is named by content, so what is
there is right, and a file is fetched to a temporary name and renamed, so what
is there is whole. A mounted file streams through fsspec on ``open()`` and is
fetched into the same cache on ``os.fspath()``.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
from collections.abc import Iterator
from contextvars import ContextVar
from pathlib import Path

from ductwork.runtime.config import ductwork_home
from ductwork.runtime.data.datastore import redact_url
from ductwork.runtime.data.errors import DatasetError
from ductwork.runtime.data.files import fetch_file

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["MountedFile", "cache_dir", "fetch", "materializing_for_key", "read_table",
           "reading_for_key"]

_FOR_KEY: ContextVar[bool] = ContextVar("ductwork_materializing_for_key", default=False)

_READERS = {
    ".csv": ("read_csv", {}), ".tsv": ("read_csv", {"sep": "\t"}),
    ".parquet": ("read_parquet", {}), ".pq": ("read_parquet", {}),
    ".json": ("read_json", {}), ".jsonl": ("read_json", {"lines": True}),
    ".ndjson": ("read_json", {"lines": True}),
}
_COMPRESSED = (".gz", ".bz2", ".zip", ".xz", ".zst")


@contextlib.contextmanager
def reading_for_key(for_key: bool) -> Iterator[None]:
    """Mark the lazy inputs read in the block as those of a job stored under a cache key."""
    token = _FOR_KEY.set(for_key)
    try:
        yield
    finally:
        _FOR_KEY.reset(token)


def materializing_for_key() -> bool:
    """Whether the lazy inputs being read now are those of a job whose outputs are stored
    under a cache key: a dataset then checks that it reads the content that key was made of.
    """
    return _FOR_KEY.get()


class MountedFile(os.PathLike):
    """A remote file given to a step: ``open()`` streams it; ``os.fspath()`` fetches it once."""

    def __init__(self, fs: Any, path: str, relative: str, size: int, cache: Path) -> None:
        self._fs, self._path, self._size, self._cache = fs, path, size, cache
        self.relative = relative
        self._local: Path | None = None

    @property
    def name(self) -> str:
        """The file's name."""
        return posixpath.basename(self.relative)

    @property
    def suffix(self) -> str:
        """The file's extension, like ``Path.suffix``."""
        return Path(self.name).suffix

    @property
    def size(self) -> int:
        """The file's size in bytes."""
        return self._size

    def open(self, mode: str = "rb", **kwargs: Any) -> Any:
        """Open the remote file for reading, streamed through fsspec."""
        if any(c in mode for c in "wax+"):
            raise DatasetError(f"{self!r} is read-only; open it with mode 'r' or 'rb'.")
        return self._fs.open(self._path, mode, **kwargs)

    def read_bytes(self) -> bytes:
        """Return the file's bytes."""
        with self.open("rb") as f:
            return f.read()

    def read_text(self, encoding: str = "utf-8") -> str:
        """Return the file's text."""
        return self.read_bytes().decode(encoding)

    def local_path(self) -> Path:
        """Fetch the file into the dataset cache (once) and return its local path."""
        if self._local is None:
            self._local = fetch(self._fs, self._path, self._cache / self.relative, self._size)
        return self._local

    def __fspath__(self) -> str:
        return str(self.local_path())

    def __repr__(self) -> str:
        return f"<MountedFile {self.relative!r}>"


def cache_dir(context: Any, fingerprint: str) -> Path:
    """The download folder of this content: under ``$DUCTWORK_HOME``, else the scratch dir."""
    folder = ductwork_home() / "cache" / "datasets" / fingerprint[:2] / fingerprint
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:  # a read-only home (some containers): this step's scratch dir will do
        folder = Path(context.scratch_dir) / "datasets" / fingerprint
        folder.mkdir(parents=True, exist_ok=True)
    return folder


def fetch(fs: Any, path: str, dest: Path, size: int) -> Path:
    """Download into the cache unless already there; the cache is keyed by content."""
    if dest.is_file() and dest.stat().st_size == size:
        return dest
    fetch_file(fs, path, dest)
    got = dest.stat().st_size
    if got != size:
        dest.unlink()
        raise DatasetError(
            f"{redact_url(path)} changed while it was downloaded ({got} bytes, listed as "
            f"{size}); rerun the step."
        )
    return dest


def read_table(paths: list[Path], read_options: dict[str, Any], where: str) -> Any:
    """Read local files into one DataFrame (concatenated); ``where`` names them in errors."""
    import pandas as pd

    options = dict(read_options)
    forced = options.pop("format", None)
    frames = []
    for path in paths:
        name = path.name.lower()
        for ext in _COMPRESSED:
            name = name.removesuffix(ext)
        suffix = f".{forced}" if forced else Path(name).suffix
        if suffix not in _READERS:
            raise DatasetError(
                f"Dataset.tabular {where}: cannot tell the format of {path.name} "
                f"from its extension; pass format= one of "
                f"{', '.join(sorted(e[1:] for e in _READERS))}."
            )
        reader, defaults = _READERS[suffix]
        frames.append(getattr(pd, reader)(path, **{**defaults, **options}))
    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
