"""Streams that hash what passes through them, for the artifact store.

Writing: ``HashingWriter`` forwards each write and hashes it (big buffers on a
second thread, overlapped with the write: BLAKE3 and file I/O release the
GIL), into a ``Spool`` that keeps small values in memory until they are
hashed and moves to a temp file past ``SPILL``. Reading: ``HashingReader``
hashes what a loader reads from a remote stream; ``VerifyingRaw`` does the same
for a local file: the loader's reads into its own buffer (an array's) are read
once and hashed on a second thread a piece behind, a read of the whole rest
(``bytes``) is hashed meanwhile through a second handle, and what the loader
skipped is hashed after it; ``FileHasher`` hashes a local file on a handle of its own.
"""

from __future__ import annotations

import contextlib
import io
import os
import threading

from ductwork.runtime.keys.hashing import new_hasher

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, BinaryIO

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


class VerifyingRaw(io.RawIOBase):
    """A local file whose reader's reads are hashed as they land, in file order.

    A big ``readinto`` (an array's data, into its own buffer) reads piece by piece and
    hashes each piece on a second thread while the next is read: one read of the file, not
    two (the loader's and a hasher's), and the hash overlapped. ``readall`` (a ``bytes``
    value) hands back the bytes as read, uncopied, hashed meanwhile on a second handle.
    Hashing follows the file from offset 0: what a reader reads past a gap (it seeked ahead,
    e.g. to a trailer) is not hashed then, and ``finish`` reads and hashes the file from the
    first byte not yet hashed to its end. Wrap it in ``io.BufferedReader`` for the loader.
    """

    def __init__(self, raw: Any) -> None:
        self._raw, self._hasher = raw, new_hasher()
        self.size = 0  # bytes hashed, from offset 0 on: the file's size once finished
        # A hashing thread that failed left the hasher in an unknown state: finish() raises
        # this rather than return a digest that would condemn a sound object.
        self._broken: BaseException | None = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    @property
    def name(self) -> str:
        return self._raw.name

    def fileno(self) -> int:
        # A loader reading the descriptor itself (np.fromfile, mmap) bypasses the hashing
        # here: finish() then hashes the file from the first byte not yet hashed, as after
        # a seek, so the digest still covers every byte. (So each read asks the descriptor
        # where it is, rather than counting.)
        return self._raw.fileno()

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._raw.seek(offset, whence)

    def tell(self) -> int:
        return self._raw.tell()

    def _unhashed(self, start: int, view: memoryview) -> memoryview | None:
        """The part of ``view`` (read at ``start``) that extends the hashed prefix."""
        end = start + view.nbytes
        if start <= self.size < end:
            part = view[self.size - start:]
            self.size = end
            return part
        return None

    def readinto(self, b: Any) -> int:
        mv = memoryview(b).cast("B")
        if mv.nbytes >= THREAD_MIN:
            return self._readinto_overlapped(mv)
        start = self._raw.tell()
        n = self._raw.readinto(mv) or 0
        part = self._unhashed(start, mv[:n])
        if part is not None:
            self._hasher.update(part)
        return n

    def _readinto_overlapped(self, mv: memoryview) -> int:
        import queue  # here: only a large read hashes on a second thread (queue loads heapq)

        pieces: queue.SimpleQueue[memoryview | None] = queue.SimpleQueue()
        failed: list[BaseException] = []

        def hash_pieces() -> None:
            while (piece := pieces.get()) is not None:
                if not failed:
                    try:
                        self._hasher.update(piece)
                    except BaseException as e:  # raised by the reading thread below
                        failed.append(e)

        hasher = threading.Thread(target=hash_pieces, daemon=True)
        hasher.start()
        done, start = 0, self._raw.tell()
        try:
            while done < mv.nbytes:
                n = self._raw.readinto(mv[done:done + CHUNK]) or 0
                if not n:
                    break
                part = self._unhashed(start + done, mv[done:done + n])
                done += n
                if part is not None:
                    pieces.put(part)
        finally:
            pieces.put(None)  # joined before returning: the caller owns its buffer again
            hasher.join()
        if failed:
            self._broken = failed[0]
            raise failed[0]
        return done

    def readall(self) -> bytes:
        start = self._raw.tell()
        if start != self.size:  # past a gap, or re-read: hashed in finish
            return self._raw.readall()
        # The bytes are allocated as they are read (page faults, then the copy): hashing them
        # afterwards would add the whole hash to the load. Instead a second thread hashes the
        # same range through a small buffer of its own, meanwhile: one more read of the file
        # (from the page cache), but the load costs max(read, hash), not the sum.
        path = self._raw.name
        tail = _RangeHasher(path, start, self._hasher)
        tail.start()
        try:
            data = self._raw.readall()
        finally:
            tail.join()
        if tail.error is not None:
            self._broken = tail.error
            raise tail.error
        self.size = start + tail.size
        return data

    def finish(self) -> str:
        """Hash the bytes the reader did not (left unread, or skipped); return the digest."""
        if self._broken is not None:
            raise self._broken
        self._raw.seek(self.size)
        buf = bytearray(CHUNK)
        view = memoryview(buf)
        while n := self._raw.readinto(buf):
            self._hasher.update(view[:n])
            self.size += n
        return self._hasher.hexdigest()


class _RangeHasher(threading.Thread):
    """Feeds ``hasher`` a local file from ``start`` to its end, through its own handle."""

    def __init__(self, path: str, start: int, hasher: Any) -> None:
        super().__init__(daemon=True)
        self._path, self._start, self._hasher, self.size, self.error = path, start, hasher, 0, None

    def run(self) -> None:
        try:
            buf = bytearray(CHUNK)
            view = memoryview(buf)
            with open(self._path, "rb", buffering=0) as f:
                f.seek(self._start)
                while n := f.readinto(buf):
                    self._hasher.update(view[:n])
                    self.size += n
        except BaseException as e:  # surfaced by the caller after join
            self.error = e


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
