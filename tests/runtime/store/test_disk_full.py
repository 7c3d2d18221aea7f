"""A full disk under the artifact store: the step's error says so and where, and nothing
partial is left behind.

A real small filesystem (a 512 KiB tmpfs, mounted as root), not a patched ``write``:
the ENOSPC comes from the kernel wherever it happens to strike.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest

import ductwork as dw
from ductwork import pipeline, step
from ductwork.runtime.keys.hashing import new_hasher
from ductwork.runtime.store.artifacts import ArtifactStore, StoreFull


def mount_small_disk(path: Path, size: str) -> Path:
    """Mount a tmpfs of ``size`` at ``path``; skip (a failure under CI=true) if refused."""
    path.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.strip()}")
    return path


@pytest.fixture
def small_disk(tmp_path):
    """A 512 KiB disk: a 2 MB value fills it while the first megabyte spills to a file."""
    disk = mount_small_disk(tmp_path / "disk", "512k")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


@pytest.fixture
def roomier_disk(tmp_path):
    """A 2 MiB disk: the first megabyte spills whole, then small writes fill it."""
    disk = mount_small_disk(tmp_path / "disk", "2m")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


@step
def blob(n: int) -> bytes:
    return os.urandom(n)


@pipeline
def p(n: int = 2 << 20):
    return blob(n)


def leftovers(store: Path) -> list[str]:
    """Files left in the store's tmp folder, and objects whose bytes are not whole."""
    found = [str(f) for f in (store / "tmp").glob("*")] if (store / "tmp").exists() else []
    s = ArtifactStore(str(store))
    for digest in s.iter_objects():
        if new_hasher(Path(s.object_path(digest)).read_bytes()).hexdigest() != digest:
            found.append(s.object_path(digest))
    return found


@pytest.mark.parametrize("backend", ["inline", pytest.param("process", marks=pytest.mark.slow)])
def test_a_full_disk_fails_the_step_saying_so_and_where(small_disk, backend):
    store = small_disk / "store"
    with pytest.raises(dw.PipelineFailed) as err:
        p.run(store=str(store), backend=backend)
    error = err.value.run.steps["blob"].error
    assert (f"Step 'blob': output 'output' could not be stored: the disk holding the artifact "
            f"store {store} is full (No space left on device). Free space there or point the "
            "store elsewhere (store=, DUCTWORK_STORE).") in error, error
    assert "serializ" not in error, error  # a full disk is not a serialization problem
    assert leftovers(store) == []

    again = p.run(n=1000, store=str(store), backend=backend)
    assert again.status == "succeeded" and len(again.outputs) == 1000
    assert leftovers(store) == []


@pytest.mark.parametrize("size", [100 << 10, 2 << 20], ids=["in_memory_first", "spilled"])
def test_put_on_a_full_disk_raises_store_full_and_leaves_nothing(small_disk, size):
    store = ArtifactStore(str(small_disk / "store"))
    filler = small_disk / "filler"
    filler.write_bytes(b"\0" * (440 << 10))  # most of the disk: what is left is < 100 KiB
    with pytest.raises(StoreFull) as err:
        store.put(os.urandom(size))
    assert str(small_disk / "store") in str(err.value)
    assert leftovers(small_disk / "store") == []
    filler.unlink()
    ref = store.put(b"fits")
    assert store.get(ref) == b"fits"


def test_the_index_write_on_a_full_disk_raises_store_full(small_disk):
    store = ArtifactStore(str(small_disk / "store"))
    ref = store.put(b"small")
    # Fill the disk to the last byte: even a tiny index entry no longer fits.
    with open(small_disk / "filler", "wb", buffering=0) as f:
        for chunk in (64 << 10, 4096, 1):
            try:
                while f.write(b"\0" * chunk):
                    pass
            except OSError:
                pass
    with pytest.raises(StoreFull):
        store.put_key(uuid.uuid4().hex, {"output": ref})
    assert leftovers(small_disk / "store") == []


class Chunks:
    """A value whose serializer writes it in small pieces, as streaming writers do."""

    def __init__(self, n: int) -> None:
        self.n = n


class ChunkSerializer:
    name = "tests.chunks"

    def dump(self, value: Chunks, f) -> None:
        piece = os.urandom(1000)
        for _ in range(value.n // 1000):
            f.write(piece)

    def load(self, f) -> Chunks:
        return Chunks(len(f.read()))


def test_a_value_written_in_small_pieces_leaves_no_temporary_file(roomier_disk):
    # The file's buffer still holds bytes when the disk fills; closing it fails again.
    from ductwork.runtime.store.serializers import register_serializer, restore_registrations

    store = ArtifactStore(str(roomier_disk / "store"))
    with restore_registrations():
        register_serializer(Chunks, ChunkSerializer())
        with pytest.raises(StoreFull, match="No space left on device"):
            store.put(Chunks(4 << 20))
    assert leftovers(roomier_disk / "store") == []
