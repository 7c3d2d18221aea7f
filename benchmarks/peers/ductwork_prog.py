"""W1-W3 in ductwork, one whole program: ``python ductwork_prog.py w1|w2|w3 DIR SIZE``.

DIR holds the artifact store (``DIR/store``); a second program over the same DIR is the warm
run. SIZE: steps in the chain (w1), elements of the map (w2), bytes of the artifact (w3).
Prints one JSON line: the pipeline's result and how many steps were served from the cache.
"""

import json
import os
import sys

from ductwork import pipeline, step


@step
def inc(x: int) -> int:
    return x + 1


@pipeline
def w1(n: int = 50):
    x = 0
    for _ in range(n):
        x = inc(x)
    return x


@step
def make(n: int) -> list[int]:
    return list(range(n))


@step
def total(xs: list[int]) -> int:
    return sum(xs)


@pipeline
def w2(n: int = 100):
    return total(inc.map(make(n)))


@step
def make_bytes(n: int) -> bytes:
    return bytes(range(256)) * (n // 256)


@step
def size_of(data: bytes) -> int:
    return len(data)


@pipeline
def w3(n: int = 1024):
    return size_of(make_bytes(n))


if __name__ == "__main__":
    workload, directory, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
    pipe = {"w1": w1, "w2": w2, "w3": w3}[workload]
    run = pipe.run(n=size, backend="inline", store=os.path.join(directory, "store"))
    assert run.status == "succeeded", run
    hits = sum(bool(s.cached) for s in run.steps.values())
    print(json.dumps({"result": run.outputs, "cached": hits, "steps": len(run.steps)}))
