"""W1-W3 in flytekit, local execution and its local cache: ``flytekit_prog.py WORKLOAD DIR SIZE``.

Every task is ``@task(cache=True, cache_version="1")``; workflows run locally by calling them
(no cluster, no container). flytekit's local cache is a diskcache under ``~/.flyte``, so the
harness points HOME at DIR (and TMPDIR at DIR/tmp, where local runs put their raw data): a
second program over the same DIR is the warm run. W1's workflow is built for SIZE steps (a
workflow's shape is fixed when it is compiled); W2 is a ``map_task`` over the cached ``inc``;
W3's ``bytes`` have no flytekit type of their own, so flytekit pickles them to a file
(FlytePickle). Prints one JSON line: the result and the local-cache hits and misses.
"""

import json
import sys

from flytekit import map_task, task, workflow
from flytekit.core.local_cache import LocalTaskCache


@task(cache=True, cache_version="1")
def inc(x: int) -> int:
    return x + 1


@task(cache=True, cache_version="1")
def make(n: int) -> list[int]:
    return list(range(n))


@task(cache=True, cache_version="1")
def total(xs: list[int]) -> int:
    return sum(xs)


@task(cache=True, cache_version="1")
def make_bytes(n: int) -> bytes:
    return bytes(range(256)) * (n // 256)


@task(cache=True, cache_version="1")
def size_of(data: bytes) -> int:
    return len(data)


@workflow
def w2(n: int) -> int:
    return total(xs=map_task(inc)(x=make(n=n)))


@workflow
def w3(n: int) -> int:
    return size_of(data=make_bytes(n=n))


def chain(steps: int):
    """W1: a workflow of ``steps`` chained ``inc`` tasks."""

    @workflow
    def w1(n: int) -> int:
        x = n
        for _ in range(steps):
            x = inc(x=x)
        return x

    return w1


def count_lookups() -> dict[str, int]:
    """Count the local cache's hits and misses (a wrapper around its lookup)."""
    counts = {"hits": 0, "misses": 0}
    get = LocalTaskCache.get

    def counted(*args, **kwargs):
        out = get(*args, **kwargs)
        counts["misses" if out is None else "hits"] += 1
        return out

    LocalTaskCache.get = staticmethod(counted)
    return counts


if __name__ == "__main__":
    workload, directory, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
    counts = count_lookups()
    if workload == "w1":
        result = chain(size)(n=0)
    elif workload == "w2":
        result = w2(n=size)
    else:
        result = w3(n=size)
    print(json.dumps({"result": result, "cached": counts["hits"], "executed": counts["misses"]}))
