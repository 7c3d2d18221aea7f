"""Benchmark tracing a pipeline that calls one step N times, against a plain Python loop.

Tracing records an invocation per step call and gives it an id: ``work``,
``work-2``, ... ``work-N``. Two shapes, N = 1,000, 4,000 and 16,000 calls:

independent  ``[work(i) for i in range(n)]``: N calls, no edges.
chained      ``x = work(x)`` N times: N calls, N - 1 edges.

Each row is the best wall time of ``Pipeline.trace()`` (no step code runs) over
a few repeats, with the time per call, against the floor: the same loop calling
the plain function (``work.fn``) N times. Target (issue [7]): 16,000 calls of
one step trace in under a second, both shapes. The first lines say how
ductwork was imported (its ``__file__``; an installed wheel or a source
checkout), so a number can be matched to the code that made it.

    python benchmarks/trace_bench.py [--quick] [--repeat N] [--n 1000,4000,16000] [--json FILE]
"""

from __future__ import annotations

import argparse
import gc
import importlib.metadata
import json
import os
import platform
import sys
import sysconfig
import time
from collections.abc import Callable
from typing import Any

from _table import NOTES, add, add_json_option, best_time, load, print_table, ratio

SIZES = (1_000, 4_000, 16_000)
TARGET_N, TARGET_S = 16_000, 1.0


def how_imported(module: Any) -> str:
    """Where ``module`` was imported from: an installed wheel, or a source checkout."""
    where = os.path.dirname(os.path.abspath(module.__file__))
    try:
        dist = importlib.metadata.distribution(module.__name__)
    except importlib.metadata.PackageNotFoundError:
        dist = None
    direct = json.loads(dist.read_text("direct_url.json") or "{}") if dist else {}
    site = {os.path.abspath(sysconfig.get_paths()[k]) for k in ("purelib", "platlib")}
    if any(where.startswith(s + os.sep) for s in site):
        return f"an installed wheel ({dist.version if dist else '?'}) in site-packages"
    url = direct.get("url", "")
    source = os.path.abspath(url.removeprefix("file://")) if url.startswith("file://") else ""
    if direct.get("dir_info", {}).get("editable") and where.startswith(source + os.sep):
        return f"a source checkout, installed editable from {url}"
    if dist is not None:
        return (f"a source checkout on sys.path, shadowing the installed ductwork "
                f"{dist.version} ({url or 'a wheel'})")
    return "a source checkout on sys.path, not installed"


def make_pipelines(dw: Any, n: int) -> tuple[Any, Any, Callable[[], Any], Callable[[], Any]]:
    """The two traced pipelines of ``n`` calls and their plain-Python floors."""

    @dw.step
    def work(x: int) -> int:
        return x + 1

    @dw.pipeline
    def independent():
        return [work(i) for i in range(n)]

    @dw.pipeline
    def chained():
        x = 0
        for _ in range(n):
            x = work(x)
        return x

    fn = work.fn

    def plain_independent() -> list[int]:
        return [fn(i) for i in range(n)]

    def plain_chained() -> int:
        x = 0
        for _ in range(n):
            x = fn(x)
        return x

    return independent, chained, plain_independent, plain_chained


def bench(dw: Any, sizes: tuple[int, ...], repeat: int) -> None:
    """Add one row per size and shape."""
    for n in sizes:
        independent, chained, plain_independent, plain_chained = make_pipelines(dw, n)
        for shape, pipe, floor_fn in (("independent", independent, plain_independent),
                                      ("chained", chained, plain_chained)):
            plan = pipe.trace()  # once untimed: also checks the ids are what they should be
            assert len(plan.invocations) == n and f"work-{n}" in plan.invocations
            del plan
            seconds = best_time(pipe.trace, repeat, setup=gc.collect)
            floor = best_time(floor_fn, max(repeat, 5))
            target = f"< {TARGET_S:g} s" if n == TARGET_N else "-"
            ok = seconds < TARGET_S if n == TARGET_N else None
            add(f"trace {n:,} calls of one step, {shape}",
                f"{seconds:.3f} s ({seconds / n * 1e6:.1f} us/call)",
                f"{floor * 1e3:.3f} ms", ratio(seconds, floor), target, ok)


def main() -> None:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="a smoke test: 1,000 and 4,000 calls, 1 repeat")
    parser.add_argument("--repeat", type=int, help="best of this many traces (default 5, 1 quick)")
    parser.add_argument("--n", help="comma-separated numbers of calls (default 1000,4000,16000)")
    add_json_option(parser)
    args = parser.parse_args()
    sizes = (tuple(int(s) for s in args.n.split(",")) if args.n
             else SIZES[:2] if args.quick else SIZES)
    repeat = args.repeat or (1 if args.quick else 5)

    import ductwork as dw

    print(f"ductwork {dw.__version__}, Python {platform.python_version()}, {os.cpu_count()} "
          f"CPUs, {platform.machine()}{' (--quick)' if args.quick else ''}; load average "
          f"{load()}")
    print(f"ductwork imported from {dw.__file__}: {how_imported(dw)}")
    print(f"best of {repeat} traces; floor: the same loop calling the plain function, "
          "best of 5\n", flush=True)
    started = time.perf_counter()
    bench(dw, sizes, repeat)
    NOTES.append(f"target: {TARGET_N:,} calls of one step trace in under {TARGET_S:g} s "
                 "(issue [7]); the other sizes show how the time grows (linear: the same "
                 "us/call at every N).")
    NOTES.append(f"took {time.perf_counter() - started:.1f} s; load average at the end: "
                 f"{load()} (on {os.cpu_count()} CPUs; a shared machine).")
    print_table(args.json)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
