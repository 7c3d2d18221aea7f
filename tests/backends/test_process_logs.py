"""A process worker's per-step logs: each holds exactly what its own step printed.

A worker runs job after job, so what one step (or a child process it started)
writes must never reach another step's log, however the capture is set up.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

from ductwork import pipeline, step


@step(cache=False)
def chatty(x: int) -> int:
    print(f"py out {x}")
    print(f"py err {x}", file=sys.stderr)
    os.write(1, f"fd out {x}\n".encode())
    os.write(2, f"fd err {x}\n".encode())
    subprocess.run(["sh", "-c", f"echo child out {x}; echo child err {x} >&2"], check=True)
    if x == 0:
        # Outlives its step: it writes while the worker runs a later element.
        subprocess.Popen(["sh", "-c", "sleep 0.3; echo late from 0; echo late err 0 >&2"])
    time.sleep(0.2)
    print(f"py end {x}", flush=False)  # left in Python's buffer when the step returns
    return x


def _lines(x: int) -> list[str]:
    return sorted(f"{kind} {x}" for kind in (
        "py out", "py err", "fd out", "fd err", "child out", "child err", "py end"))


def test_each_element_s_log_holds_its_own_output_and_nothing_else(tmp_path):
    @pipeline
    def p():
        return chatty.map([0, 1, 2, 3, 4])

    # One worker: every element runs in the same process, one after another.
    run = p.run(backend="process", max_workers=1, store=str(tmp_path / "s"))
    for i in range(5):
        assert sorted(run.steps[f"chatty[{i}]"].logs.splitlines()) == _lines(i), i

