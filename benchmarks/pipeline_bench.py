"""Benchmark whole pipeline runs against what plain Python pays for the same work.

Prints one row per measurement: its value, the floor it is compared with, the
ratio, the target and PASS / MISS ("info" rows have no target).

W1   a chain of 50 trivial steps (``x + 1``) on the inline backend with a local
     store. Per-step overhead = (median run wall time - floor) / 50, where the
     floor is calling the 50 plain functions directly. The SQLite record, the
     trace, the git probe and the cache index are all inside the run's wall time.
       cold  an empty store (a fresh tmp dir) and step functions the process has
             never fingerprinted (a freshly generated module per repeat), which
             is what a new process pays; one-time process costs (lazy imports,
             SQLite, ...) are paid first by a warm-up pipeline of the same shape,
             whose own first run is reported separately.
       warm  the same store again: every step is a cache hit.
     Two more variants show where time goes: cold with fingerprints memoized
     (the same functions again on an empty store) and warm with fresh function
     objects (the module re-imported after a comment edit, as a rerun in a new
     process would see it).
W3   a 256 MB ``bytes`` and a 256 MB float64 numpy array passed between two steps
     (A makes it, B returns its length / sum). Cold overhead = run wall time -
     the plain B(A()) compute time, against the floor: plain Python writing the
     same bytes to a file in the store's directory and reading them back. Medians
     and, since a stall on a shared machine only ever adds time, best-of-N too.
     A warm run must read none of the value: ``rchar`` of /proc/self/io is
     compared before and after it, against a twin pipeline passing a 1 KiB value.
     Peak RSS: the same pipeline as a whole program in a fresh interpreter, cold then
     warm, against a plain-Python program making, writing and reading back the same
     value; each program's own ``ru_maxrss`` (``os.wait4``), target <= 1.1x the floor's.
import
     ``import ductwork`` in a subprocess minus a bare ``python -c pass`` (medians,
     with .pyc files in a private cache dir), and which heavy dependencies that
     import loads.

Stores, generated step modules and .pyc files go to temporary directories that
are removed afterwards; nothing is written to the source tree.

    python benchmarks/pipeline_bench.py [--quick] [--dir DIR] [--only w1,w3,import]
    python benchmarks/pipeline_bench.py --profile   # where W1's time goes, cold and warm
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
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

from _table import (
    NOTES,
    WallTimers,
    add,
    add_json_option,
    load,
    print_table,
    ratio,
    run_program,
    scratch,
)

N_STEPS = 50
HEAVY = ("networkx", "cloudpickle", "fsspec", "numpy")
MiB = 1 << 20


# --- the table -------------------------------------------------------------------------------












def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3f} ms"


def sec(seconds: float) -> str:
    return f"{seconds:.3f} s"




def fmt_bytes(n: int) -> str:
    if n < 10 * 1024:
        return f"{n:,} B"
    return f"{n / 1024:,.1f} KiB" if n < MiB else f"{n / MiB:,.1f} MiB"


# --- helpers ---------------------------------------------------------------------------------


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def settle() -> None:
    """Start a timed section without the previous one's garbage or dirty pages in the way."""
    gc.collect()
    if hasattr(os, "sync"):
        os.sync()  # writeback of earlier big files otherwise stalls later writes at random




def rchar() -> int | None:
    """Bytes this process (all its threads) has read through read-like syscalls so far."""
    try:
        with open("/proc/self/io") as f:
            for line in f:
                if line.startswith("rchar:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None




class ModuleFactory:
    """Writes step modules to a directory on sys.path and imports them (user code, with source)."""

    def __init__(self, base: str | None) -> None:
        self.dir = tempfile.mkdtemp(prefix="pipeline-bench-mods-", dir=base)
        sys.path.insert(0, self.dir)
        self._edits: dict[str, int] = {}

    def write(self, name: str, source: str, comment: str = "") -> None:
        with open(os.path.join(self.dir, f"{name}.py"), "w") as f:
            f.write(f"# {comment}\n{source}" if comment else source)
        importlib.invalidate_caches()

    def load(self, name: str) -> Any:
        sys.modules.pop(name, None)
        return importlib.import_module(name)

    def reload_edited(self, name: str, source: str) -> Any:
        """Re-import ``name`` after changing only a comment: new code objects, same fingerprint."""
        self._edits[name] = n = self._edits.get(name, 0) + 1
        self.write(name, source, comment="edited " + "." * n)  # size changes: caches notice
        return self.load(name)

    def close(self) -> None:
        with contextlib.suppress(ValueError):
            sys.path.remove(self.dir)
        shutil.rmtree(self.dir, ignore_errors=True)


def chain_source(n_steps: int) -> str:
    lines = ["from ductwork import pipeline, step", ""]
    for i in range(n_steps):
        lines += ["", "@step", f"def s{i:02d}(x: int) -> int:", "    return x + 1", ""]
    names = ", ".join(f"s{i:02d}" for i in range(n_steps))
    lines += [
        "", f"STEPS = [{names}]", "", "",
        "@pipeline", "def chain(n: int = 0):", "    x = n", "    for s in STEPS:",
        "        x = s(x)", "    return x", "",
    ]
    return "\n".join(lines)


W3_SOURCE = '''\
import numpy as np

from ductwork import pipeline, step


@step
def make_bytes(n: int) -> bytes:
    return bytes(range(256)) * (n // 256)


@step
def size_of(data: bytes) -> int:
    return len(data)


@step
def make_array(n: int) -> np.ndarray:
    return np.arange(n // 8, dtype=np.float64)


@step
def total(a: np.ndarray) -> float:
    return float(a.sum())


@pipeline
def pass_bytes(n: int = 1024):
    return size_of(make_bytes(n))


@pipeline
def pass_array(n: int = 1024):
    return total(make_array(n))
'''

W3_PROGRAM = W3_SOURCE + '''

if __name__ == "__main__":
    import sys

    kind, store, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    run = {"bytes": pass_bytes, "numpy": pass_array}[kind].run(n=n, store=store)
    assert run.status == "succeeded", run
    print(sum(bool(s.cached) for s in run.steps.values()))
'''

# The floor of W3's peak RSS: plain Python makes the value, writes it, reads it back. It
# imports numpy as the pipelines' module does, so the difference is ductwork's alone.
W3_FLOOR_PROGRAM = '''\
import os
import sys

import numpy as np

kind, directory, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
path = os.path.join(directory, "floor.bin")
if kind == "bytes":
    with open(path, "wb") as f:
        f.write(bytes(range(256)) * (n // 256))
    with open(path, "rb") as f:
        data = f.read()
else:
    with open(path, "wb") as f:
        f.write(memoryview(np.arange(n // 8, dtype=np.float64)).cast("B"))
    data = np.fromfile(path, dtype=np.float64)
print(len(data))
'''


# --- import ----------------------------------------------------------------------------------


def import_times(repeat: int, env: dict[str, str]) -> tuple[float, float]:
    """Median wall times of `python -c pass` and `python -c 'import ductwork'` under ``env``."""

    def spawn(code: str) -> float:
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, env=env)
        return time.perf_counter() - t

    for _ in range(2):  # unmeasured: .pyc files and the page cache
        spawn("pass"), spawn("import ductwork")
    bare, imp = [], []
    for _ in range(repeat):  # interleaved, so drift on a shared machine hits both alike
        bare.append(spawn("pass"))
        imp.append(spawn("import ductwork"))
    return statistics.median(bare), statistics.median(imp)


def bench_import(repeat: int) -> None:
    print("import: spawning interpreters", file=sys.stderr, flush=True)
    # As users run it: with .pyc files. They go to a private cache dir, so that nothing is
    # written into the source tree and PYTHONDONTWRITEBYTECODE, if set here, is overridden.
    with tempfile.TemporaryDirectory(prefix="pipeline-bench-pyc-") as pyc:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = pyc
        b, i = import_times(repeat, env)
    add("import ductwork, above python -c pass", ms(i - b), ms(b), ratio(i, b), "<= 50 ms",
        i - b <= 0.050)
    NOTES.append(
        f"import: median of {repeat} interpreter starts each, with .pyc files; "
        f"`python -c 'import ductwork'` {ms(i)} total vs `python -c pass` {ms(b)}."
    )
    if os.environ.get("PYTHONDONTWRITEBYTECODE"):
        b, i = import_times(repeat, dict(os.environ))
        add("import ductwork, no .pyc (PYTHONDONTWRITEBYTECODE is set)", ms(i - b), ms(b),
            ratio(i, b))
    probe = (
        "import sys, json\nimport ductwork\n"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True,
                         text=True).stdout
    loaded = json.loads(out)
    add("import ductwork loads " + "/".join(HEAVY), ", ".join(loaded) or "none", target="none",
        ok=not loaded)


FIRST_RUN = """\
import json, sys, time
import ductwork as dw

@dw.step
def add(a: int, b: int) -> int:
    return a + b

@dw.pipeline
def one(a: int = 1):
    return add(a, 2)

t = time.perf_counter()
run = one.run(a=1, store=sys.argv[1], progress=False)
first = time.perf_counter() - t
assert run.outputs == 3 and not run.steps["add"].cached, run
t = time.perf_counter()
one.run(a=2, store=sys.argv[1], progress=False)
print(json.dumps([first, time.perf_counter() - t]))
"""


def bench_first_run(repeat: int) -> None:
    """Issue [12] item 2: a fresh process's first ``run()`` of a one-step pipeline, above import.

    Timed inside the program from just before ``run()`` to its return (so ``import ductwork``
    is not in it), each in a fresh interpreter with .pyc files, on an empty store in a git
    repository (the run probes git state as a user's would); the second run (another value,
    so a cold step too) shows what a run costs once the process has paid for its first.
    """
    print("first run: spawning interpreters", file=sys.stderr, flush=True)
    firsts, seconds = [], []
    with tempfile.TemporaryDirectory(prefix="pipeline-bench-first-") as tmp:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = os.path.join(tmp, "pyc")
        script = os.path.join(tmp, "first_run.py")  # a file: the step has source to fingerprint
        with open(script, "w") as f:
            f.write(FIRST_RUN)
        # a repository with a commit, as a user's project is: git then reads the index and
        # compares the tree (a repository without one answers "(initial)" at once)
        subprocess.run(["git", "init", "-q", tmp], check=True)
        subprocess.run(["git", "-C", tmp, "add", "first_run.py"], check=True)
        subprocess.run(["git", "-C", tmp, "-c", "user.name=bench", "-c",
                        "user.email=bench@localhost", "commit", "-q", "-m", "first run"],
                       check=True)
        for i in range(repeat + 2):
            store = os.path.join(tmp, f"store-{i}")
            out = subprocess.run([sys.executable, script, store], check=True, env=env, cwd=tmp,
                                 capture_output=True, text=True).stdout
            if i >= 2:  # the first two write the .pyc files and warm the page cache
                first, second = json.loads(out)
                firsts.append(first)
                seconds.append(second)
            shutil.rmtree(store)
    first, second = statistics.median(firsts), statistics.median(seconds)
    add("first run() of a one-step pipeline in a process, above import", ms(first), "-", "-",
        "<= 30 ms", first <= 0.030)
    add("  its second run() (one cold step, one-time costs paid)", ms(second))
    NOTES.append(
        f"first run: {repeat} fresh interpreters with .pyc files, an empty store each, in a git "
        f"repository with a commit; first run() min {ms(min(firsts))}, max {ms(max(firsts))}."
    )


def heavy_after_run() -> None:
    """Which heavy dependencies a small inline run loads (informational)."""
    probe = (
        "import json, sys, tempfile\nfrom ductwork import pipeline, step\n"
        "@step\ndef one(x: int) -> int:\n    return x + 1\n"
        "@pipeline\ndef p(n: int = 0):\n    return one(one(n))\n"
        "with tempfile.TemporaryDirectory() as d:\n    p.run(store=d)\n"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "probe_run.py")  # a file, so that the step has source
        with open(path, "w") as f:
            f.write(probe)
        out = subprocess.run([sys.executable, path], check=True, capture_output=True,
                             text=True).stdout
    loaded = json.loads(out.strip().splitlines()[-1])
    add("a 2-step inline run loads " + "/".join(HEAVY), ", ".join(loaded) or "none")


# --- W1 --------------------------------------------------------------------------------------


def plain_floor(steps: list[Any], repeat: int = 200) -> float:
    fns = [s.fn for s in steps]

    def call() -> int:
        x = 0
        for fn in fns:
            x = fn(x)
        return x

    return statistics.median(timed(call)[0] for _ in range(repeat))


def run_chain(module: Any, store: str, expect_cached: bool) -> float:
    seconds, run = timed(lambda: module.chain.run(n=0, store=store))
    cached = sum(s.cached for s in run.steps.values())
    assert run.status == "succeeded" and run.outputs == N_STEPS, run
    assert cached == (N_STEPS if expect_cached else 0), f"{cached} cached steps, {run!r}"
    return seconds


def bench_w1(mods: ModuleFactory, base: str | None, repeat: int) -> None:
    source = chain_source(N_STEPS)
    print(f"W1: {repeat} repeats of a {N_STEPS}-step chain", file=sys.stderr, flush=True)

    # The process's first pipeline pays the one-time costs: measured, reported, kept out.
    mods.write("bench_w1_warmup", source)
    warmup = mods.load("bench_w1_warmup")
    with scratch(base, "w1-warmup-") as d:
        first = run_chain(warmup, os.path.join(d, "store"), expect_cached=False)
        first_warm = run_chain(warmup, os.path.join(d, "store"), expect_cached=True)

    floor = plain_floor(warmup.STEPS)
    cold, cold_memo, warm, warm_fresh = [], [], [], []
    for r in range(repeat):
        name = f"bench_w1_chain_{r}"  # never fingerprinted in this process
        mods.write(name, source)
        module = mods.load(name)
        with scratch(base, "w1-") as d:
            store = os.path.join(d, "store")
            settle()
            cold.append(run_chain(module, store, expect_cached=False))
            warm.append(run_chain(module, store, expect_cached=True))
            fresh = mods.reload_edited(name, source)
            warm_fresh.append(run_chain(fresh, store, expect_cached=True))
        with scratch(base, "w1-memo-") as d:
            settle()
            cold_memo.append(run_chain(fresh, os.path.join(d, "store"), expect_cached=False))

    mk, create, rename = fs_latency(base)
    add("disk: mkdir | create+write 64 B+close | rename", f"{ms(mk)} | {ms(create)} | {ms(rename)}")

    def per_step(samples: list[float]) -> float:
        return (statistics.median(samples) - floor) / N_STEPS

    fl = f"{floor * 1e6 / N_STEPS:.2f} us/step"
    add("W1 first run in the process (cold, with one-time costs)",
        f"{(first - floor) / N_STEPS * 1e3:.3f} ms/step", fl, ratio(first, floor))
    add("W1 cold: per-step overhead", f"{per_step(cold) * 1e3:.3f} ms/step", fl,
        ratio(statistics.median(cold), floor), "<= 2 ms/step", per_step(cold) <= 0.002)
    add("W1 cold, fingerprints memoized", f"{per_step(cold_memo) * 1e3:.3f} ms/step", fl,
        ratio(statistics.median(cold_memo), floor), "<= 2 ms/step", per_step(cold_memo) <= 0.002)
    add("W1 warm (second run, same store): per-step overhead",
        f"{per_step(warm) * 1e3:.3f} ms/step", fl, ratio(statistics.median(warm), floor),
        "<= 0.5 ms/step", per_step(warm) <= 0.0005)
    add("W1 warm, fresh function objects (a rerun in a new process)",
        f"{per_step(warm_fresh) * 1e3:.3f} ms/step", fl,
        ratio(statistics.median(warm_fresh), floor), "<= 0.5 ms/step",
        per_step(warm_fresh) <= 0.0005)

    def spread(samples: list[float]) -> str:
        return (f"median {ms(statistics.median(samples))}, min {ms(min(samples))}, "
                f"max {ms(max(samples))}")

    NOTES.append(
        f"W1: whole-run wall times over {repeat} repeats -- cold {spread(cold)}; cold memoized "
        f"{spread(cold_memo)}; warm {spread(warm)}; warm fresh {spread(warm_fresh)}. Floor "
        f"(50 plain calls) {floor * 1e6:.1f} us."
    )
    if os.environ.get("PYTHONDONTWRITEBYTECODE") and not sys.pycache_prefix:
        NOTES.append(
            "W1: PYTHONDONTWRITEBYTECODE is set here, so this process compiled ductwork.runtime "
            "from source during its first run: part of its one-time cost."
        )
    NOTES.append(
        f"W1: the process's first run took {ms(first)} (its second, warm: {ms(first_warm)}); "
        f"one-time cost = first - median cold = {ms(first - statistics.median(cold))}."
    )


# --- W3 --------------------------------------------------------------------------------------


def floor_write_read(value: Any, directory: str) -> float:
    path = os.path.join(directory, "floor.bin")
    t = time.perf_counter()
    with open(path, "wb") as f:
        f.write(memoryview(value).cast("B"))
    with open(path, "rb") as f:
        data = f.read()
    seconds = time.perf_counter() - t
    assert len(data) == memoryview(value).nbytes
    del data
    os.unlink(path)
    return seconds


def bench_w3(mods: ModuleFactory, base: str | None, mb: int, repeat: int) -> None:
    print(f"W3: {repeat} repeats of {mb} MB values", file=sys.stderr, flush=True)
    mods.write("bench_w3", W3_SOURCE)
    module = mods.load("bench_w3")
    cases = [
        (f"W3 bytes {mb} MB", "bytes", module.pass_bytes, module.make_bytes, module.size_of),
        (f"W3 numpy float64 {mb} MB", "numpy", module.pass_array, module.make_array,
         module.total),
    ]
    for label, kind, pipe, make, use in cases:
        w3_case(label, pipe, make, use, mb * MiB, base, repeat)
        w3_peak_rss(label, kind, mb * MiB, base, max(3, repeat // 2))


def w3_peak_rss(label: str, kind: str, n: int, base: str | None, repeat: int) -> None:
    """Peak RSS of W3 as whole programs (cold, then warm over its store) against the floor's."""
    print(f"W3 peak RSS ({kind}): {repeat} programs of each", file=sys.stderr, flush=True)
    cold: list[int] = []
    warm: list[int] = []
    floors: list[int] = []
    with scratch(base, "w3-rss-") as d:
        prog, floor_prog = os.path.join(d, "w3_prog.py"), os.path.join(d, "w3_floor.py")
        with open(prog, "w") as f:
            f.write(W3_PROGRAM)
        with open(floor_prog, "w") as f:
            f.write(W3_FLOOR_PROGRAM)
        for _ in range(repeat):
            with scratch(d, "cell-") as cell:
                store = os.path.join(cell, "store")
                settle()
                floors.append(_program([sys.executable, floor_prog, kind, cell, str(n)]))
                for samples_, cached in ((cold, "0"), (warm, "2")):
                    settle()
                    out = run_program([sys.executable, prog, kind, store, str(n)], cwd=cell)
                    if out.returncode != 0 or out.stdout.split()[-1:] != [cached]:
                        raise SystemExit(f"W3 {kind} program failed (expected {cached} cached "
                                         f"steps):\n{out.stdout}{out.stderr}")
                    samples_.append(out.peak_rss)
    floor = statistics.median(floors)
    for phase, xs in (("cold", cold), ("warm", warm)):
        value = statistics.median(xs)
        add(f"{label} {phase}: peak RSS, whole program", fmt_bytes(int(value)),
            fmt_bytes(int(floor)), ratio(value, floor), "<= 1.1x floor", value <= 1.1 * floor)
    NOTES.append(
        f"{label}: peak RSS (ru_maxrss, MiB) in run order -- cold "
        f"{' '.join(f'{x / MiB:.0f}' for x in cold)}; warm "
        f"{' '.join(f'{x / MiB:.0f}' for x in warm)}; floor program "
        f"{' '.join(f'{x / MiB:.0f}' for x in floors)}."
    )


def _program(argv: list[str]) -> int:
    out = run_program(argv)
    if out.returncode != 0:
        raise SystemExit(f"{argv[1]} failed:\n{out.stdout}{out.stderr}")
    return out.peak_rss


def w3_case(label: str, pipe: Any, make: Any, use: Any, n: int, base: str | None,
            repeat: int) -> None:
    expected = use.fn(make.fn(n))
    # warm-up: fingerprints, serializer registration, imports; and the tiny-value control
    with scratch(base, "w3-warmup-") as d:
        first = timed(lambda: pipe.run(n=1024, store=os.path.join(d, "first")))[0]
        store = os.path.join(d, "store")
        settle()
        again = timed(lambda: pipe.run(n=1024, store=store))[0]
        pipe.run(n=1024, store=store)
        r0 = rchar()
        pipe.run(n=1024, store=store)
        r1 = rchar()
        control = None if r0 is None or r1 is None else r1 - r0
    # e.g. the first fingerprint that reaches site-packages scans the installed distributions
    add(f"{label}: one-time cost (first 1 KiB run - a later cold one)", ms(first - again))

    value = make.fn(n)
    compute, floors, cold, warm, warm_read, cold_read = [], [], [], [], [], []

    def do_compute(store: str) -> None:
        settle()
        compute.append(timed(lambda: use.fn(make.fn(n)))[0])

    def do_floor(store: str) -> None:
        settle()
        floors.append(floor_write_read(value, store))

    def do_pipeline(store: str) -> None:
        reads = []
        for samples, cached in ((cold, False), (warm, True)):
            settle()
            before = rchar()
            seconds, run = timed(lambda: pipe.run(n=n, store=store))
            after = rchar()
            assert run.status == "succeeded" and run.outputs == expected, run
            assert all(s.cached == cached for s in run.steps.values()), run
            del run
            samples.append(seconds)
            if before is not None and after is not None:
                reads.append(after - before)
        if len(reads) == 2:
            cold_read.append(reads[0])
            warm_read.append(reads[1])

    parts = [do_floor, do_pipeline, do_compute]
    for i in range(repeat):
        with scratch(base, "w3-") as d:
            store = os.path.join(d, "store")
            os.makedirs(store)
            # the order rotates: on this disk a big write right after another one is slower
            for part in parts[i % 3:] + parts[:i % 3]:
                part(store)

    floor = statistics.median(floors)
    comp = statistics.median(compute)
    overhead = statistics.median(cold) - comp
    add(f"{label} cold: run - compute, median", sec(overhead), sec(floor), ratio(overhead, floor),
        "<= 1.5x floor", overhead <= 1.5 * floor)
    best = min(cold) - min(compute)
    add(f"{label} cold, best of {repeat} (noise only adds)", sec(best), sec(min(floors)),
        ratio(best, min(floors)), "<= 1.5x floor", best <= 1.5 * min(floors))
    add(f"{label} warm: run wall time", sec(statistics.median(warm)), sec(floor),
        ratio(statistics.median(warm), floor))
    if warm_read:
        worst = max(warm_read)
        add(f"{label} warm: bytes read (rchar, worst)", fmt_bytes(worst),
            "-" if control is None else fmt_bytes(control),
            "-" if not control else ratio(worst, control),
            "<= 1 MiB (none of the value)", worst <= MiB)
    else:
        add(f"{label} warm: bytes read", "n/a (no /proc/self/io)", target="none of it")
    NOTES.append(
        f"{label}: compute (plain make + use) median {sec(comp)}; cold run median "
        f"{sec(statistics.median(cold))} (min {sec(min(cold))}, max {sec(max(cold))}); "
        f"floor write+read median {sec(floor)} (min {sec(min(floors))}, max "
        f"{sec(max(floors))}); warm median {ms(statistics.median(warm))}"
        + (f"; bytes read by the cold run: max {fmt_bytes(max(cold_read))}; floor column of "
           "the bytes-read row = a warm run of the same pipeline on a 1 KiB value"
           if cold_read else "")
        + "."
    )
    NOTES.append(
        f"{label}: samples in run order (s) -- cold {samples(cold)}; floor {samples(floors)}; "
        f"compute {samples(compute)}."
    )


def samples(xs: list[float]) -> str:
    return " ".join(f"{x:.3f}" for x in xs)


# --- profile ---------------------------------------------------------------------------------

# Wall-clock attribution without a profiler's overhead: library functions are wrapped, in this
# process only, by timers (the library's files are not touched). (label, module, attribute,
# depth): depth 0 parts add up to the run, deeper ones are inside the part above them.
TIMED = [
    ("Pipeline.trace", "ductwork.dsl.pipeline", "Pipeline.trace", 0),
    ("plan_to_dict (graph for the record)", "ductwork.runtime.runner", "plan_to_dict", 0),
    ("open_store (ArtifactStore())", "ductwork.runtime.records.history", "open_store", 0),
    ("open_runstore (SQLite open + schema)", "ductwork.runtime.records.runstore",
     "open_runstore", 0),
    ("RunStore.begin_run", "ductwork.runtime.records.runstore", "RunStore.begin_run", 0),
    ("Scheduler.execute", "ductwork.runtime.engine.scheduler", "Scheduler.execute", 0),
    ("input_components (hash inputs)", "ductwork.runtime.engine.scheduler", "input_components", 1),
    ("step_key", "ductwork.runtime.engine.scheduler", "step_key", 1),
    ("fingerprint (code)", "ductwork.runtime.keys.fingerprint", "fingerprint", 2),
    ("ArtifactStore.get_key (lookup)", "ductwork.runtime.store.artifacts",
     "ArtifactStore.get_key", 1),
    ("execute (the job, inline)", "ductwork.backends.inline", "execute", 1),
    ("check_outputs", "ductwork.runtime.engine.job", "check_outputs", 2),
    ("ArtifactStore.put (object)", "ductwork.runtime.store.artifacts", "ArtifactStore.put", 2),
    ("ArtifactStore.put_key (index)", "ductwork.runtime.store.artifacts",
     "ArtifactStore.put_key", 2),
    ("ArtifactStore.get (load)", "ductwork.runtime.store.artifacts", "ArtifactStore.get", 1),
    ("GitState.result (join git probe)", "ductwork.runtime.records.provenance",
     "GitState.result", 0),
    ("RunStore.finish_run (one transaction)", "ductwork.runtime.records.runstore",
     "RunStore.finish_run", 0),
    ("attach (history hooks)", "ductwork.runtime.records.history", "attach", 0),
]


def breakdown(label: str, timers: WallTimers, walls: list[float]) -> None:
    runs = len(walls)
    wall = sum(walls)
    print(f"\n=== W1 {label}: wall-clock breakdown, mean of {runs} runs of {N_STEPS} steps ===")
    print(f"{'part':<44} {'ms/run':>9} {'ms/step':>8} {'calls/run':>9} {'share':>6}")
    top = 0.0
    for name, _, _, depth in TIMED:
        t, n = timers.total[name], timers.calls[name]
        if not n:
            continue
        top += t if depth == 0 else 0.0
        print(f"{'  ' * depth + name:<44} {t / runs * 1e3:9.3f} {t / runs / N_STEPS * 1e3:8.3f} "
              f"{n / runs:9.1f} {t / wall:6.1%}")
    rest = wall - top
    print(f"{'rest of run_pipeline (Run, GitState.start...)':<44} {rest / runs * 1e3:9.3f} "
          f"{rest / runs / N_STEPS * 1e3:8.3f} {'':>9} {rest / wall:6.1%}")
    print(f"{'whole run':<44} {wall / runs * 1e3:9.3f} {wall / runs / N_STEPS * 1e3:8.3f}")


def fs_latency(base: str | None, n: int = 100) -> tuple[float, float, float]:
    """What this disk charges for the metadata operations a cold store run makes (medians)."""
    with scratch(base, "fs-") as d:
        mk, create, rename = [], [], []
        os.mkdir(os.path.join(d, "tmp"))
        for i in range(n):
            sub = os.path.join(d, f"d{i}")
            mk.append(timed(lambda sub=sub: os.mkdir(sub))[0])
            tmp = os.path.join(d, "tmp", f"f{i}")

            def write(tmp: str = tmp) -> None:
                with open(tmp, "wb") as f:
                    f.write(b"x" * 64)

            create.append(timed(write)[0])
            rename.append(timed(lambda tmp=tmp, sub=sub: os.replace(tmp, sub + "/f"))[0])
    return statistics.median(mk), statistics.median(create), statistics.median(rename)


def profile_w1(mods: ModuleFactory, base: str | None, runs: int, top: int) -> None:
    import cProfile
    import pstats

    source = chain_source(N_STEPS)
    mods.write("bench_w1_warmup", source)
    warmup = mods.load("bench_w1_warmup")
    with scratch(base, "w1-warmup-") as d:
        run_chain(warmup, os.path.join(d, "store"), expect_cached=False)
        run_chain(warmup, os.path.join(d, "store"), expect_cached=True)

    mk, create, rename = fs_latency(base)
    print(f"this disk, plain Python, median of 100: mkdir {ms(mk)}, create+write 64 B+close "
          f"{ms(create)}, rename {ms(rename)}")
    wall_cold, wall_warm = WallTimers(TIMED), WallTimers(TIMED)
    cold_walls, warm_walls = [], []
    with scratch(base, "w1-wall-") as d:
        for r in range(runs):
            name = f"bench_w1_wall_{r}"
            mods.write(name, source)
            module = mods.load(name)
            store = os.path.join(d, f"store{r}")
            with wall_cold:
                cold_walls.append(run_chain(module, store, expect_cached=False))
            with wall_warm:
                warm_walls.append(run_chain(module, store, expect_cached=True))
    breakdown("cold", wall_cold, cold_walls)
    breakdown("warm", wall_warm, warm_walls)

    cold, warm = cProfile.Profile(), cProfile.Profile()
    with scratch(base, "w1-prof-") as d:
        for r in range(runs):
            name = f"bench_w1_prof_{r}"
            mods.write(name, source)
            module = mods.load(name)
            store = os.path.join(d, f"store{r}")
            cold.enable()
            run_chain(module, store, expect_cached=False)
            cold.disable()
            warm.enable()
            run_chain(module, store, expect_cached=True)
            warm.disable()
    for label, prof in (("cold", cold), ("warm", warm)):
        for order in ("cumulative", "tottime"):
            print(f"\n=== W1 {label}: {runs} runs of {N_STEPS} steps, top {top} by {order} ===")
            stats = pstats.Stats(prof, stream=sys.stdout)
            stats.strip_dirs().sort_stats(order).print_stats(top)


# --- main ------------------------------------------------------------------------------------


def main() -> None:
    """Run the benchmarks and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="a smoke test: 32 MB for W3 and fewer repeats")
    parser.add_argument("--mb", type=int, help="W3 value size in MB (default 256, 32 quick)")
    parser.add_argument("--repeat", type=int, help="W1 repeats (default 9, 3 quick)")
    parser.add_argument("--w3-repeat", type=int, help="W3 repeats (default 5, 2 quick)")
    parser.add_argument("--dir", default=None, help="where stores go (default: the system tmp dir)")
    parser.add_argument("--only", default="import,w1,w3",
                        help="comma-separated subset of import,w1,w3")
    parser.add_argument("--profile", action="store_true",
                        help="instead of the table: a wall-clock breakdown and cProfile "
                        "stats of W1 cold and warm")
    parser.add_argument("--top", type=int, default=30, help="rows per profile listing")
    add_json_option(parser)
    args = parser.parse_args()
    mb = args.mb or (32 if args.quick else 256)
    repeat = args.repeat or (3 if args.quick else 9)
    w3_repeat = args.w3_repeat or (2 if args.quick else 5)
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    unknown = only - {"import", "w1", "w3"}
    if unknown:
        parser.error(f"--only: unknown {', '.join(sorted(unknown))}")

    import ductwork  # after argument parsing; its import cost is measured in a subprocess

    mods = ModuleFactory(args.dir)
    try:
        if args.profile:
            profile_w1(mods, args.dir, runs=repeat, top=args.top)
            return
        store_dir = args.dir or tempfile.gettempdir()
        print(
            f"ductwork {ductwork.__version__}, Python {platform.python_version()}, "
            f"{os.cpu_count()} CPUs, {platform.machine()}; stores under {store_dir}"
            f"{' (--quick)' if args.quick else ''}; cwd {os.getcwd()}; load average "
            f"{load()}"
        )
        if "import" in only:
            bench_import(5 if args.quick else 10)
            bench_first_run(5 if args.quick else 15)
        if "w1" in only:
            bench_w1(mods, args.dir, repeat)
        if "w3" in only:
            bench_w3(mods, args.dir, mb, w3_repeat)
        if "import" in only:
            heavy_after_run()
    finally:
        mods.close()
    NOTES.append(f"load average at the end: {load()} (on {os.cpu_count()} CPUs; a shared machine).")
    print()
    print_table(args.json)


if __name__ == "__main__":
    main()
