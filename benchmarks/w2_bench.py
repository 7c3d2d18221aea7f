"""Benchmark W2 -- a 100-element map -- as whole programs, and the process backend's dispatch.

Prints one row per measurement: its value, the floor it is compared with, the
ratio, the target and PASS / MISS ("info" rows have no target).

W2   one step returns ``list(range(100))``, ``inc.map`` runs a trivial step (``x + 1``)
     on each element, one reduce (``sum``) ends it. Measured as a WHOLE PROGRAM:
     ``python w2_main.py BACKEND STORE`` in a fresh interpreter (the pipeline lives
     in a module written to a temp dir), wall time from spawn to exit, medians of
     interleaved repeats.
       cold  an empty store (a fresh tmp dir per repeat)
       warm  a second program on the same store: every step is a hit
     on ``inline`` and on ``process`` with ``max_workers=2``. Floors:
     ``python -c pass`` and ``python -c "import ductwork"``; and, for reference,
     the same program in plain Python with ``concurrent.futures.ProcessPoolExecutor(2)``.
dispatch
     the process backend's cost per element, in this (already warm) process: a
     ``map`` of N (200) elements over a ``cache=False`` step, so every element is
     sent to a worker, against ``ProcessPoolExecutor(2)`` running the same trivial
     function (pool warmed up). Workers are started by each run (a backend lives
     for one run), so the per-element cost is taken once both workers are up (the
     parent's driver threads time every job); the slope between a 2-element and an
     N-element run and a whole run / N are shown too. Worker start-up is the first
     job of a fresh worker minus a later job; the first run in a fresh program
     minus a later one gives the one-time costs.

Subprocesses get .pyc files in a private cache dir (as users run it; the
source tree is not written to); when PYTHONDONTWRITEBYTECODE is set here, the
cold process program is also shown as this environment runs it. Stores and
modules go to temporary directories that are removed afterwards.

    python benchmarks/w2_bench.py [--quick] [--only programs,dispatch] [--n 200] [--dir DIR]
    python benchmarks/w2_bench.py --profile   # where the process backend's time goes
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from _table import (
    NOTES,
    WallTimers,
    add,
    add_json_option,
    load,
    print_table,
    ratio,
    scratch,
)

W2_N = 100

# --- the table (the format of pipeline_bench.py) ---------------------------------------------












def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f} ms"


def us(seconds: float) -> str:
    return f"{seconds * 1e6:.0f} us"




def spread(xs: list[float], unit: Callable[[float], str] = ms) -> str:
    if not xs:
        return "n/a"
    return f"median {unit(statistics.median(xs))} (min {unit(min(xs))}, max {unit(max(xs))})"






# --- the programs ----------------------------------------------------------------------------

PIPELINE_SOURCE = '''\
from ductwork import pipeline, step


@step
def make(n: int) -> list[int]:
    return list(range(n))


@step
def inc(x: int) -> int:
    return x + 1


@step
def total(xs: list[int]) -> int:
    return sum(xs)


@pipeline
def w2(n: int = 100):
    return total(inc.map(make(n)))


# the dispatch benchmark: every element goes to a worker
@step(cache=False)
def inc_nc(x: int) -> int:
    return x + 1


@pipeline
def dispatch(n: int = 200):
    return total(inc_nc.map(make(n)))


def plain_inc(x):  # the same work for ProcessPoolExecutor (picklable by reference)
    return x + 1
'''

MAIN_SOURCE = '''\
import json
import sys
import time

t0 = time.perf_counter()
import w2_pipeline  # noqa: E402  (imports ductwork)

t1 = time.perf_counter()
backend, store = sys.argv[1], sys.argv[2]
options = {"max_workers": 2} if backend == "process" else {}
run = w2_pipeline.w2.run(backend=backend, store=store, **options)
t2 = time.perf_counter()
assert run.status == "succeeded" and run.outputs == sum(range(1, 101)), run
cached = sorted({s.cached for s in run.steps.values()})
print(json.dumps({"import": t1 - t0, "run": t2 - t1, "cached": cached}))
'''

PLAIN_SOURCE = '''\
from concurrent.futures import ProcessPoolExecutor


def make(n):
    return list(range(n))


def inc(x):
    return x + 1


if __name__ == "__main__":
    with ProcessPoolExecutor(2) as pool:
        assert sum(pool.map(inc, make(100))) == sum(range(1, 101))
'''


PHASES_SOURCE = '''\
import json
import sys
import time

t0 = time.perf_counter()
import w2_pipeline  # noqa: E402  (imports ductwork)

t1 = time.perf_counter()
import importlib  # noqa: E402

LAZY = ["ductwork.backends.inline", "ductwork.runtime.records.history",  # what the first run
        "ductwork.runtime.ui.progress", "ductwork.runtime.runner",     # imports lazily (a
        "ductwork.runtime.records.runstore", "ductwork.runtime.engine.scheduler"]  # moved one
if sys.argv[1] == "process":                                           # is left to the run)
    LAZY += ["cloudpickle", "ductwork.backends.process"]
for name in LAZY:
    try:
        importlib.import_module(name)
    except ImportError:
        pass
t2 = time.perf_counter()
backend, store = sys.argv[1], sys.argv[2]
options = {"max_workers": 2} if backend == "process" else {}
run = w2_pipeline.w2.run(backend=backend, store=store, **options)
t3 = time.perf_counter()
assert run.status == "succeeded"
print(json.dumps({"import ductwork + pipeline module": t1 - t0,
                  "lazy runtime imports (done at the first run)": t2 - t1,
                  "w2.run() without them": t3 - t2}))
'''


FIRST_SOURCE = '''\
import json
import sys
import time

import w2_pipeline

n, store = int(sys.argv[1]), sys.argv[2]
times = []
for _ in range(4):
    t = time.perf_counter()
    run = w2_pipeline.dispatch.run(n=n, backend="process", max_workers=2, store=store)
    times.append(time.perf_counter() - t)
    assert run.status == "succeeded"
print(json.dumps(times))
'''


class Programs:
    """The W2 program files in a temp dir, and the environment the interpreters get."""

    def __init__(self, base: str | None, pyc: bool) -> None:
        self.dir = tempfile.mkdtemp(prefix="w2-bench-prog-", dir=base)
        for name, source in (("w2_pipeline.py", PIPELINE_SOURCE), ("w2_main.py", MAIN_SOURCE),
                             ("w2_plain.py", PLAIN_SOURCE), ("w2_phases.py", PHASES_SOURCE),
                             ("w2_first.py", FIRST_SOURCE)):
            with open(os.path.join(self.dir, name), "w") as f:
                f.write(source)
        self.env = dict(os.environ)
        self.env.pop("DUCTWORK_STORE", None)
        if pyc:
            # .pyc files as users have them, in a private dir: nothing lands in the source
            # tree, and PYTHONDONTWRITEBYTECODE, if set here, is overridden (workers inherit).
            self.env.pop("PYTHONDONTWRITEBYTECODE", None)
            self.env["PYTHONPYCACHEPREFIX"] = os.path.join(self.dir, "pyc")

    def spawn(self, *argv: str) -> tuple[float, str]:
        t = time.perf_counter()
        done = subprocess.run([sys.executable, *argv], env=self.env, capture_output=True,
                              text=True)
        seconds = time.perf_counter() - t
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr}")
        return seconds, done.stdout

    def w2(self, backend: str, store: str, cached: bool) -> tuple[float, dict[str, Any]]:
        seconds, out = self.spawn(os.path.join(self.dir, "w2_main.py"), backend, store)
        info = json.loads(out.strip().splitlines()[-1])
        assert info["cached"] == [cached], (backend, info)
        return seconds, info

    def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def bench_programs(base: str | None, repeat: int) -> None:
    print("W2 programs: spawning interpreters", file=sys.stderr, flush=True)
    samples: dict[str, list[float]] = {}
    inner: dict[str, list[dict[str, Any]]] = {}

    def note(name: str, seconds: float, info: dict[str, Any] | None = None) -> None:
        samples.setdefault(name, []).append(seconds)
        if info is not None:
            inner.setdefault(name, []).append(info)

    progs = Programs(base, pyc=True)
    nopyc = Programs(base, pyc=False) if os.environ.get("PYTHONDONTWRITEBYTECODE") else None
    plain = os.path.join(progs.dir, "w2_plain.py")
    try:
        with scratch(base, "w2-stores-") as stores:
            # unmeasured: .pyc files written, the page cache filled
            for i in range(2):
                progs.spawn("-c", "pass"), progs.spawn("-c", "import ductwork"), progs.spawn(plain)
                for backend in ("inline", "process"):
                    store = os.path.join(stores, f"warmup-{backend}-{i}")
                    progs.w2(backend, store, cached=False)
                    progs.w2(backend, store, cached=True)
            for i in range(repeat):  # interleaved: drift on a shared machine hits all alike
                note("pass", progs.spawn("-c", "pass")[0])
                note("import", progs.spawn("-c", "import ductwork")[0])
                note("plain", progs.spawn(plain)[0])
                for backend in ("inline", "process"):
                    store = os.path.join(stores, f"{backend}-{i}")
                    note(f"{backend} cold", *progs.w2(backend, store, cached=False))
                    note(f"{backend} warm", *progs.w2(backend, store, cached=True))
                if nopyc is not None:
                    store = os.path.join(stores, f"nopyc-{i}")
                    note("nopyc cold", nopyc.w2("process", store, cached=False)[0])
                    note("nopyc warm", nopyc.w2("process", store, cached=True)[0])
    finally:
        progs.close()
        if nopyc is not None:
            nopyc.close()

    med = {k: statistics.median(v) for k, v in samples.items()}
    bare = med["pass"]
    add("python -c pass (interpreter start, the floor)", ms(bare))
    add("python -c 'import ductwork'", ms(med["import"]), ms(bare), ratio(med["import"], bare))
    add("plain Python W2: ProcessPoolExecutor(2) program", ms(med["plain"]), ms(bare),
        ratio(med["plain"], bare))
    for backend in ("inline", "process"):
        cold, warm = med[f"{backend} cold"], med[f"{backend} warm"]
        target = "<= 1 s" if backend == "process" else "-"
        add(f"W2 cold, {backend}: whole program", ms(cold), ms(bare), ratio(cold, bare), target,
            cold <= 1.0 if backend == "process" else None)
        add(f"W2 warm, {backend}: whole program - python -c pass", ms(warm - bare), ms(bare),
            ratio(warm, bare), "<= 200 ms", warm - bare <= 0.2)
    if nopyc is not None:
        cold, warm = med["nopyc cold"], med["nopyc warm"]
        add("W2 cold, process, no .pyc (PYTHONDONTWRITEBYTECODE is set)", ms(cold), ms(bare),
            ratio(cold, bare))
        add("W2 warm, process, no .pyc: whole program - python -c pass", ms(warm - bare),
            ms(bare), ratio(warm, bare))

    NOTES.append(
        f"W2 programs: {repeat} interleaved repeats after 2 unmeasured rounds; wall time from "
        "spawn to exit, with .pyc files. " + "; ".join(
            f"{k} {spread(v)}" for k, v in samples.items()) + "."
    )
    for name in ("inline cold", "inline warm", "process cold", "process warm"):
        infos = inner[name]
        imp = statistics.median(x["import"] for x in infos)
        run = statistics.median(x["run"] for x in infos)
        rest = med[name] - imp - run
        NOTES.append(
            f"W2 {name} program, medians: interpreter start + exit {ms(rest)} (python -c pass "
            f"{ms(bare)}), import of the pipeline module (ductwork) {ms(imp)}, "
            f"w2.run() {ms(run)} (min {ms(min(x['run'] for x in infos))})."
        )


# --- dispatch --------------------------------------------------------------------------------


class StepModule:
    """The pipeline module imported into this process (user code on a temp sys.path entry)."""

    def __init__(self, base: str | None) -> None:
        self.dir = tempfile.mkdtemp(prefix="w2-bench-mod-", dir=base)
        with open(os.path.join(self.dir, "w2_pipeline.py"), "w") as f:
            f.write(PIPELINE_SOURCE)
        sys.path.insert(0, self.dir)
        importlib.invalidate_caches()
        sys.modules.pop("w2_pipeline", None)
        self.module: Any = importlib.import_module("w2_pipeline")

    def close(self) -> None:
        with contextlib.suppress(ValueError):
            sys.path.remove(self.dir)
        sys.modules.pop("w2_pipeline", None)
        shutil.rmtree(self.dir, ignore_errors=True)


def run_dispatch(mod: Any, n: int, store: str, fresh_workers: bool = True) -> float:
    if fresh_workers:
        # Workers are kept between runs of a process; stopping them first makes each
        # measured run start its own, as a new program's first run does. (Not public API:
        # a ductwork without it has nothing to stop.)
        from ductwork.backends import process

        shutdown_pools = getattr(process, "shutdown_pools", None)
        if shutdown_pools is not None:
            shutdown_pools()
    t = time.perf_counter()
    run = mod.dispatch.run(n=n, backend="process", max_workers=2, store=store, progress=False)
    seconds = time.perf_counter() - t
    assert run.status == "succeeded" and run.outputs == n * (n + 1) // 2, run
    assert sum(1 for s in run.steps.values() if s.map_index is not None and not s.cached) == n
    return seconds


def pool_per_task(pool: ProcessPoolExecutor, fn: Any, n: int, in_flight: int | None) -> float:
    """Seconds per task for n tasks: all submitted at once, or at most ``in_flight`` at a time."""
    t = time.perf_counter()
    if in_flight is None:
        futures = [pool.submit(fn, i) for i in range(n)]
        results = [f.result() for f in futures]
    else:
        results, pending, it = [], set(), iter(range(n))
        for i in it:
            pending.add(pool.submit(fn, i))
            if len(pending) >= in_flight:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                results += [f.result() for f in done]
        results += [f.result() for f in pending]
    seconds = time.perf_counter() - t
    assert sorted(results) == list(range(1, n + 1))
    return seconds / n


class JobTimes:
    """Wraps ``_Worker._do`` (in this process only): each job's round trip, as the parent's
    driver thread sees it, and whether it started its worker. Costs ~1 us a job."""

    def __init__(self) -> None:
        self.first: list[float] = []
        self.later: list[float] = []
        self.steady: list[float] = []  # per run: seconds per element once every worker is up
        self._run: list[tuple[float, float, bool]] = []
        self._lock = threading.Lock()

    def end_run(self) -> None:
        jobs, self._run = self._run, []
        up = max((end for _, end, fresh in jobs if fresh), default=None)
        after = sorted(end for _, end, fresh in jobs if not fresh and up is not None and end > up)
        if up is not None and len(after) >= 2:
            self.steady.append((after[-1] - up) / len(after))

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        from ductwork.backends import process

        # A private method: where the backend no longer has it, the rows that need it say n/a.
        original = getattr(getattr(process, "_Worker", None), "_do", None)
        if original is None:
            yield
            return

        def _do(worker: Any, *args: Any, _f: Any = original) -> Any:
            fresh = worker.process is None or worker.process.poll() is not None
            t = time.perf_counter()
            try:
                return _f(worker, *args)
            finally:
                end = time.perf_counter()
                with self._lock:
                    (self.first if fresh else self.later).append(end - t)
                    self._run.append((t, end, fresh))

        process._Worker._do = _do
        try:
            yield
        finally:
            process._Worker._do = original


@contextlib.contextmanager
def user_env(base: str | None) -> Iterator[None]:
    """Workers (which inherit this environment) get .pyc files, as users have them."""
    saved = dict(os.environ)
    pyc = tempfile.mkdtemp(prefix="w2-bench-pyc-", dir=base)
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    os.environ.pop("DUCTWORK_STORE", None)
    os.environ["PYTHONPYCACHEPREFIX"] = pyc
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)
        shutil.rmtree(pyc, ignore_errors=True)


def first_run_cost(base: str | None, n: int, repeat: int) -> tuple[list[float], list[float]]:
    """In fresh programs (with .pyc): the first process run, and later runs, in seconds."""
    progs = Programs(base, pyc=True)
    script = os.path.join(progs.dir, "w2_first.py")
    firsts, laters = [], []
    try:
        with scratch(base, "w2-first-") as stores:
            progs.spawn(script, str(n), os.path.join(stores, "warmup"))  # .pyc files written
            for i in range(repeat):
                times = json.loads(progs.spawn(script, str(n), os.path.join(stores, str(i)))[1])
                firsts.append(times[0])
                laters.append(statistics.median(times[1:]))
    finally:
        progs.close()
    return firsts, laters


def bench_dispatch(base: str | None, n: int, repeat: int) -> None:
    print(f"dispatch: {n}-element maps in this process", file=sys.stderr, flush=True)
    mod_holder = StepModule(base)
    mod = mod_holder.module
    jobs = JobTimes()
    try:
        with scratch(base, "w2-dispatch-") as d, user_env(base):
            store = os.path.join(d, "store")
            # unmeasured: lazy imports, the SQLite file, fingerprints, the workers' .pyc files,
            # the one cold run of make and total (later runs hit them)
            run_dispatch(mod, n, store)
            run_dispatch(mod, n, store)
            big, small = [], []
            with jobs.active():
                for _ in range(repeat):
                    gc.collect()
                    small.append(run_dispatch(mod, 2, store))
                    jobs.end_run()
                    gc.collect()
                    big.append(run_dispatch(mod, n, store))
                    jobs.end_run()
    finally:
        mod_holder.close()

    # The floor: the same trivial function in a warmed-up ProcessPoolExecutor(2).
    sys.path.insert(0, d_pool := tempfile.mkdtemp(prefix="w2-bench-pool-", dir=base))
    try:
        with open(os.path.join(d_pool, "w2_plain_fn.py"), "w") as f:
            f.write("def plain_inc(x):\n    return x + 1\n")
        importlib.invalidate_caches()
        fn = importlib.import_module("w2_plain_fn").plain_inc
        with ProcessPoolExecutor(2) as pool:
            pool_per_task(pool, fn, n, None)  # workers started and warmed
            pool_per_task(pool, fn, n, 2)
            all_at_once, two = [], []
            for _ in range(repeat):
                all_at_once.append(pool_per_task(pool, fn, n, None))
                two.append(pool_per_task(pool, fn, n, 2))
    finally:
        sys.path.remove(d_pool)
        sys.modules.pop("w2_plain_fn", None)
        shutil.rmtree(d_pool, ignore_errors=True)
    firsts, laters = first_run_cost(base, n, max(3, repeat // 3))

    b, s = statistics.median(big), statistics.median(small)
    slope = (b - s) / (n - 2)
    floor = statistics.median(all_at_once)
    floor2 = statistics.median(two)
    if jobs.steady:
        steady = statistics.median(jobs.steady)
        add(f"process backend: per element, both workers up ({len(jobs.steady)} of {repeat} "
            "runs)", us(steady), us(floor), ratio(steady, floor))
    else:
        add("process backend: per element, both workers up", "n/a (see notes)")
    add(f"process backend: {n}-element map, run wall time / {n}", us(b / n), us(floor),
        ratio(b / n, floor))
    add(f"process backend: per element, slope ({n} - 2 elements; noisy)", us(slope), us(floor),
        ratio(slope, floor))
    add("ProcessPoolExecutor(2), submit+result per task (the floor)", us(floor))
    add("ProcessPoolExecutor(2), <= 2 tasks in flight (ductwork's capacity)", us(floor2),
        us(floor), ratio(floor2, floor))
    if not jobs.later:
        later = 0.0
        add("process backend: one job's round trip, one worker (later jobs)", "n/a")
    else:
        later = statistics.median(jobs.later)
        add("process backend: one job's round trip, one worker (later jobs)", us(later))
    if not jobs.later:
        add("worker start-up (first job of a fresh worker - a later job)", "n/a")
    elif jobs.first:
        add("worker start-up (first job of a fresh worker - a later job)",
            ms(statistics.median(jobs.first) - later))
    else:  # workers are kept between runs of a process: only its first run starts them
        add("worker start-up, runs after the first in a process", "0 (workers kept)")
    first_cost = statistics.median(f - x for f, x in zip(firsts, laters, strict=True))
    add(f"first {n}-element run in a program - a later one (one-time costs)", ms(first_cost))
    NOTES.append(
        f"dispatch: 'both workers up' = (end of the last job - the moment the second worker "
        f"answered its first job) / jobs ended in between, per run: {spread(jobs.steady, us)}. "
        f"Runs in which one worker finished the whole map before the other was up "
        f"({repeat - len(jobs.steady)} of {repeat}) have no such window. It leaves out "
        "per-element work before the first dispatch (StepRun records, Job objects) and after "
        "the last (SQLite rows); the slope has them, but the start-up noise of two workers "
        "(tens of ms) swamps it."
    )
    NOTES.append(
        f"dispatch: {n}-element run {spread(big)}; 2-element run {spread(small)}; "
        f"ProcessPoolExecutor per task {spread(all_at_once, us)} (all submitted), "
        f"{spread(two, us)} (2 in flight). A ProcessBackend lives for one run, so every run "
        "starts its workers: the 2-element run is mostly that."
    )
    NOTES.append(
        f"dispatch: job round trip as the parent's driver thread sees it (_Worker._do): first "
        f"job of a fresh worker {spread(jobs.first)} ({len(jobs.first)} workers), later jobs "
        f"{spread(jobs.later, us)}; workers get .pyc files (PYTHONPYCACHEPREFIX)."
    )
    NOTES.append(
        f"dispatch: first run in a fresh program (4 runs each, {len(firsts)} programs, with "
        f".pyc) {spread(firsts)}; later runs there {spread(laters)}. The first run pays the "
        "runtime's lazy imports (cloudpickle, the scheduler, SQLite...), creating runs.sqlite, "
        "fingerprints, and running make and total once."
    )


# --- profile ---------------------------------------------------------------------------------

# (label, module, attribute, depth). Depth 0 on the main thread adds up to the run; "T" rows
# run on the parent's driver threads (one per worker, two at once), "W" rows in the workers.
PARENT_TIMED = [
    ("Pipeline.trace", "ductwork.dsl.pipeline", "Pipeline.trace", 0),
    ("RunStore.begin_run", "ductwork.runtime.records.runstore", "RunStore.begin_run", 0),
    ("Scheduler._start_map (per-element setup)", "ductwork.runtime.engine.scheduler",
     "Scheduler._start_map", 0),
    ("_lookup: cache key + index lookup", "ductwork.runtime.engine.scheduler",
     "Scheduler._lookup", 1),
    ("input_components (hash the element)", "ductwork.runtime.keys.cache_key",
     "input_components", 2),
    ("step_key", "ductwork.runtime.keys.cache_key", "step_key", 2),
    ("ArtifactStore.get_key (miss)", "ductwork.runtime.store.artifacts",
     "ArtifactStore.get_key", 2),
    ("Scheduler._job (BoundArguments, Job)", "ductwork.runtime.engine.scheduler",
     "Scheduler._job", 1),
    ("Scheduler._record (StepRun)", "ductwork.runtime.engine.scheduler", "Scheduler._record", 1),
    ("Scheduler._loop (dispatch + wait)", "ductwork.runtime.engine.scheduler",
     "Scheduler._loop", 0),
    ("ProcessBackend.submit", "ductwork.backends.process", "ProcessBackend.submit", 1),
    ("futures.wait (idle: waiting for a result)", "ductwork.runtime.engine.scheduler", "wait", 1),
    ("Scheduler._finish (record; starts dependents: W2 cold's _start_map)",
     "ductwork.runtime.engine.scheduler", "Scheduler._finish", 1),
    ("Scheduler._resolve_result", "ductwork.runtime.engine.scheduler",
     "Scheduler._resolve_result", 0),
    ("ArtifactStore.get (result, reduce input)", "ductwork.runtime.store.artifacts",
     "ArtifactStore.get", 1),
    ("ProcessBackend.close (stop workers)", "ductwork.backends.process", "ProcessBackend.close",
     0),
    ("GitState.result (join git probe)", "ductwork.runtime.records.provenance",
     "GitState.result", 0),
    ("RunStore.finish_run (SQLite, one row per element)", "ductwork.runtime.records.runstore",
     "RunStore.finish_run", 0),
    ("T _Worker._do (one job's round trip)", "ductwork.backends.process", "_Worker._do", 0),
    ("T _Worker._spawn (Popen)", "ductwork.backends.process", "_Worker._spawn", 1),
    ("T step_payload (pickle the step, once per run)", "ductwork.backends.process",
     "ProcessBackend.step_payload", 1),
    ("T _asdict (Job fields)", "ductwork.backends.process", "_asdict", 1),
    ("T cloudpickle.dumps (the Job; the step once per run)", "cloudpickle", "dumps", 1),
    ("T Connection.send", "multiprocessing.connection", "_ConnectionBase.send", 1),
    ("T Connection.poll (waiting for the worker)", "multiprocessing.connection",
     "_ConnectionBase.poll", 1),
    ("T Connection.recv_bytes", "multiprocessing.connection", "_ConnectionBase.recv_bytes", 1),
    ("T cloudpickle.loads (the JobResult)", "cloudpickle", "loads", 1),
    ("ArtifactStore.put in the parent (none: workers write)", "ductwork.runtime.store.artifacts",
     "ArtifactStore.put", 1),
]

# Run in each worker by a probe script that then calls ductwork.runtime.engine.worker.main().
WORKER_PROBE = r'''
import json, os, sys, threading, time
T_EXEC = float(os.environ.pop("W2_PROBE_T0"))
T_TOP = time.time()
OUT = os.path.join(os.environ["W2_PROBE_DIR"], f"worker-{os.getpid()}.json")

t = time.perf_counter()
import cloudpickle
import multiprocessing.connection as mpc
import ductwork.runtime.engine.capture as capture
import ductwork.runtime.engine.job as execute
import ductwork.runtime.store.artifacts as store
import ductwork.runtime.engine.worker as worker
T_IMPORTS = time.perf_counter() - t
# The worker's own length-prefixed Channel where it has one, else multiprocessing's.
CONN = getattr(worker, "Channel", mpc.Connection)
SEND = "send" if CONN is not mpc.Connection else "send_bytes"

TIMED = [
    ("Connection.recv (idle: waiting for the next job)", CONN, "recv", 0),
    ("cloudpickle.loads (step once, Job)", cloudpickle, "loads", 0),
    ("execute (the job)", execute, "execute", 0),
    ("resolve_refs (args, kwargs)", execute, "resolve_refs", 1),
    ("call (context, capture, fn, check)", execute, "call", 1),
    ("capture_fds enter+exit (memfd, dup2)", capture, "capture_fds", 2),
    ("check_outputs", execute, "check_outputs", 2),
    ("store_outputs", execute, "store_outputs", 1),
    ("ArtifactStore.put", store.ArtifactStore, "put", 2),
    ("ArtifactStore.put_key", store.ArtifactStore, "put_key", 2),
    ("cloudpickle.dumps (JobResult)", cloudpickle, "dumps", 0),
    ("Connection.send_bytes", CONN, SEND, 0),
]
stats = {"first": {}, "later": {}}
state = {"jobs": 0, "busy_from": None, "busy": {"first": 0.0, "later": 0.0}, "dump": 0.0,
         "busy_cpu": {"first": 0.0, "later": 0.0}, "busy_cpu_from": 0.0}
current = {}  # the parts of the job in progress, folded into stats when it is over


cpu_now = time.thread_time


def account(label, seconds, cpu):
    entry = current.setdefault(label, [0.0, 0, 0.0])
    entry[0] += seconds
    entry[1] += 1
    entry[2] += cpu


class TimedCM:
    def __init__(self, cm, label):
        self.cm, self.label = cm, label

    def __enter__(self):
        t, c = time.perf_counter(), cpu_now()
        try:
            return self.cm.__enter__()
        finally:
            account(self.label, time.perf_counter() - t, cpu_now() - c)

    def __exit__(self, *exc):
        t, c = time.perf_counter(), cpu_now()
        try:
            return self.cm.__exit__(*exc)
        finally:
            account(self.label, time.perf_counter() - t, cpu_now() - c)


def job_over(now):
    """Called as the worker starts waiting again: the job it answered is complete."""
    phase = "first" if state["jobs"] == 0 else "later"
    state["busy"][phase] += now - state["busy_from"]
    state["busy_cpu"][phase] += cpu_now() - state["busy_cpu_from"]
    for label, (t, n, c) in current.items():
        entry = stats[phase].setdefault(label, [0.0, 0, 0.0])
        entry[0] += t
        entry[1] += n
        entry[2] += c
    current.clear()
    state["jobs"] += 1
    state["dump"] += time.perf_counter() - now


def wrap(owner, name, label):
    original = getattr(owner, name)
    if name == "capture_fds":
        def wrapper(*a, **k):
            return TimedCM(original(*a, **k), label)
    elif name == "recv":
        def wrapper(*a, **k):
            if state["busy_from"] is not None:
                job_over(time.perf_counter())
            t = time.perf_counter()
            try:
                return original(*a, **k)
            finally:
                state["busy_from"] = time.perf_counter()
                state["busy_cpu_from"] = cpu_now()
                state["idle"] = state.get("idle", 0.0) + state["busy_from"] - t
    else:
        def wrapper(*a, **k):
            t, c = time.perf_counter(), cpu_now()
            try:
                return original(*a, **k)
            finally:
                account(label, time.perf_counter() - t, cpu_now() - c)
    setattr(owner, name, wrapper)


def dump():
    with open(OUT + ".tmp", "w") as f:
        json.dump({"exec_to_top": T_TOP - T_EXEC, "imports": T_IMPORTS,
                   "stats": stats, "busy": state["busy"], "busy_cpu": state["busy_cpu"],
                   "jobs": state["jobs"], "cpu": time.process_time(), "dump": state["dump"],
                   "idle": state.get("idle", 0.0),
                   "order": [t[0] for t in TIMED], "depth": {t[0]: t[3] for t in TIMED}}, f)
    os.replace(OUT + ".tmp", OUT)


for label, owner, name, _ in TIMED:
    wrap(owner, name, label)
# The parent asks for the numbers (SIGUSR1) before it stops the worker (SIGKILL).
import signal
signal.signal(signal.SIGUSR1, lambda *a: dump())
worker.main()
'''


@dataclass
class Probe:
    out: str
    dump_seconds: float = 0.0  # the parent's wait for the workers' numbers: not ductwork's


@contextlib.contextmanager
def worker_probe(base: str | None) -> Iterator[Probe]:
    """Start workers through the probe script (this process's backend only; no file touched)."""
    from ductwork.backends import process

    # Kept workers would not go through the probe: every measure starts its own.
    getattr(process, "shutdown_pools", lambda: None)()

    with scratch(base, "w2-probe-") as d:
        probe = os.path.join(d, "w2_worker_probe.py")
        with open(probe, "w") as f:
            f.write(WORKER_PROBE)
        out = os.path.join(d, "out")
        os.mkdir(out)
        real = subprocess

        class Shim:
            def __getattr__(self, name: str) -> Any:
                return getattr(real, name)

            @staticmethod
            def Popen(argv: list[str], **kw: Any) -> Any:
                if argv[-2:] == ["-m", "ductwork.runtime.engine.worker"]:  # with -P or not
                    argv = [argv[0], probe]
                    kw["env"] = {**kw["env"], "W2_PROBE_DIR": out, "W2_PROBE_T0": repr(time.time())}
                return real.Popen(argv, **kw)

        close = process.ProcessBackend.close

        probe_state = Probe(out)

        def close_after_dump(backend: Any) -> None:
            # Workers are idle in recv now: ask each for its numbers, then stop them as usual.
            t = time.perf_counter()
            for worker in list(backend.pool.workers):  # the kept pool of this run
                proc = worker.process
                if proc is None or proc.poll() is not None:
                    continue
                path = os.path.join(out, f"worker-{proc.pid}.json")
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
                proc.send_signal(signal.SIGUSR1)
                deadline = time.monotonic() + 5
                while not os.path.exists(path) and time.monotonic() < deadline:
                    if proc.poll() is not None:
                        break
                    time.sleep(0.002)
            probe_state.dump_seconds += time.perf_counter() - t
            close(backend)

        # Workers are spawned by the pool's module (where there is one).
        spawner = sys.modules.get("ductwork.backends.process_pool", process)
        spawner.subprocess = Shim()  # type: ignore[attr-defined]
        process.ProcessBackend.close = close_after_dump  # type: ignore[method-assign]
        try:
            yield probe_state
        finally:
            spawner.subprocess = real  # type: ignore[attr-defined]
            process.ProcessBackend.close = close  # type: ignore[method-assign]


def read_probes(out: str) -> list[dict[str, Any]]:
    found = []
    for name in os.listdir(out):
        if name.endswith(".json"):
            with open(os.path.join(out, name)) as f:
                found.append(json.load(f))
    return found


def print_parent(title: str, timers: WallTimers, walls: list[float], per: int,
                 dump: float) -> None:
    runs = len(walls)
    wall = sum(walls) / runs
    print(f"\n=== {title}: parent process, mean of {runs} runs; wall and thread CPU ===")
    print("(T: on the driver threads, one per worker, two at once; the rest on the main thread)")
    print(f"{'part':<58} {'ms/run':>8} {'us/elem':>8} {'CPU us/el':>9} {'calls/run':>9}")
    for name, _, _, depth in PARENT_TIMED:
        t, n, c = timers.total[name], timers.calls[name], timers.cpu[name]
        if name.startswith("ProcessBackend.close"):
            t -= dump  # the probe's request for the workers' numbers
        if not n:
            continue
        print(f"{'  ' * depth + name:<58} {t / runs * 1e3:8.2f} {t / runs / per * 1e6:8.1f} "
              f"{c / runs / per * 1e6:9.1f} {n / runs:9.1f}")
    print(f"{'whole run (main thread)':<58} {wall * 1e3:8.2f} {wall / per * 1e6:8.1f}")


def print_workers(title: str, probes: list[dict[str, Any]], runs: int) -> None:
    print(f"\n=== {title}: inside the workers ({len(probes)} worker processes over {runs} runs) "
          "===")
    boot = [(p["exec_to_top"], p["imports"]) for p in probes]
    print("start-up, median over workers: Popen to the probe's first line (interpreter start) "
          f"{ms(statistics.median(b[0] for b in boot))}; then importing cloudpickle and "
          "ductwork.runtime.{execute,store,capture,worker} "
          f"{ms(statistics.median(b[1] for b in boot))}")
    order, depth = probes[0]["order"], probes[0]["depth"]
    for ph in ("first", "later"):
        count = len(probes) if ph == "first" else sum(p["jobs"] - 1 for p in probes)
        if count <= 0:
            continue
        busy = sum(p["busy"][ph] for p in probes) / count
        cpu = sum(p["busy_cpu"][ph] for p in probes) / count
        what = "first job of each worker" if ph == "first" else "later jobs"
        print(f"\n{what} ({count}): busy (recv returned -> next recv) {us(busy)}/job wall, "
              f"{us(cpu)}/job CPU")
        print(f"{'part':<54} {'us/job':>8} {'CPU us':>8} {'calls/job':>9}")
        for label in order:
            parts = [p["stats"][ph].get(label, [0, 0, 0]) for p in probes]
            t, n, c = (sum(x[i] for x in parts) for i in range(3))
            if n:
                print(f"{'  ' * depth[label] + label:<54} {t / count * 1e6:8.1f} "
                      f"{c / count * 1e6:8.1f} {n / count:9.2f}")
    cpu = sum(p["cpu"] for p in probes)
    jobs = sum(p["jobs"] for p in probes)
    idle = sum(p["idle"] for p in probes)
    probe = sum(p["dump"] for p in probes)
    print(f"\nworker CPU time, all of it (start-up included): {ms(cpu / runs)}/run, "
          f"{jobs / runs:.0f} jobs/run; idle in recv {ms(idle / runs)}/run (both workers); the "
          f"probe's own bookkeeping {us(probe / max(jobs, 1))}/job (in 'busy', not ductwork's)")


WORKER_IMPORTS = [
    ("python -c pass", "pass"),
    ("import ductwork", "import ductwork"),
    ("import cloudpickle", "import cloudpickle"),
    ("import ductwork.runtime.engine.job", "import ductwork.runtime.engine.job"),
    ("import ductwork.runtime.store.artifacts", "import ductwork.runtime.store.artifacts"),
    ("what a worker imports before its first job",
     "import cloudpickle, ductwork.runtime.engine.job, ductwork.runtime.store.artifacts, "
     "ductwork.runtime.engine.capture, ductwork.runtime.engine.worker"),
]


def profile_imports(base: str | None, repeat: int) -> None:
    """A worker's start-up is an interpreter start plus these imports (with .pyc files)."""
    progs = Programs(base, pyc=True)
    try:
        times: dict[str, list[float]] = {label: [] for label, _ in WORKER_IMPORTS}
        importable = []
        for label, code in WORKER_IMPORTS:
            try:  # a module moved since this list was written is left out
                progs.spawn("-c", code)
            except RuntimeError:
                print(f"(not importable here: {code})")
                continue
            progs.spawn("-c", code)
            importable.append((label, code))
        for _ in range(repeat):
            for label, code in importable:
                times[label].append(progs.spawn("-c", code)[0])
    finally:
        progs.close()
    bare = statistics.median(times["python -c pass"])
    print(f"\n=== worker start-up: interpreter starts, medians of {repeat}, with .pyc ===")
    for label, _ in importable:
        t = statistics.median(times[label])
        extra = "" if label == "python -c pass" else f"   (+{ms(t - bare)} above python -c pass)"
        print(f"{label:<44} {ms(t):>10}{extra}")


def profile_programs(base: str | None, repeat: int) -> None:
    """The W2 programs in phases: start, imports, the run, exit."""
    progs = Programs(base, pyc=True)
    phases = os.path.join(progs.dir, "w2_phases.py")
    try:
        with scratch(base, "w2-phases-") as stores:
            for i in range(2):
                for backend in ("inline", "process"):
                    store = os.path.join(stores, f"warmup-{backend}-{i}")
                    progs.spawn(phases, backend, store), progs.spawn(phases, backend, store)
            bare: list[float] = []
            found: dict[str, list[dict[str, float]]] = {}
            for i in range(repeat):
                bare.append(progs.spawn("-c", "pass")[0])
                for backend in ("inline", "process"):
                    store = os.path.join(stores, f"{backend}-{i}")
                    for state in ("cold", "warm"):
                        total, out = progs.spawn(phases, backend, store)
                        parts = json.loads(out.strip().splitlines()[-1])
                        parts["interpreter start + exit (the rest)"] = total - sum(parts.values())
                        parts["whole program"] = total
                        found.setdefault(f"{backend} {state}", []).append(parts)
    finally:
        progs.close()
    print(f"\n=== W2 programs in phases: medians of {repeat}, with .pyc; python -c pass "
          f"{ms(statistics.median(bare))} ===")
    names = list(found["inline cold"][0])
    print(f"{'phase':<48}" + "".join(f"{k:>15}" for k in found))
    for name in names:
        print(f"{name:<48}" + "".join(
            f"{ms(statistics.median(p[name] for p in v)):>15}" for v in found.values()))


def profile(base: str | None, n: int, runs: int) -> None:
    """Where the process backend's time goes: parent and worker side, per element."""
    print(f"load average {load()} on {os.cpu_count()} CPUs")
    profile_programs(base, max(5, runs))
    profile_imports(base, max(5, runs))
    holder = StepModule(base)
    mod = holder.module
    try:
        with scratch(base, "w2-profile-") as d, user_env(base):
            # one-time costs out of the way (imports, fingerprints, the SQLite file)
            store = os.path.join(d, "store")
            run_dispatch(mod, n, store)
            run_dispatch(mod, n, store)

            def measure(title: str, go: Callable[[int], None], per: int) -> None:
                timers = WallTimers(PARENT_TIMED)
                walls, cpu = [], []
                with worker_probe(base) as probe:
                    for r in range(runs):
                        gc.collect()
                        c0, d0 = time.process_time(), probe.dump_seconds
                        t = time.perf_counter()
                        with timers:
                            go(r)
                        walls.append(time.perf_counter() - t - (probe.dump_seconds - d0))
                        cpu.append(time.process_time() - c0)
                    probes = read_probes(probe.out)
                print(f"\n##### {title}: {runs} runs, wall {spread(walls)}; parent CPU "
                      f"{ms(statistics.mean(cpu))}/run = {us(statistics.mean(cpu) / per)}/element "
                      f"(all threads; the timers add ~2 us per timed call); load {load()}")
                print_parent(title, timers, walls, per, probe.dump_seconds / runs)
                print_workers(title, probes, runs)

            measure(f"dispatch: {n}-element map, cache=False",
                    lambda r: run_dispatch(mod, n, store), n)

            def w2_cold(r: int) -> None:
                run = mod.w2.run(backend="process", max_workers=2,
                                 store=os.path.join(d, f"cold{r}"), progress=False)
                assert run.status == "succeeded" and not any(s.cached for s in
                                                             run.steps.values())

            measure(f"W2 cold, {W2_N} elements, cached step (keys + index writes), fresh store",
                    w2_cold, W2_N)
    finally:
        holder.close()


# --- main ------------------------------------------------------------------------------------


def main() -> None:
    """Run the benchmarks and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke test: fewer repeats")
    parser.add_argument("--repeat", type=int, help="program repeats (default 9, 3 quick)")
    parser.add_argument("--n", type=int, default=200, help="elements of the dispatch map")
    parser.add_argument("--dir", default=None, help="where stores go (default: the system tmp dir)")
    parser.add_argument("--only", default="programs,dispatch",
                        help="comma-separated subset of programs,dispatch")
    parser.add_argument("--profile", action="store_true",
                        help="instead of the table: where the process backend's time goes")
    add_json_option(parser)
    args = parser.parse_args()
    repeat = args.repeat or (3 if args.quick else 9)
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    unknown = only - {"programs", "dispatch"}
    if unknown:
        parser.error(f"--only: unknown {', '.join(sorted(unknown))}")
    if args.n < 4:
        parser.error("--n must be at least 4")

    import ductwork  # after argument parsing; its import cost is measured in a subprocess

    if args.profile:
        profile(args.dir, args.n, repeat)
        return
    print(
        f"ductwork {ductwork.__version__}, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, {platform.machine()}; stores under "
        f"{args.dir or tempfile.gettempdir()}{' (--quick)' if args.quick else ''}; cwd "
        f"{os.getcwd()}; load average {load()}"
    )
    if "programs" in only:
        bench_programs(args.dir, repeat)
    if "dispatch" in only:
        bench_dispatch(args.dir, args.n, repeat)
    NOTES.append(f"load average at the end: {load()} (on {os.cpu_count()} CPUs; a shared machine).")
    print()
    print_table(args.json)


if __name__ == "__main__":
    main()
