"""The process backend's own promises: timeouts, dead workers, scripts, Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

import ductwork as dw
from ductwork import pipeline, step


@step(timeout=1, cache=False)
def sleepy(seconds: float) -> str:
    time.sleep(seconds)
    return "woke"


@step(cache=False)
def exits() -> int:
    os._exit(3)


@step(cache=False)
def segfaults() -> int:
    import ctypes

    return ctypes.string_at(0)  # reads address 0: SIGSEGV


@step
def fine(x: int) -> int:
    return x + 1


@step(cache=False)
def shell(x: int) -> int:
    subprocess.run(["sh", "-c", f"echo from a child process {x}; echo to stderr {x} >&2"])
    return x


def test_timeout_stops_the_worker_and_fails_the_step(tmp_path):
    @pipeline
    def p():
        return sleepy(30), fine(1)

    started = time.time()
    with pytest.raises(dw.PipelineFailed) as err:
        p.run(backend="process", max_workers=2, store=str(tmp_path))
    assert time.time() - started < 20
    run = err.value.run
    assert "timed out after 1 s (timeout=1)" in run.steps["sleepy"].error
    assert run.steps["fine"].status == "succeeded" and run.steps["fine"].output == 2


@pytest.mark.parametrize(("bad", "how"), [(exits, "exit code 3"), (segfaults, "SIGSEGV")])
def test_a_dying_worker_fails_its_step_and_the_pool_recovers(tmp_path, bad, how):
    @pipeline
    def p():
        return bad(), fine.map([1, 2, 3, 4])

    with pytest.raises(dw.PipelineFailed) as err:
        p.run(backend="process", max_workers=1, store=str(tmp_path))
    run = err.value.run
    assert "worker process running step" in run.steps[bad.name].error
    assert how in run.steps[bad.name].error
    assert run.steps["fine"].status == "succeeded"
    assert run.steps["fine"].output == [2, 3, 4, 5]


def test_child_process_output_is_captured(tmp_path):
    @pipeline
    def p():
        return shell(7)

    run = p.run(backend="process", store=str(tmp_path))
    assert "from a child process 7" in run.steps["shell"].logs
    assert "to stderr 7" in run.steps["shell"].logs


def test_a_script_without_main_guard_runs_in_workers_without_rerunning(tmp_path):
    script = tmp_path / "script.py"
    marker = tmp_path / "imports.log"
    script.write_text(textwrap.dedent(f'''
        import ductwork as dw
        from ductwork import pipeline, step

        with open({str(marker)!r}, "a") as f:   # counts how often this file is executed
            f.write("x")

        LIMIT = 3

        def helper(x):
            return x * LIMIT

        @step
        def triple(x: int) -> int:
            return helper(x)

        @pipeline
        def p():
            return triple.map([1, 2, 3])

        run = p.run(backend="process", max_workers=2, store={str(tmp_path / "s")!r})
        print("RESULT", run.outputs)
    '''))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=120, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "RESULT [3, 6, 9]" in out.stdout
    assert marker.read_text() == "x"  # workers never re-executed the script


def test_ctrl_c_cancels_stops_workers_and_keeps_finished_work(tmp_path):
    script = tmp_path / "long.py"
    store = tmp_path / "s"
    script.write_text(textwrap.dedent(f'''
        import os, time
        from ductwork import pipeline, step

        @step
        def quick(x: int) -> int:
            return x

        @step
        def slow(x: int) -> int:
            with open({str(tmp_path / "pids")!r}, "a") as f:
                f.write(f"{{os.getpid()}}\\n")
            time.sleep(60)
            return x

        @pipeline
        def p():
            return slow.map([quick(1), quick(2)])

        if __name__ == "__main__":
            try:
                p.run(backend="process", max_workers=2, store={str(store)!r})
            except KeyboardInterrupt:
                print("INTERRUPTED")
    '''))
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    pids_file = tmp_path / "pids"
    deadline = time.time() + 60
    while time.time() < deadline and not (
        pids_file.exists() and len(pids_file.read_text().split()) == 2
    ):
        time.sleep(0.1)
    assert pids_file.exists(), proc.communicate(timeout=10)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert "INTERRUPTED" in out, err
    for pid in map(int, pids_file.read_text().split()):
        for _ in range(50):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        else:
            pytest.fail(f"worker {pid} still running after Ctrl-C")
    [run] = dw.runs(store=str(store))
    assert run.status == "cancelled"
    full = dw.get_run(run.id, store=str(store))
    assert full.steps["quick"].status == "succeeded"
    assert full.steps["slow[0]"].status == "cancelled"


def test_process_backend_on_a_bare_memory_store():
    @step
    def three(x: int) -> list[int]:
        return [x, x + 1]

    @step
    def tot(v: list[int]) -> int:
        return sum(v)

    @pipeline
    def chain():
        return tot(three(2))

    run = chain.run(store="memory://", backend="process", progress=False)
    assert run.outputs == 5
    assert run.store == "memory://"


def test_workers_exit_when_the_driver_is_killed(tmp_path):
    script = tmp_path / "driver.py"
    pids = tmp_path / "pids"
    script.write_text(textwrap.dedent(f'''
        import os, time
        from ductwork import pipeline, step

        @step
        def forever(x: int) -> int:
            with open({str(pids)!r}, "a") as f:
                f.write(f"{{os.getpid()}}\\n")
            time.sleep(600)
            return x

        @pipeline
        def p():
            return forever(1)

        if __name__ == "__main__":
            p.run(backend="process", store={str(tmp_path / "s")!r})
    '''))
    proc = subprocess.Popen([sys.executable, str(script)], cwd=tmp_path)
    deadline = time.time() + 60
    while time.time() < deadline and not (pids.exists() and pids.read_text().endswith("\n")):
        time.sleep(0.1)
    worker = int(pids.read_text())
    proc.kill()
    proc.wait(timeout=30)
    for _ in range(100):
        try:
            os.kill(worker, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    pytest.fail("the worker outlived its killed driver")


def test_workers_are_kept_for_the_next_run_in_the_process(tmp_path):
    @step(cache=False)
    def pid(x: int) -> int:
        return os.getpid()

    @pipeline
    def p():
        return pid.map([1, 2, 3, 4])

    first = set(p.run(backend="process", max_workers=2, store=str(tmp_path)).outputs)
    second = set(p.run(backend="process", max_workers=2, store=str(tmp_path)).outputs)
    assert os.getpid() not in first and first == second
