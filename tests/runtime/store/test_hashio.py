"""The store's hashing streams on a local store: what a put or a get costs in copies and reads.

Counted, never timed: bytes read by this process (``rchar`` of /proc/self/io, all its
threads) and Python allocations (tracemalloc), so a copy of a value or a second pass over
its file shows up exactly.
"""

from __future__ import annotations

import io
import os
import tracemalloc

import pytest

from ductwork.runtime.keys.hashing import new_hasher
from ductwork.runtime.store.artifacts import ArtifactStore, CorruptArtifact
from ductwork.runtime.store.hashio import CHUNK, THREAD_MIN, HashingWriter, VerifyingRaw
from ductwork.runtime.store.serializers import register_serializer, restore_registrations

try:
    import numpy as np
except ImportError:  # pragma: no cover
    np = None

MB = 1 << 20
SIZE = 64 * MB


def rchar() -> int:
    with open("/proc/self/io") as f:
        for line in f:
            if line.startswith("rchar:"):
                return int(line.split()[1])
    raise AssertionError("no rchar")


needs_proc_io = pytest.mark.skipif(not os.path.exists("/proc/self/io"),
                                   reason="counts reads through /proc/self/io (Linux)")


@pytest.fixture
def local(tmp_path):
    return ArtifactStore(str(tmp_path / "store"))


def big_bytes() -> bytes:
    return bytes(range(256)) * (SIZE // 256)


@needs_proc_io
@pytest.mark.skipif(np is None, reason="numpy is not installed")
def test_a_verified_array_load_reads_it_once(local):
    array = np.arange(SIZE // 8, dtype=np.float64)
    ref = local.put(array)
    before = rchar()
    assert np.array_equal(local.get(ref), array)
    assert rchar() - before < SIZE + MB  # the loader's read is the one that is hashed


def test_a_put_copies_nothing_and_a_get_makes_one_value(local):
    value = big_bytes()
    tracemalloc.start()
    try:
        ref = local.put(value)
        _, put_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        loaded = local.get(ref)
        _, get_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert loaded == value
    assert put_peak <= 2 * CHUNK  # streamed from the value itself: no copy of it
    assert get_peak <= SIZE + 2 * CHUNK  # the loaded value, and no second buffer


class Seeking:
    def __init__(self, data: bytes) -> None:
        self.data = data


class SeekingSerializer:
    """Reads its trailer first, as zip-like formats (torch.load, npz) do."""

    name = "tests.seeking"

    def dump(self, value, f):
        f.write(value.data)
        f.write(len(value.data).to_bytes(8, "little"))

    def load(self, f):
        f.seek(-8, io.SEEK_END)
        n = int.from_bytes(f.read(8), "little")
        f.seek(0)
        return Seeking(f.read(n))


def test_a_loader_that_seeks_is_still_verified(local):
    with restore_registrations():
        register_serializer(Seeking, SeekingSerializer())
        data = os.urandom(8 * MB)
        ref = local.put(Seeking(data))
        assert local.get(ref).data == data
        path = local.object_path(ref.digest)
        with open(path, "r+b") as f:  # damage a byte the loader reads, after its seeks
            f.seek(5 * MB)
            byte = f.read(1)
            f.seek(5 * MB)
            f.write(bytes([byte[0] ^ 1]))
        with pytest.raises(CorruptArtifact):
            local.get(ref)
        assert not local.has(ref.digest)


class Raw:
    def __init__(self, data: bytes) -> None:
        self.data = data


class DescriptorSerializer:
    """Loads through the file's descriptor (as np.fromfile or mmap do), past the hashing."""

    name = "tests.descriptor"

    def dump(self, value, f):
        f.write(value.data)

    def load(self, f):
        head = os.read(f.fileno(), 100)
        rest = bytearray(os.fstat(f.fileno()).st_size - 100)
        f.readinto(rest)  # the rest through the file, from where the descriptor is
        return Raw(head + rest)


def test_a_loader_reading_the_descriptor_is_still_verified(local):
    with restore_registrations():
        register_serializer(Raw, DescriptorSerializer())
        data = os.urandom(THREAD_MIN + 1)
        ref = local.put(Raw(data))
        assert local.get(ref).data == data
        with open(local.object_path(ref.digest), "ab") as f:
            f.write(b"!")
        with pytest.raises(CorruptArtifact):
            local.get(ref)


@pytest.mark.parametrize("reads", ["readall", "readinto", "small", "partial"])
def test_verifying_raw_hashes_the_whole_file(tmp_path, reads):
    data = os.urandom(9 * MB + 123)
    path = tmp_path / "blob"
    path.write_bytes(data)
    with open(path, "rb", buffering=0) as raw:
        reader = VerifyingRaw(raw)
        f = io.BufferedReader(reader)
        if reads == "readall":
            assert f.read() == data
        elif reads == "readinto":
            buf = bytearray(len(data))
            assert f.readinto(buf) == len(data) and buf == data
        elif reads == "small":
            got = b"".join(iter(lambda: f.read(1000), b""))
            assert got == data
        else:
            assert f.read(100) == data[:100]  # the rest is left unread
        assert reader.finish() == new_hasher(data).hexdigest()  # what was read, and the rest
        assert reader.size == len(data)


def test_hashing_writer_digest_is_blake3_of_every_write(tmp_path):
    # small writes hash inline, big ones on a second thread beside the file write
    parts = [b"head", os.urandom(THREAD_MIN + 5), b"", os.urandom(1000), os.urandom(THREAD_MIN)]
    with open(tmp_path / "out", "wb") as f:
        writer = HashingWriter(f)
        for p in parts:
            assert writer.write(memoryview(p)) == len(p)
    data = b"".join(parts)
    assert writer.hexdigest() == new_hasher(data).hexdigest() and writer.size == len(data)
    assert (tmp_path / "out").read_bytes() == data
