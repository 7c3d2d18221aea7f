"""In-memory streams for moving a serialized object to and from a blob store.

``BufferSpool`` collects what a serializer writes (a ``bytes`` buffer by
reference, past a limit in a local temp file) and hands it to an upload as
one buffer or a seekable ``ChunkReader``; ``ViewWriter`` lets a parallel
download write its ranges straight into a destination buffer.
"""

from __future__ import annotations

import bisect
import contextlib
import io
import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["BufferSpool", "ChunkReader", "ViewWriter"]

REFERENCE_MIN = 1 << 20  # a bytes buffer this big is spooled by reference, not copied


class BufferSpool(io.RawIOBase):
    """Collects a serialized object for upload: in memory up to ``limit`` (``bytes`` buffers
    by reference, others copied), past it in a local temp file."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self._limit, self._chunks, self._file = limit, [], None
        self.size, self.path = 0, None

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        mv = memoryview(b).cast("B")
        n = mv.nbytes
        if self._file is None and self.size + n > self._limit:
            from ductwork.runtime.store.hashio import local_tmp

            self.path = local_tmp()
            self._file = open(self.path, "wb")  # closed in finish() or discard()
            for chunk in self._chunks:
                self._file.write(chunk)
            self._chunks = []
        if self._file is not None:
            self._file.write(mv)
        elif type(mv.obj) is bytes and n >= REFERENCE_MIN:
            self._chunks.append(mv)  # immutable: what was hashed is what will be sent
        elif self._chunks and isinstance(self._chunks[-1], bytearray) and n < REFERENCE_MIN:
            self._chunks[-1] += mv
        else:
            self._chunks.append(bytearray(mv))
        self.size += n
        return n

    def stream(self) -> Any:
        """The collected bytes: the ``bytes`` itself when it is one, else a seekable reader."""
        if len(self._chunks) == 1 and type(self._chunks[0]) is memoryview:
            return self._chunks[0].obj
        if len(self._chunks) == 1:
            return io.BytesIO(self._chunks[0])
        return ChunkReader(self._chunks)

    def finish(self) -> None:
        if self._file is not None:
            self._file.close()

    def discard(self) -> None:
        """Free the buffers and delete any temp file."""
        self._chunks = []
        if self._file is not None:
            self._file.close()
        if self.path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)


class _Positioned(io.RawIOBase):
    """A seekable stream over buffers of a known total size."""

    _pos = 0
    _size = 0

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._pos, 2: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos


class ChunkReader(_Positioned):
    """A seekable reader over a list of buffers, for a parallel block upload."""

    def __init__(self, chunks: list[Any]) -> None:
        super().__init__()
        self._chunks = [memoryview(c).cast("B") for c in chunks]
        self._starts, total = [], 0
        for c in self._chunks:
            self._starts.append(total)
            total += c.nbytes
        self._size, self._pos = total, 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        out = memoryview(b).cast("B")
        done = 0
        i = bisect.bisect_right(self._starts, self._pos) - 1
        while done < len(out) and self._pos < self._size and i < len(self._chunks):
            chunk, at = self._chunks[i], self._pos - self._starts[i]
            n = min(len(out) - done, chunk.nbytes - at)
            out[done:done + n] = chunk[at:at + n]
            done += n
            self._pos += n
            i += 1
        return done


class ViewWriter(_Positioned):
    """A seekable stream writing into a memoryview (the SDK's parallel download target)."""

    def __init__(self, view: memoryview) -> None:
        super().__init__()
        self._view, self._pos, self._size = view, 0, len(view)

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        data = memoryview(b).cast("B")
        end = self._pos + len(data)
        if end > len(self._view):
            raise ValueError("the blob is longer than when its first range was read")
        self._view[self._pos:end] = data
        self._pos = end
        return len(data)
