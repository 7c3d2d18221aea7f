"""Benchmark ArtifactStore put+get of large values against plain file I/O.

The floor is what plain Python pays to write the same bytes to a file on the
same disk and read them back. The store additionally computes sha256 once while
writing and once more while reading (to verify), so ``2 x sha256`` is printed
too: no verifying store can be faster than that on one hash stream.

    python benchmarks/store_bench.py [--mb 256] [--repeat 5] [--dir DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import tempfile
from typing import Any

import numpy as np
from _table import best_time

from ductwork.runtime.store.artifacts import ArtifactStore


def _floor(data: Any, path: str, repeat: int) -> tuple[float, float]:
    def write() -> None:
        with open(path, "wb") as f:
            f.write(memoryview(data))

    def read() -> None:
        with open(path, "rb") as f:
            f.read()

    return best_time(write, repeat), best_time(read, repeat)


def _store(value: Any, store: ArtifactStore, repeat: int) -> tuple[float, float]:
    ref = store.put(value)
    # delete first, so that every put really writes instead of deduplicating
    put = best_time(lambda: store.put(value), repeat, lambda: store.delete_object(ref.digest))
    get = best_time(lambda: store.get(ref), repeat)
    assert type(store.get(ref)) is type(value)
    return put, get


def main() -> None:
    """Run the benchmark and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--dir", default=None, help="where to put the store (default: a tmp dir)")
    args = parser.parse_args()

    n = args.mb << 20
    values = {
        f"bytes {args.mb} MB": os.urandom(n),
        f"float64 {args.mb} MB": np.random.default_rng(0).random(n // 8),
    }
    sha = best_time(lambda: hashlib.sha256(values[f"bytes {args.mb} MB"]).digest(), 3)
    root = tempfile.mkdtemp(prefix="store-bench-", dir=args.dir)
    try:
        store = ArtifactStore(os.path.join(root, "store"))
        floor_path = os.path.join(root, "floor.bin")
        print(f"sha256 of {args.mb} MB: {sha:.3f}s (so 2 x sha256 = {2 * sha:.3f}s)")
        print(f"{'case':<18} {'floor w':>8} {'floor r':>8} {'put':>8} {'get':>8} "
              f"{'floor':>8} {'store':>8} {'ratio':>6} {'vs 2xsha':>8}")
        for name, value in values.items():
            fw, fr = _floor(value, floor_path, args.repeat)
            put, get = _store(value, store, args.repeat)
            floor, total = fw + fr, put + get
            print(f"{name:<18} {fw:8.3f} {fr:8.3f} {put:8.3f} {get:8.3f} "
                  f"{floor:8.3f} {total:8.3f} {total / floor:5.2f}x {total / (2 * sha):7.2f}x")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
