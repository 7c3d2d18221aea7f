"""gc beside running runs: a run leases what it serves or writes, and gc honours live leases.

Item 1: gc (grace 0) while an inline run is paused inside a step, after being served
hits, must not remove what the run was served. Items 1+2 together: ``ductwork gc`` killed
(SIGKILL) at random points beside pipelines running over and over on the same store never
loses an output of a run recorded ``succeeded``, and every run's result is right.
Real SQLite, real files, real processes; nothing is mocked.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from ductwork import pipeline, step
from ductwork.runtime.records.gc import collect
from ductwork.runtime.records.history import get_run, open_store, runs
from ductwork.runtime.records.runstore import forget_runstore


@step
def make(n: int) -> list[int]:
    return list(range(n))


@step
def total(xs: list[int]) -> int:
    return sum(xs)


@step(cache=False)
def hold(x: int, flag: str) -> int:
    """Say we are inside, then wait for the test to let go."""
    open(flag + ".inside", "w").close()
    deadline = time.monotonic() + 30
    while not os.path.exists(flag) and time.monotonic() < deadline:
        time.sleep(0.01)
    return x


@pipeline
def paused(n: int = 4, flag: str = ""):
    xs = make(n)
    t = total(xs)
    return {"xs": xs, "t": t, "held": hold(t, flag)}


def test_gc_while_a_run_is_paused_after_hits_keeps_what_it_was_served(tmp_path):
    store = str(tmp_path / "s")
    first = tmp_path / "first"
    first.touch()
    paused.run(n=4, flag=str(first), store=store)  # make and total are now cached
    flag = tmp_path / "second"
    result: dict = {}

    def second() -> None:
        try:
            result["run"] = paused.run(n=4, flag=str(flag), store=store)
        except BaseException as exc:  # reported by the assertions below
            result["error"] = exc

    thread = threading.Thread(target=second)
    thread.start()
    deadline = time.monotonic() + 30
    while not (tmp_path / "second.inside").exists():
        assert time.monotonic() < deadline and thread.is_alive(), result
        time.sleep(0.01)
    report = collect(store, keep_last=0, grace=0)  # forget the first run; grace 0
    flag.touch()
    thread.join(30)
    assert "error" not in result, result
    run = result["run"]
    assert run.status == "succeeded"
    assert run.steps["make"].cached and run.steps["total"].cached
    assert report.runs_removed == 1
    assert report.kept_by_lease > 0  # the running run's leases kept its hits
    forget_runstore(open_store(store))
    back = get_run(run.id, store=store)  # read from the store, not from memory
    for record in back.steps.values():
        assert record.outputs  # every output loads
    assert back.outputs == {"xs": [0, 1, 2, 3], "t": 6, "held": 6}


LOOPER = r'''
import json, os, random, sys, time
sys.path.insert(0, sys.argv[1])
from crashflow import flow
store, stop, seed = sys.argv[2], sys.argv[3], int(sys.argv[4])
rng = random.Random(seed)
while not os.path.exists(stop):
    n, k = rng.randint(1, 6), rng.randint(1, 3)
    try:
        run = flow.run(n=n, k=k, store=store)
        out = {"id": run.id, "status": str(run.status), "outputs": run.outputs, "n": n, "k": k}
    except Exception as exc:
        out = {"error": f"{type(exc).__name__}: {exc}", "n": n, "k": k}
    print("REPORT " + json.dumps(out), flush=True)
'''

FLOW = '''
from ductwork import pipeline, step

@step
def make(n: int) -> list[int]:
    return list(range(n))

@step
def blob(n: int) -> bytes:
    return bytes([n]) * 50_000

@step
def total(xs: list[int], b: bytes) -> int:
    return sum(xs) + len(b)

@step
def scale(t: int, k: int) -> int:
    return t * k

@pipeline
def flow(n: int = 3, k: int = 1):
    xs = make(n)
    return {"xs": xs, "scaled": scale(total(xs, blob(n)), k)}
'''


def expected(n: int, k: int) -> dict:
    return {"xs": list(range(n)), "scaled": (sum(range(n)) + 50_000) * k}


@pytest.mark.slow
def test_killing_gc_at_random_points_beside_running_pipelines_loses_nothing(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "crashflow.py").write_text(textwrap.dedent(FLOW))
    (tmp_path / "looper.py").write_text(LOOPER)
    store, stop = str(tmp_path / "store"), tmp_path / "stop"
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    loopers = [subprocess.Popen([sys.executable, str(tmp_path / "looper.py"), str(src), store,
                                 str(stop), str(seed)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=env)
               for seed in (1, 2)]
    rng = random.Random(12)
    kills = 0
    try:
        time.sleep(2.0)  # let the loopers get going
        started = time.monotonic()
        for i in range(20):
            gc_proc = subprocess.Popen(
                [sys.executable, "-m", "ductwork", "gc", "--store", store, "--keep-last",
                 str(i % 3), "--grace", "0"],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
            # From 50 ms to 1 s, mostly short: a gc of this store now takes well under a
            # second (a first run's imports got cheaper), and the kills must land inside it.
            time.sleep(0.05 * 20 ** rng.random())
            if gc_proc.poll() is None:
                gc_proc.send_signal(signal.SIGKILL)
                kills += 1
            gc_proc.wait(30)
            assert time.monotonic() - started < 75, "the crash loop is too slow"
    finally:
        stop.touch()
        outs = [p.communicate(timeout=60) for p in loopers]
    reports = [json.loads(line[len("REPORT "):]) for out, _ in outs
               for line in out.splitlines() if line.startswith("REPORT ")]
    assert kills > 0 and len(reports) > 10, (kills, len(reports), [e for _, e in outs])
    wrong = [r for r in reports if r.get("status") != "succeeded"
             or r["outputs"] != expected(r["n"], r["k"])]
    assert not wrong, wrong
    forget_runstore(open_store(store))
    for listed in runs(store=store, limit=None):
        if listed.status != "succeeded":
            continue
        run = get_run(listed.id, store=store)
        for record in run.steps.values():
            assert record.outputs, record.id  # loads, verified by digest
        assert run.outputs == expected(run.params["n"], run.params["k"]), run.id
    # A fresh rerun of every combination is right.
    sys.path.insert(0, str(src))
    try:
        from crashflow import flow
        for n in range(1, 7):
            assert flow.run(n=n, k=2, store=store).outputs == expected(n, 2)
    finally:
        sys.path.remove(str(src))
        sys.modules.pop("crashflow", None)
        forget_runstore(open_store(store))
