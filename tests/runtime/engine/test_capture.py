"""Per-thread capture (Dask workers run steps in threads of one process)."""

from __future__ import annotations

import sys
import threading

from ductwork.runtime.engine.capture import capture_thread


def test_threads_capture_their_own_prints_and_the_streams_come_back():
    original_out, original_err = sys.stdout, sys.stderr
    logs: dict[str, list[str]] = {}
    both_in = threading.Barrier(2)

    def step(name: str) -> None:
        with capture_thread() as sink:
            both_in.wait()
            for i in range(50):
                print(f"{name} {i}")
            print(f"{name} err", file=sys.stderr)
            both_in.wait()
            # Everything but writing is the original stream's.
            assert sys.stdout.encoding == original_out.encoding
            assert sys.stdout.isatty() == original_out.isatty()
        logs[name] = sink

    threads = [threading.Thread(target=step, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for name in ("a", "b"):
        text = "".join(logs[name])
        assert text.count(f"{name} ") == 51 and ("b " if name == "a" else "a ") not in text
    assert sys.stdout is original_out and sys.stderr is original_err


def test_a_dask_run_on_a_memory_store_leaves_sys_stdout_alone():
    import ductwork as dw

    @dw.step
    def shout() -> int:
        print("hello")
        return 1

    @dw.pipeline
    def p():
        return shout()

    before = sys.stdout
    run = p.run(backend="dask", store="memory://capture-test")
    assert "hello" in run.steps["shout"].logs
    assert sys.stdout is before
