"""A process worker holds its next job while it runs one: what that must not break."""

from __future__ import annotations

import os
import time

import pytest

from ductwork import step
from ductwork.backends.process import ProcessBackend
from ductwork.runtime.engine.job import Job
from ductwork.runtime.store.artifacts import ArtifactStore


@step(cache=False, timeout=2)
def nap(seconds: float, log: str) -> int:
    with open(log, "a") as f:  # one line per time a job starts
        f.write(f"{seconds} {os.getpid()}\n")
    time.sleep(seconds)
    return os.getpid()


@step(cache=False)
def dies(code: int) -> int:
    time.sleep(0.5)  # the next job is in the worker's pipe by now
    os._exit(code)


@pytest.fixture
def one_worker(tmp_path):
    store = ArtifactStore(str(tmp_path / "s"))
    backend = ProcessBackend(store, max_workers=1)
    yield backend, store
    backend.close()


def _started(log) -> list[str]:
    return log.read_text().split() if log.exists() else []


def test_a_worker_is_sent_its_next_job_while_it_runs_one(tmp_path, one_worker):
    backend, store = one_worker
    log = str(tmp_path / "log")
    assert backend.capacity == 2  # the engine keeps two jobs in flight on one worker
    first = backend.submit(Job("nap[0]", nap, (1.0, log), {}))
    second = backend.submit(Job("nap[1]", nap, (0.0, log), {}))
    deadline = time.time() + 60
    while time.time() < deadline and not _started(tmp_path / "log"):
        time.sleep(0.02)
    [worker] = backend.pool.workers
    # The driver sends the second job after the first; on a loaded machine the worker may
    # start the first before that send: wait for it while the first (a 1 s nap) still runs.
    while not first.done() and not any(item.sent for item in worker.ahead):
        time.sleep(0.01)
    assert not first.done(), "the second job was not sent while the first ran"
    assert [item.job.step_id for item in worker.ahead if item.sent] == ["nap[1]"]
    a, b = first.result(timeout=60), second.result(timeout=60)
    assert a.error is None and b.error is None
    assert store.get(a.refs["output"]) == store.get(b.refs["output"])  # the same worker


def test_a_crash_fails_the_running_job_and_the_queued_one_runs_once(tmp_path, one_worker):
    backend, store = one_worker
    log = tmp_path / "log"
    crashed = backend.submit(Job("dies", dies, (3,), {}))
    queued = backend.submit(Job("nap", nap, (0.0, str(log)), {}))
    bad, good = crashed.result(timeout=60), queued.result(timeout=60)
    assert "The worker process running step 'dies' exited with code 3" in bad.error
    assert good.error is None, good.error
    assert len(log.read_text().splitlines()) == 1  # run once, by the fresh worker
    assert store.get(good.refs["output"]) == int(log.read_text().split()[1])


def test_a_timeout_of_the_running_job_keeps_the_queued_one(tmp_path, one_worker):
    backend, _ = one_worker
    log = tmp_path / "log"
    hung = backend.submit(Job("nap[0]", nap, (30.0, str(log)), {}))
    queued = backend.submit(Job("nap[1]", nap, (0.0, str(log)), {}))
    started = time.time()
    bad, good = hung.result(timeout=60), queued.result(timeout=60)
    assert "timed out after 2 s" in bad.error
    assert good.error is None, good.error
    assert time.time() - started < 20
    first, second = log.read_text().splitlines()
    assert first.split()[1] != second.split()[1]  # the hung worker was stopped


def test_a_queued_job_s_timeout_counts_from_its_own_start(tmp_path, one_worker):
    backend, _ = one_worker
    log = str(tmp_path / "log")
    # Each takes 1.2 s of its 2 s; counted from when it was sent, the second would overrun.
    futures = [backend.submit(Job(f"nap[{i}]", nap, (1.2, log), {})) for i in range(2)]
    for future in futures:
        result = future.result(timeout=60)
        assert result.error is None, result.error


def test_cancel_stops_the_running_and_the_queued_job_of_the_run(tmp_path, one_worker):
    backend, store = one_worker
    log = tmp_path / "log"
    running = backend.submit(Job("nap[0]", nap, (30.0, str(log)), {}))
    queued = backend.submit(Job("nap[1]", nap, (30.0, str(log)), {}))
    deadline = time.time() + 60
    while time.time() < deadline and not _started(log):
        time.sleep(0.02)
    started = time.time()
    backend.cancel()
    assert running.result(timeout=30).error.startswith("cancelled")
    assert queued.cancelled() or queued.result(timeout=30).error.startswith("cancelled")
    assert time.time() - started < 10
    time.sleep(0.5)
    assert len(log.read_text().splitlines()) == 1  # the queued one never started
    # The pool serves the next run at once.
    other = ProcessBackend(store, max_workers=1)
    try:
        assert other.submit(Job("nap", nap, (0.0, str(log)), {})).result(timeout=60).error is None
    finally:
        other.close()


def _explode() -> None:
    if os.environ.get("DUCTWORK_WORKER_FD") is None:  # in the parent only
        raise RuntimeError("cannot be loaded here")


class LoadsNowhere:
    """Pickles in the worker; unpickling it in the parent raises."""

    def __reduce__(self):
        return (_explode, ())


@step(cache=False)
def unreadable(x: int) -> LoadsNowhere:
    return LoadsNowhere()


def test_a_result_the_parent_cannot_read_fails_its_step_and_the_worker_goes_on(tmp_path):
    store = ArtifactStore("memory://")  # values come back through the pipe
    backend = ProcessBackend(store, max_workers=1)
    try:
        bad = backend.submit(Job("unreadable", unreadable, (1,), {})).result(timeout=60)
        good = backend.submit(Job("nap[0]", nap, (0.0, str(tmp_path / "log")), {}))
        good = good.result(timeout=60)
    finally:
        backend.close()
    assert "unreadable" in bad.error and "cannot be loaded here" in bad.error, bad.error
    assert good.error is None, good.error
