"""Streams that hash what passes through them, for the artifact store.

Writing: ``HashingWriter`` forwards each write and hashes it (big buffers on a
second thread, overlapped with the write: BLAKE3 and file I/O release the
GIL), into a ``Spool`` that keeps small values in memory until they are
hashed and moves to a temp file past ``SPILL``. Reading: ``HashingReader``
hashes what a loader reads, and ``FileHasher`` hashes a local file on its own
handle while the loader reads it on another.
"""

from __future__ import annotations

import contextlib
import io
import os
import threading
from typing import Any, BinaryIO

from ductwork.runtime.keys.hashing import new_hasher

THREAD_MIN = 4 << 20  # below this a second thread costs more than it overlaps
CHUNK = 1 << 20  # fits in L2: the verifier hashes data that is still in cache


class HashingWriter(io.RawIOBase):
    """Forwards writes to ``raw`` and hashes them; big buffers hash on a second thread."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw, self._hasher, self.size = raw, new_hasher(), 0

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        mv = memoryview(b)
        n = mv.nbytes
        if n >= THREAD_MIN:
            # join before returning: the caller may reuse its buffer afterwards
            t = threading.Thread(target=self._hasher.update, args=(mv,))
            t.start()
            try:
                self._raw.write(mv)
            finally:
                t.join()
        else:
            self._hasher.update(mv)
            self._raw.write(mv)
        self.size += n
        return n

    def tell(self) -> int:
        return self.size

    def hexdigest(self) -> str:
        return self._hasher.hexdigest()


SPILL = 1 << 20  # serialized values up to this size stay in memory until hashed


def local_tmp() -> str:
    """Create an empty temp file on this machine and return its path."""
    import tempfile  # only values spilled on their way to a remote store need one

    fd, path = tempfile.mkstemp(prefix="ductwork-")
    os.close(fd)
    return path


def open_new(path: str) -> Any:
    """Open ``path`` for writing, making its folder only when it is missing.

    Not checked before each write (a stat per write on the hot path), and a folder
    deleted while a process keeps its store open (``rm -rf .ductwork``) is made again.
    """
    try:
        return open(path, "wb")
    except FileNotFoundError:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        return open(path, "wb")


class Spool(io.RawIOBase):
    """Collects written bytes in memory, moving to a temp file once they pass ``SPILL``."""

    def __init__(self, make_path: Any) -> None:
        self._make_path = make_path
        self._buffer: io.BytesIO | None = io.BytesIO()
        self._file: Any = None
        self.path: str | None = None

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        if self._buffer is not None:
            if self._buffer.tell() + memoryview(b).nbytes <= SPILL:
                return self._buffer.write(b)
            self.path = self._make_path()
            self._file = open_new(self.path)  # closed in finish() or discard()
            self._file.write(self._buffer.getbuffer())
            self._buffer = None
        return self._file.write(b)

    def getvalue(self) -> bytes:
        assert self._buffer is not None
        return self._buffer.getvalue()

    def finish(self) -> None:
        if self._file is not None:
            self._file.close()

    def discard(self) -> None:
        try:
            if self._file is not None:
                # Closing flushes what is buffered, which fails again on a full disk: the
                # bytes are unwanted anyway, and the file must still go.
                with contextlib.suppress(OSError):
                    self._file.close()
        finally:
            if self.path is not None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.path)


class HashingReader(io.RawIOBase):
    """Reads from ``raw`` and hashes what was read (for streamed remote objects)."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw, self._hasher, self.size = raw, new_hasher(), 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        mv = memoryview(b).cast("B")
        n = self._raw.readinto(mv) or 0
        self._hasher.update(mv[:n])
        self.size += n
        return n

    def read(self, size: int | None = -1) -> bytes:
        data = self._raw.read() if size is None or size < 0 else self._raw.read(size)
        self._hasher.update(data)
        self.size += len(data)
        return data

    def readline(self, size: int | None = -1) -> bytes:
        data = self._raw.readline(-1 if size is None else size)
        self._hasher.update(data)
        self.size += len(data)
        return data

    def drain(self) -> None:
        """Read and hash whatever the loader left unread."""
        while self.read(CHUNK):
            pass

    def hexdigest(self) -> str:
        return self._hasher.hexdigest()


class FileHasher(threading.Thread):
    """Hashes a local file on its own handle, alongside a loader reading it.

    Not mmap, though ~10% faster: a file truncated under a mapping (or gone stale
    on NFS) kills the process with SIGBUS instead of raising.
    """

    def __init__(self, path: str) -> None:
        super().__init__(daemon=True)
        self._path, self.digest, self.size, self.error = path, "", 0, None

    def run(self) -> None:
        try:
            hasher, buf = new_hasher(), bytearray(CHUNK)
            view = memoryview(buf)
            with open(self._path, "rb", buffering=0) as f:
                while n := f.readinto(buf):
                    hasher.update(view[:n])
                    self.size += n
            self.digest = hasher.hexdigest()
        except BaseException as e:  # surfaced by the caller after join
            self.error = e
