"""Reading an ``az://`` store's blob in order while the next ranges download.

``AzureBlobs.open`` returns one: the loader reads (and the store hashes) the value in
order while up to ``concurrency`` later ranges download on threads, all pinned to the
first range's ETag so a blob replaced mid-read fails instead of mixing two versions. A
single large read (an array's body) goes straight into the caller's buffer instead.
"""

from __future__ import annotations

import io
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor

from ductwork.runtime.store.spool import ViewWriter

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["BlobReader"]


class BlobReader(io.RawIOBase):
    """Reads a blob in order while up to ``concurrency`` later ranges download."""

    def __init__(self, blobs: Any, path: str) -> None:
        super().__init__()
        self._blobs, self._path = blobs, path
        self._client = blobs._blob(path)
        self._step = blobs.range_size
        with blobs.errors("reading a blob", path):
            first = self._client.download_blob(offset=0, length=self._step)
            # properties.size is the range's; the blob's total follows the '/' of the range
            rng = first.properties.content_range
            self._size = int(rng.rsplit("/", 1)[1]) if rng else first.properties.size
            self._etag = first.properties.etag
            self._buf = memoryview(first.readall())
        self._next = len(self._buf)
        self._pending: deque[Future[bytes]] = deque()
        self._pool: ThreadPoolExecutor | None = None

    def _prefetch(self) -> None:
        """Start downloading the next ranges, for reads in pieces (the first read decides)."""
        if self._pool is None and self._size > self._next:
            self._pool = ThreadPoolExecutor(self._blobs.concurrency,
                                            thread_name_prefix="ductwork-az")
            for _ in range(self._blobs.concurrency):
                self._schedule()

    def _schedule(self) -> None:
        if self._next >= self._size or self._pool is None:
            return
        offset, length = self._next, min(self._step, self._size - self._next)
        self._next += length
        self._pending.append(self._pool.submit(self._fetch, offset, length))

    def _fetch(self, offset: int, length: int) -> bytes:
        from azure.core import MatchConditions

        # Pinned to the first range's version: a blob replaced mid-read fails, not mixes.
        with self._blobs.errors("reading a blob", self._path):
            return self._client.download_blob(
                offset=offset, length=length, etag=self._etag,
                match_condition=MatchConditions.IfNotModified,
            ).readall()

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        out = memoryview(b).cast("B")
        if not self._buf and self._pool is None and self._next < self._size:
            want = min(len(out), self._size - self._next)
            if want >= 2 * self._step:
                # One large read (an array's body): ranges straight into the caller's buffer
                # in parallel, as the SDK's own download does -- no buffer per range to copy.
                self._download_into(out[:want])
                return want
            self._prefetch()
        while not self._buf and self._pending:
            self._buf = memoryview(self._pending.popleft().result())
            self._schedule()
        n = min(len(out), len(self._buf))
        out[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n

    def _download_into(self, out: memoryview) -> None:
        from azure.core import MatchConditions

        with self._blobs.errors("reading a blob", self._path):
            self._client.download_blob(
                offset=self._next, length=len(out), etag=self._etag,
                match_condition=MatchConditions.IfNotModified,
                max_concurrency=self._blobs.concurrency,
            ).readinto(ViewWriter(out))
        self._next += len(out)

    def readall(self) -> bytes:
        if self._pool is None and self._next == len(self._buf) < self._size:
            # Nothing read yet (a bytes value): the whole blob in one parallel download,
            # the first range again, rather than joining it to the rest (a 2nd copy).
            from azure.core import MatchConditions

            with self._blobs.errors("reading a blob", self._path):
                data = self._client.download_blob(
                    etag=self._etag, match_condition=MatchConditions.IfNotModified,
                    max_concurrency=self._blobs.concurrency).readall()
            self._buf, self._next = memoryview(b""), self._size
            return data
        # Whole ranges joined once, not RawIOBase's 8 KiB reads.
        self._prefetch()
        parts = [bytes(self._buf)]
        self._buf = memoryview(b"")
        while self._pending:
            parts.append(self._pending.popleft().result())
            self._schedule()
        return b"".join(parts)

    def close(self) -> None:
        if self._pool is not None:
            for f in self._pending:
                f.cancel()
            self._pool.shutdown(wait=True)
            self._pool = None
        self._pending.clear()
        super().close()
