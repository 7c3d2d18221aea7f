"""W1-W3 in kfp, local execution with its local cache: ``python kfp_prog.py WORKLOAD DIR SIZE``.

``kfp.local.init(runner=SubprocessRunner(use_venv=False), enable_caching=True, ...)``: kfp's
local mode without Docker or a cluster. Each task runs in a subprocess of this interpreter
(``python -m kfp.dsl.executor_main``); its outputs go under DIR/outputs and the cache's
entries under DIR/cache, so a second program over the same DIR is the warm run. Components
are lightweight Python components with ``install_kfp_package=False``: kfp is already in this
environment, and the default would run ``pip install kfp`` before every task. W1's pipeline is
built for SIZE steps (a pipeline's shape is fixed when it is compiled); W2 is a
``dsl.ParallelFor`` over ``make``'s list with ``dsl.Collected`` into ``total``; W3 passes the
value as an ``Artifact`` (a file written by one task and read by the next: kfp's parameters are
JSON and are not meant for large data). Prints one JSON line: the result and the cache's hits
and misses.
"""

import json
import os
import sys

from kfp import dsl, local
from kfp.local import cache as local_cache

# base_image names the image a cluster would use; the subprocess runner ignores it (it is set
# only to silence the warning about its default changing)
component = dsl.component(install_kfp_package=False, base_image="python:3.11")


@component
def inc(x: int) -> int:
    return x + 1


@component
def make(n: int) -> list:
    return list(range(n))


@component
def total(xs: list) -> int:
    return int(sum(xs))  # collected ints arrive as JSON numbers, i.e. floats


@component
def make_bytes(n: int, data: dsl.Output[dsl.Artifact]):
    with open(data.path, "wb") as f:
        f.write(bytes(range(256)) * (n // 256))


@component
def size_of(data: dsl.Input[dsl.Artifact]) -> int:
    with open(data.path, "rb") as f:
        return len(f.read())


@dsl.pipeline
def w2(n: int) -> int:
    items = make(n=n)
    with dsl.ParallelFor(items.output) as x:
        each = inc(x=x)
    return total(xs=dsl.Collected(each.output)).output


@dsl.pipeline
def w3(n: int) -> int:
    return size_of(data=make_bytes(n=n).outputs["data"]).output


def chain(steps: int):
    """W1: a pipeline of ``steps`` chained ``inc`` tasks."""

    @dsl.pipeline
    def w1(n: int) -> int:
        x = inc(x=n)
        for _ in range(steps - 1):
            x = inc(x=x.output)
        return x.output

    return w1


def count_lookups() -> dict[str, int]:
    """Count the local cache's hits and misses (a wrapper around its lookup)."""
    counts = {"hits": 0, "misses": 0}
    get = local_cache.LocalCache.get

    def counted(self, *args, **kwargs):
        out = get(self, *args, **kwargs)
        counts["misses" if out is None else "hits"] += 1
        return out

    local_cache.LocalCache.get = counted
    return counts


if __name__ == "__main__":
    workload, directory, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
    local.init(runner=local.SubprocessRunner(use_venv=False),
               pipeline_root=os.path.join(directory, "outputs"),
               enable_caching=True, cache_root=os.path.join(directory, "cache"))
    counts = count_lookups()
    if workload == "w1":
        run = chain(size)(n=0)
    else:
        run = {"w2": w2, "w3": w3}[workload](n=size)
    print(json.dumps({"result": run.output, "cached": counts["hits"],
                      "executed": counts["misses"]}))
