"""Finished futures beside real ones: the loop's wait over both."""

from __future__ import annotations

import threading
from concurrent.futures import ALL_COMPLETED, ThreadPoolExecutor

from ductwork.runtime.engine.futures import FIRST_COMPLETED, Done, wait


def test_a_done_future_is_returned_at_once_beside_a_running_one() -> None:
    release = threading.Event()
    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(release.wait, 30)
        done, pending = wait({Done(1): "a", running: "b"}, return_when=FIRST_COMPLETED)
        assert [f.result() for f in done] == [1] and pending == {running}
        release.set()
        done, pending = wait([running])
        assert done == {running} and not pending and running.result() is True


def test_wait_for_all_waits_for_the_real_futures_too() -> None:
    with ThreadPoolExecutor(2) as pool:
        real = pool.submit(lambda: 2)
        finished = Done(1)
        done, pending = wait([finished, real], return_when=ALL_COMPLETED)
        assert done == {finished, real} and not pending


def test_done_behaves_as_a_finished_future() -> None:
    seen = []
    future = Done("x")
    future.add_done_callback(seen.append)
    assert seen == [future]
    assert (future.done(), future.running(), future.cancelled(), future.cancel()) == (
        True, False, False, False)
    assert future.result(timeout=0) == "x" and future.exception() is None
