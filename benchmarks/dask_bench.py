"""Benchmark the dask backend against raw Dask on the same cluster.

map200
     ``total(square.map(make(200)))``: a list made at run time, 200 trivial
     elements (``x * x``), a sum. ductwork runs it with ``backend="dask"`` on a
     fresh local store each repeat (so every element runs and is stored), with
     the cluster's address (``shared_filesystem=True``: the store is on this
     machine). The floor is the same three functions with raw ``distributed`` on
     the same cluster: ``submit(make)``, its length, 200 ``submit(pick_square,
     list_future, i)``, ``submit(total, futures)`` -- what a Dask user writes for a
     map over a list made at run time. Also shown for reference: 200
     ``client.map(square, range(200))`` plus a ``submit(sum)`` (no upstream
     list), ductwork over a constant list, and ductwork's warm rerun (all hits).
     Medians over interleaved repeats; wall time of the whole ``run()`` call
     (tracing, store, SQLite record included). Target: <= 2x the floor.

The cluster is a ``LocalCluster`` of 2 single-threaded worker processes started
here, or ``--address`` (e.g. the loopback cluster of ``scripts/services.sh up
dask``). Stores and ``DUCTWORK_HOME`` go to a temp dir that is removed after.

    python benchmarks/dask_bench.py [--quick] [--address tcp://127.0.0.1:18786]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _table import NOTES, add, add_json_option, load, print_table, ratio, scratch

import ductwork as dw

N = 200


def make(n: int) -> list[int]:
    return list(range(n))


def square(x: int) -> int:
    return x * x


def pick_square(xs: list[int], i: int) -> int:
    return xs[i] * xs[i]


def total(xs: list[int]) -> int:
    return sum(xs)


make_step = dw.step(make)
square_step = dw.step(square)
total_step = dw.step(total)


@dw.pipeline
def runtime_list(n: int = N):
    return total_step(square_step.map(make_step(n)))


@dw.pipeline
def constant_list():
    return total_step(square_step.map(list(range(N))))


def raw_runtime_list(client) -> int:
    xs = client.submit(make, N, pure=False)
    n = len(xs.result())
    parts = [client.submit(pick_square, xs, i, pure=False) for i in range(n)]
    return client.submit(total, parts, pure=False).result()


def raw_map(client) -> int:
    parts = client.map(square, range(N), pure=False)
    return client.submit(total, parts, pure=False).result()


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few repeats")
    parser.add_argument("--address", help="a running scheduler (default: a LocalCluster)")
    parser.add_argument("--repeat", type=int, default=None)
    add_json_option(parser)
    args = parser.parse_args()
    repeat = args.repeat or (3 if args.quick else 7)

    from distributed import Client, LocalCluster

    cluster = None
    if args.address:
        address = args.address
    else:
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None)
        address = cluster.scheduler_address
    client = Client(address)
    client.wait_for_workers(1)
    workers = len(client.scheduler_info()["workers"])
    with scratch(None, "ductwork-dask-bench-") as tmp:
        os.environ["DUCTWORK_HOME"] = os.path.join(tmp, "home")
        opts = {"backend": "dask", "address": address, "shared_filesystem": True,
                "progress": False}
        counter = iter(range(10**6))

        def ductwork_cold(pipeline) -> None:
            run = pipeline.run(store=os.path.join(tmp, f"s{next(counter)}"), **opts)
            assert run.outputs == sum(x * x for x in range(N))

        warm_store = os.path.join(tmp, "warm")

        def ductwork_warm() -> None:
            run = runtime_list.run(store=warm_store, **opts)
            assert run.steps["make"].cached

        # Unmeasured: start the client, load ductwork on the workers, fill the warm store.
        raw_runtime_list(client)
        ductwork_cold(runtime_list)
        runtime_list.run(store=warm_store, **opts)
        times: dict[str, list[float]] = {k: [] for k in
                                         ("raw", "raw_map", "dw", "dw_const", "dw_warm")}
        for _ in range(repeat):
            times["raw"].append(timed(lambda: raw_runtime_list(client)))
            times["dw"].append(timed(lambda: ductwork_cold(runtime_list)))
            times["raw_map"].append(timed(lambda: raw_map(client)))
            times["dw_const"].append(timed(lambda: ductwork_cold(constant_list)))
            times["dw_warm"].append(timed(ductwork_warm))
    med = {k: statistics.median(v) for k, v in times.items()}
    floor = med["raw"]
    add("map200: raw Dask, list made at run time (floor)", f"{floor * 1000:.0f} ms")
    add("map200: ductwork on dask, cold", f"{med['dw'] * 1000:.0f} ms", f"{floor * 1000:.0f} ms",
        ratio(med["dw"], floor), "<= 2x", ok=med["dw"] <= 2 * floor)
    add("map200: raw client.map over range(200)", f"{med['raw_map'] * 1000:.0f} ms",
        f"{floor * 1000:.0f} ms", ratio(med["raw_map"], floor))
    add("map200: ductwork, constant list, cold", f"{med['dw_const'] * 1000:.0f} ms",
        f"{med['raw_map'] * 1000:.0f} ms", ratio(med["dw_const"], med["raw_map"]))
    add("map200: ductwork, warm rerun (all hits)", f"{med['dw_warm'] * 1000:.0f} ms",
        f"{floor * 1000:.0f} ms", ratio(med["dw_warm"], floor))
    NOTES.append(f"cluster: {'LocalCluster' if cluster else address}, {workers} workers x 1 "
                 f"thread; {repeat} interleaved repeats, medians; load {load()}")
    from ductwork.backends import dask as dask_backend

    shutdown_clients = getattr(dask_backend, "shutdown_clients", None)
    if shutdown_clients is not None:  # not public API: a ductwork without it keeps no client
        shutdown_clients()  # ductwork's own client to this cluster, before the cluster goes
    client.close()
    if cluster is not None:
        cluster.close()
    print_table(args.json)


if __name__ == "__main__":
    main()
