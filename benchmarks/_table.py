"""What every benchmark script shares: the results table, ratios, the load, scratch dirs.

Each script adds rows (value, floor, ratio against the floor, target, PASS/MISS
or info) and notes, then prints one table; see README.md for what they measure.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any


@dataclass
class Row:
    name: str
    value: str
    floor: str
    ratio: str
    target: str
    result: str  # PASS, MISS or info


ROWS: list[Row] = []
NOTES: list[str] = []
DETAIL: list[str] = []  # longer breakdowns, printed after the table


def verdict(ok: bool | None) -> str:
    """PASS, MISS, or info when there is no target."""
    return "info" if ok is None else ("PASS" if ok else "MISS")


def add(name: str, value: str, floor: str = "-", ratio: str = "-", target: str = "-",
        ok: bool | None = None, result: str | None = None) -> None:
    """Add a row to the table (and say so on stderr, so a long run shows progress)."""
    ROWS.append(Row(name, value, floor, ratio, target, result or verdict(ok)))
    print(f"  .. {name}: {value}", file=sys.stderr, flush=True)


def add_json_option(parser: Any) -> None:
    """``--json FILE``: also write the rows (and notes) as JSON, for benchmarks/compare.py."""
    parser.add_argument("--json", metavar="FILE", default=None,
                        help="also write the table's rows and notes to FILE as JSON")


def write_json(path: str, meta: dict[str, Any] | None = None) -> None:
    """The rows and notes as ``{"rows": [{name, value, floor, ratio, target, result}], ...}``."""
    data = {"rows": [vars(r) for r in ROWS], "notes": NOTES, "load": load(),
            "meta": meta or {}}
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=1)
    os.replace(tmp, path)


def print_table(json_path: str | None = None) -> None:
    """Print the rows as aligned columns, then the notes and details (and ``json_path``)."""
    if json_path:
        write_json(json_path)
    header = Row("measurement", "value", "floor", "ratio", "target", "result")
    cols = list(vars(header))
    widths = {c: max(len(getattr(r, c)) for r in [header, *ROWS]) for c in cols}
    right = {"value", "floor", "ratio"}

    def line(r: Row) -> str:
        cells = [getattr(r, c).rjust(widths[c]) if c in right else getattr(r, c).ljust(widths[c])
                 for c in cols]
        return "  ".join(cells).rstrip()

    print(line(header))
    print("  ".join("-" * widths[c] for c in cols))
    for r in ROWS:
        print(line(r))
    if NOTES:
        print()
        for note in NOTES:
            print(f"* {note}")
    if DETAIL:
        print()
        print("\n".join(DETAIL))


def ratio(value: float, floor: float) -> str:
    """``value / floor`` as ``1.23x``, or ``-`` without a floor."""
    if floor <= 0:
        return "-"
    r = value / floor
    return f"{r:.2f}x" if r < 100 else f"{r:,.0f}x"


def best_time(fn: Callable[[], Any], repeat: int,
              setup: Callable[[], Any] = lambda: None) -> float:
    """The best wall time of ``repeat`` calls (``setup`` before each, untimed)."""
    times = []
    for _ in range(repeat):
        setup()
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)  # best of N: the machine is shared, noise only adds


def load() -> str:
    """The machine's load averages (it is shared: numbers move with it)."""
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


@contextlib.contextmanager
def scratch(base: str | None, prefix: str) -> Iterator[str]:
    """A temporary directory under ``base``, removed afterwards."""
    path = tempfile.mkdtemp(prefix=prefix, dir=base)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


class WallTimers:
    """Wraps library functions with inclusive wall-clock and thread-CPU timers while active.

    ``timed`` lists ``(label, module, "Class.attr" or "function", _)``; an entry the
    library no longer has (the module moved, the class or function is gone) is simply not
    timed: its row shows no calls.
    """

    def __init__(self, timed: list[tuple[str, str, str, Any]]) -> None:
        self.timed = timed
        self.total: dict[str, float] = dict.fromkeys((t[0] for t in timed), 0.0)
        self.calls: dict[str, int] = dict.fromkeys(self.total, 0)
        self.cpu: dict[str, float] = dict.fromkeys(self.total, 0.0)
        self._lock = threading.Lock()
        self._undo: list[Callable[[], None]] = []

    def __enter__(self) -> WallTimers:
        for label, module_name, attr, _ in self.timed:
            try:
                owner: Any = importlib.import_module(module_name)
            except ImportError:
                continue
            *path, name = attr.split(".")
            for part in path:
                owner = getattr(owner, part, None)
            if owner is None:
                continue
            original = owner.__dict__.get(name) if isinstance(owner, type) else getattr(
                owner, name, None)
            if original is None:
                continue

            def wrapper(*a: Any, _f: Any = original, _l: str = label, **k: Any) -> Any:
                t, c = time.perf_counter(), time.thread_time()
                try:
                    return _f(*a, **k)
                finally:
                    dt, dc = time.perf_counter() - t, time.thread_time() - c
                    with self._lock:
                        self.total[_l] += dt
                        self.cpu[_l] += dc
                        self.calls[_l] += 1

            functools.update_wrapper(wrapper, original)
            setattr(owner, name, wrapper)
            self._undo.append(lambda o=owner, n=name, f=original: setattr(o, n, f))
        return self

    def __exit__(self, *exc: Any) -> None:
        for undo in reversed(self._undo):
            undo()
        self._undo.clear()


@dataclass
class Program:
    """A finished program: wall time (spawn to exit), exit code, output, peak RSS."""

    seconds: float
    returncode: int
    stdout: str
    stderr: str
    peak_rss: int  # bytes: ru_maxrss of the program's own process (its children not included)
    timed_out: bool = False


# Forks the program and reports its rusage. Linux starts a process's ru_maxrss at the RSS of
# the process that forked it (kept across exec), so the program must come from a small
# process, not from this harness (which may hold hundreds of MB): a bare ``python -S -I``.
_LAUNCHER = """\
import os, sys, time
t = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execv(sys.argv[2], sys.argv[2:])
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
t = time.perf_counter() - t
with open(sys.argv[1], "w") as f:
    f.write(f"{status} {usage.ru_maxrss} {t!r}")
"""


def run_program(argv: list[str], cwd: Any = None, env: dict[str, str] | None = None,
                timeout: float | None = None) -> Program:
    """Run ``argv`` to its exit and return its wall time, output and peak RSS.

    A tiny launcher forks it and reaps it with ``os.wait4``, whose rusage is that one
    process's own. Output goes to temp files, not pipes, so nothing has to read them while
    it runs. The wall time is the launcher's, from its fork to the program's exit (its own
    start, ~10 ms, is not in it).
    """
    import subprocess

    with tempfile.TemporaryDirectory(prefix="run-program-") as tmp:
        report = os.path.join(tmp, "rusage")
        out_path, err_path = os.path.join(tmp, "out"), os.path.join(tmp, "err")
        launcher = [sys.executable, "-S", "-I", "-c", _LAUNCHER, report, *argv]
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            t = time.perf_counter()
            proc = subprocess.Popen(launcher, cwd=cwd, env=env, stdout=out, stderr=err,
                                    start_new_session=True)
            try:
                proc.wait(timeout)
                timed_out = False
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)  # the launcher and the program: one session
                proc.wait()
                timed_out = True
            seconds = time.perf_counter() - t
        try:
            with open(report) as f:
                fields = f.read().split()
            status, maxrss, seconds = int(fields[0]), int(fields[1]), float(fields[2])
            returncode = os.waitstatus_to_exitcode(status)
        except (FileNotFoundError, ValueError, IndexError):  # killed before it reported
            returncode, maxrss = proc.returncode or -9, 0
        with open(out_path, "rb") as f:
            stdout = f.read().decode(errors="replace")
        with open(err_path, "rb") as f:
            stderr = f.read().decode(errors="replace")
    scale = 1 if sys.platform == "darwin" else 1024  # Linux: KiB; macOS: bytes
    return Program(seconds, returncode, stdout, stderr, maxrss * scale, timed_out)
