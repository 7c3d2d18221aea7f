"""Benchmark the ``az://`` ArtifactStore on Azurite against the Azure SDK moving the same bytes.

write
     ``ArtifactStore("az://...").put(value)`` of a 256 MB value (random bytes, and a
     float64 numpy array): serialize, hash (BLAKE3, while writing), spool, upload.
     The object is deleted before each repeat so every put really uploads.
     Floor: ``BlobClient.upload_blob(data, overwrite=True, max_concurrency=N)`` of the
     same bytes already in memory (no serialization, no hash), with the SDK's
     default client and with the store's block size; the faster is the floor.
read
     ``store.get(ref)``: download, verify the digest, load. Floor:
     ``download_blob(max_concurrency=N).readall()`` of the same blob, default client
     and the store's range size; the faster is the floor.

Best of ``--repeat`` (the machine is shared: noise only adds). Target: <= 1.3x
the floor. Needs Azurite on 127.0.0.1:$DUCTWORK_AZURITE_BLOB_PORT (default
10000; ``bash scripts/services.sh up azurite``); without it the script prints one
``skip`` row and exits 0. It works in a fresh container that it deletes after.

    python benchmarks/azure_bench.py [--mb 256] [--repeat 3] [--quick]
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import sys
import uuid
from typing import Any

import _table as table

ACCOUNT = "devstoreaccount1"
# The emulator's published development key: it opens only the local emulator.
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
TARGET = 1.3


def _conn(port: int) -> str:
    return (f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
            f"BlobEndpoint=http://127.0.0.1:{port}/{ACCOUNT};")


def _rate(mb: int, seconds: float) -> str:
    return f"{seconds:.2f} s ({mb / seconds:.0f} MB/s)"


def main() -> None:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="32 MB, 2 repeats")
    args = parser.parse_args()
    if args.quick:
        args.mb, args.repeat = 32, 2
    port = int(os.environ.get("DUCTWORK_AZURITE_BLOB_PORT") or 10000)
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        table.add("azure store", "skip", result="skip")
        table.NOTES.append(f"Azurite is not running on 127.0.0.1:{port}: "
                           "bash scripts/services.sh up azurite")
        table.print_table()
        return

    import numpy as np
    from azure.storage.blob import BlobServiceClient

    from ductwork.runtime.store import blobs as azure
    from ductwork.runtime.store.artifacts import ArtifactStore

    conn = _conn(port)
    os.environ["AZURE_STORAGE_CONNECTION_STRING"] = conn
    container = f"dw-bench-{uuid.uuid4().hex[:12]}"
    n = args.mb << 20
    values = {"bytes": os.urandom(n), "float64 array": np.random.default_rng(0).random(n // 8)}
    clients = {
        "SDK defaults": BlobServiceClient.from_connection_string(conn),
        "store's sizes": BlobServiceClient.from_connection_string(
            conn, max_single_put_size=azure.SINGLE_PUT, max_block_size=azure.BLOCK_SIZE,
            max_chunk_get_size=azure.BLOCK_SIZE),
    }
    clients["SDK defaults"].create_container(container)
    conc = azure.MAX_CONCURRENCY
    print(f"ductwork azure bench: {args.mb} MB, best of {args.repeat}, max_concurrency={conc}; "
          f"Python {platform.python_version()}, {os.cpu_count()} CPUs; load {table.load()}",
          file=sys.stderr)
    try:
        store = ArtifactStore(f"az://{container}/store")
        store.check()
        for name, value in values.items():
            data = value if isinstance(value, bytes) else value.tobytes()
            blobs = {label: service.get_blob_client(container, f"floor/{name}-{i}")
                     for i, (label, service) in enumerate(clients.items())}
            ref = store.put(value)
            # Interleaved, best of each: the shared machine (and Azurite on it) drifts, so
            # a block of floor runs then a block of ours would compare different moments.
            times: dict[str, list[float]] = {}

            def timed(key: str, fn: Any, setup: Any = lambda: None,
                      times: dict[str, list[float]] = times) -> None:
                times.setdefault(key, []).append(table.best_time(fn, 1, setup))

            for _ in range(args.repeat):
                for label, blob in blobs.items():
                    timed(f"w {label}", lambda b=blob, d=data: b.upload_blob(
                        d, overwrite=True, max_concurrency=conc))
                    timed(f"r {label}", lambda b=blob: b.download_blob(
                        max_concurrency=conc).readall())
                timed("put", lambda v=value: store.put(v),
                      lambda r=ref: store.delete_object(r.digest))
                timed("get", lambda r=ref: store.get(r))
            for blob in blobs.values():
                blob.delete_blob()
            best = {k: min(v) for k, v in times.items()}
            floors_w = {label: best[f"w {label}"] for label in clients}
            floors_r = {label: best[f"r {label}"] for label in clients}
            fw, fr = min(floors_w.values()), min(floors_r.values())
            put, get = best["put"], best["get"]
            back = store.get(ref)
            assert type(back) is type(value) and len(back) == len(value)
            store.delete_object(ref.digest)

            table.add(f"write {name} {args.mb} MB", _rate(args.mb, put), f"{fw:.2f} s",
                      table.ratio(put, fw), f"<= {TARGET}x", put <= TARGET * fw)
            table.add(f"read {name} {args.mb} MB", _rate(args.mb, get), f"{fr:.2f} s",
                      table.ratio(get, fr), f"<= {TARGET}x", get <= TARGET * fr)
            for label in clients:
                table.add(f"  floor write, {label}", _rate(args.mb, floors_w[label]))
                table.add(f"  floor read, {label}", _rate(args.mb, floors_r[label]))
    finally:
        clients["SDK defaults"].delete_container(container)
    table.NOTES.append("floor = the faster SDK client for the same bytes in memory: no "
                       "serialization, no hashing, no verification")
    table.print_table()


if __name__ == "__main__":
    main()
