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
def killed() -> int:
    os.kill(os.getpid(), signal.SIGKILL)  # what the out-of-memory killer does
    return 0


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


@pytest.mark.parametrize(("bad", "how", "not_blamed"), [
    (exits, "exited with code 3 (sys.exit or os._exit in the step", "native code"),
    (killed, "killed by SIGKILL: most often the out-of-memory killer", "native code"),
    (segfaults, "crashed with SIGSEGV: a crash in native code", "out-of-memory"),
])
def test_a_dying_worker_fails_its_step_and_the_pool_recovers(tmp_path, bad, how, not_blamed):
    @pipeline
    def p():
        return bad(), fine.map([1, 2, 3, 4])

    with pytest.raises(dw.PipelineFailed) as err:
        p.run(backend="process", max_workers=1, store=str(tmp_path))
    run = err.value.run
    assert "worker process running step" in run.steps[bad.name].error
    assert how in run.steps[bad.name].error
    assert not_blamed not in run.steps[bad.name].error
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
    pool = _worker_pids()
    second = set(p.run(backend="process", max_workers=2, store=str(tmp_path)).outputs)
    # Which of the two workers an element lands on is the scheduler's business (a worker
    # holds up to two jobs, so one may take all four); no new worker may appear.
    assert os.getpid() not in first and first <= pool and second <= pool, (first, second, pool)


# -- pools are bounded and released (issue [8] item 6) ----------------------------------------

def _worker_pids() -> set[int]:
    """Worker processes this test process started and that are still alive."""
    pids = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read()
        except OSError:
            continue
        # Fields after the command's ")" : state, ppid, ...; a zombie ("Z") is not alive.
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        ours = int(ppid) == os.getpid() and state != "Z"
        if ours and b"ductwork.runtime.engine.worker" in cmdline:
            pids.add(int(entry))
    return pids


def _open_fds() -> int:
    """Open fds, leaving out run histories (``records.run_stores``, a cache of its own)."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        count += "runs.sqlite" not in target
    return count


def _threads() -> int:
    return len(os.listdir("/proc/self/task"))


@step(cache=False)
def plus(x: int) -> int:
    return x + 100


def test_runs_on_new_stores_do_not_pile_up_workers_threads_or_fds(tmp_path):
    from ductwork.backends.process import shutdown_pools

    shutdown_pools()  # pools earlier tests kept are not this test's to count

    @pipeline
    def p(x: int):
        return plus.map([x, x + 1, x + 2])

    assert p.run(x=0, backend="process", max_workers=2, store=str(tmp_path / "s0"),
                 progress=False).outputs == [100, 101, 102]
    fds, threads = _open_fds(), _threads()
    for i in range(1, 31):
        run = p.run(x=i, backend="process", max_workers=2, store=str(tmp_path / f"s{i}"),
                    progress=False)
        assert run.outputs == [i + 100, i + 101, i + 102]
    assert len(_worker_pids()) <= 2
    assert _threads() <= threads + 2
    assert _open_fds() <= fds + 5


def test_pools_of_other_sizes_are_released_but_never_one_in_use(tmp_path):
    import threading

    from ductwork.backends.process import shutdown_pools

    shutdown_pools()

    @step(cache=False)
    def slow(x: int) -> int:
        time.sleep(4)
        return x

    @pipeline
    def long():
        return slow(7)

    @pipeline
    def short(x: int):
        return plus.map(list(range(x)))

    outcome: list = []
    held = threading.Thread(target=lambda: outcome.append(
        long.run(backend="process", max_workers=7, store=str(tmp_path / "long"),
                 progress=False).outputs))
    held.start()
    time.sleep(1)  # the long run holds its pool of 7 from here on
    for size in (1, 2, 3, 4, 5, 1, 2, 3):
        run = short.run(x=size, backend="process", max_workers=size,
                        store=str(tmp_path / f"s{size}"), progress=False)
        assert run.outputs == [100 + k for k in range(size)]
    # In use: the run of 7 (one worker started); idle: at most two pools (3 and 2 here).
    assert len(_worker_pids()) <= 1 + 3 + 2
    held.join(timeout=60)
    assert outcome == [7]


def test_cancelling_one_run_leaves_another_run_on_the_same_pool_alone(tmp_path):
    from ductwork.backends.process import ProcessBackend
    from ductwork.runtime.engine.job import Job
    from ductwork.runtime.store.artifacts import ArtifactStore

    @step(cache=False)
    def nap(seconds: float) -> float:
        time.sleep(seconds)
        return seconds

    mine = ProcessBackend(ArtifactStore(str(tmp_path / "a")), max_workers=2)
    theirs_store = ArtifactStore(str(tmp_path / "b"))
    theirs = ProcessBackend(theirs_store, max_workers=2)
    try:
        assert mine.pool is theirs.pool  # one pool per size, whatever the store
        doomed = mine.submit(Job("nap", nap, (60.0,), {}))
        kept = theirs.submit(Job("nap", nap, (2.0,), {}))
        queued = mine.submit(Job("nap", nap, (60.0,), {}))
        time.sleep(1)
        started = time.time()
        mine.cancel()
        assert doomed.result(timeout=30).error.startswith("cancelled")
        assert queued.cancelled() or queued.result(timeout=30).error.startswith("cancelled")
        assert time.time() - started < 20
        result = kept.result(timeout=30)
        assert result.error is None, result.error
        assert theirs_store.get(result.refs["output"]) == 2.0
    finally:
        mine.close()
        theirs.close()


@step
def scored(c: float) -> float:
    print(f"scoring {c} in {os.getpid()}")
    dw.context().log_metric("accuracy", c / 10)
    return c


def test_a_cached_step_names_the_run_its_worker_ran_in_with_its_metrics_and_logs(tmp_path):
    @pipeline
    def p(c: float = 4.0):
        return scored(c)

    store = str(tmp_path / "s")
    first = p.run(store=store, backend="process", max_workers=1)
    made = first.steps["scored"]
    assert not made.cached and made.metrics == {"accuracy": 0.4} and "scoring 4.0" in made.logs
    again = p.run(store=store, backend="process", max_workers=1)
    hit = again.steps["scored"]
    assert hit.cached and hit.cached_from == first.id
    assert hit.metrics == {"accuracy": 0.4} and hit.logs == made.logs
