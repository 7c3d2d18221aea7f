"""Spark's own Parquet files as one artifact: a deterministic tar of the partition files.

When Spark shares the store's filesystem (a local master, or a Connect server on
loopback) a Spark step's DataFrame is written by Spark itself, each partition by its
executor, into a scratch folder next to the store (``<store>/spark-tmp/``), and those
files are stored as one value: a tar (USTAR) of the part files in partition order, named
``part-00000.parquet``, ``part-00001.parquet``... by position, with every header field
fixed (mode 0644, owner 0, time 0). Spark's file names hold a random job id and its
markers (``_SUCCESS``, ``.crc``) are left out, and its Parquet bytes depend only on the
rows (and Spark's version, which its footer names): the same rows in the same partitions
give the same container, hence the same digest -- caching and early cutoff work. The
store hashes the container as it is written.

Reading it back for a Spark step extracts the parts into a scratch folder while a second
thread hashes the object; a mismatch deletes the folder and the object and fails the
read, so Spark never scans bytes that were not verified. The folder lives until the step
has finished (``Scratch``). A plain step gets the parts read by pyarrow, concatenated.

Scratch folders are removed when their step ends; one left by a crash is removed by a
later run once it is a day old.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import tarfile
import time
import uuid

import attrs

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, BinaryIO

_MEMBER = re.compile(r"part-\d{5,}\.parquet")
_STALE = 24 * 3600.0  # a scratch folder this old is a crash's leftover
_CHUNK = 4 << 20  # the store hashes writes this big on a second thread


@attrs.frozen
class SparkParts:
    """A folder of Parquet part files Spark wrote, on its way to the store."""

    folder: str


class Scratch:
    """The scratch folders of one step, removed when it ends."""

    def __init__(self, store: Any) -> None:
        self.store, self.folders = store, []  # type: list[str]

    def new(self) -> str:
        """A fresh folder path next to the store (not made: Spark makes its output folder)."""
        root = os.path.join(self.store.root, "spark-tmp")
        os.makedirs(root, exist_ok=True)
        _clean_stale(root)
        folder = os.path.join(root, uuid.uuid4().hex)
        self.folders.append(folder)
        return folder

    def close(self) -> None:
        """Remove every folder made through this scratch."""
        for folder in self.folders:
            shutil.rmtree(folder, ignore_errors=True)
        self.folders.clear()


def _clean_stale(root: str) -> None:
    cutoff = time.time() - _STALE
    for entry in os.scandir(root):
        with contextlib.suppress(OSError):
            if entry.stat().st_mtime < cutoff:
                shutil.rmtree(entry.path, ignore_errors=True)


def write(frame: Any, scratch: Scratch) -> SparkParts:
    """Have Spark write ``frame``'s partitions as Parquet into a new scratch folder."""
    folder = scratch.new()
    # The codec is spelled out: a session's default must not change the bytes.
    frame.write.option("compression", "snappy").parquet(folder)
    return SparkParts(folder)


def part_files(folder: str) -> list[str]:
    """The Parquet files Spark wrote into ``folder``, in partition order (then file order)."""
    # One write's files share a job id: their names sort by partition, then by file number.
    return sorted(n for n in os.listdir(folder) if n.startswith("part-") and
                  n.endswith(".parquet"))


def dump(parts: SparkParts, f: BinaryIO) -> None:
    """Write the deterministic container of ``parts`` to ``f``."""
    names = part_files(parts.folder)
    if not names:
        raise ValueError(f"Spark wrote no Parquet file into {parts.folder}")
    with tarfile.open(fileobj=f, mode="w", format=tarfile.USTAR_FORMAT,
                      copybufsize=_CHUNK) as tar:
        for i, name in enumerate(names):
            path = os.path.join(parts.folder, name)
            info = tarfile.TarInfo(f"part-{i:05d}.parquet")  # fixed mode, owner and time
            info.size = os.path.getsize(path)
            with open(path, "rb") as src:
                tar.addfile(info, src)


def members(data: bytes) -> list[bytes]:
    """The part files of a container, in order (for pyarrow)."""
    out = []
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        for member in tar:
            _check(member)
            src = tar.extractfile(member)
            out.append(src.read() if src is not None else b"")
    return out


def extract(f: BinaryIO, folder: str) -> None:
    """Write the part files of the container read from ``f`` into ``folder`` (made here)."""
    os.makedirs(folder)
    with tarfile.open(fileobj=f, mode="r|", copybufsize=_CHUNK) as tar:
        for member in tar:
            _check(member)
            src = tar.extractfile(member)
            with open(os.path.join(folder, member.name), "wb") as out:
                if src is not None:
                    shutil.copyfileobj(src, out, _CHUNK)


def _check(member: tarfile.TarInfo) -> None:
    # Only what dump writes: no links, no paths outside the folder.
    if not member.isfile() or not _MEMBER.fullmatch(member.name):
        raise ValueError(f"not a Spark frame container: it holds {member.name!r}")
