"""A backend written only against ``ductwork.runtime.engine.backend.Backend``.

It is what a third party would write: no base class of ours, every member the
Protocol declares, registered through the ``ductwork.backends`` entry-point group
(the conformance suite installs that entry point, see ``test_conformance.py``).
Jobs run on a thread pool in this process; the loop hands it values, not refs.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from ductwork.runtime.engine.job import Job, JobResult
from ductwork.runtime.engine.tasks import run_with_timeout


class ThreadsBackend:
    """Run each job on a thread of a pool of ``max_workers``."""

    name = "threads"
    schedules_graph = False

    def __init__(self, store: Any, max_workers: int | None = None, **options: Any) -> None:
        self.store = store
        self.capacity = max_workers or 2
        self.reads_store = False
        self._pool = ThreadPoolExecutor(self.capacity, thread_name_prefix="threads-backend")

    def submit(self, job: Job) -> Future[JobResult]:
        """Run ``job`` on a pool thread (one over its timeout is interrupted and fails)."""
        return self._pool.submit(self._run, job)

    def _run(self, job: Job) -> JobResult:
        result, _ = run_with_timeout(job, self.store, {}, job.step.options.timeout,
                                     capture="thread", resolve=False)
        return result

    def environment(self, step: Any) -> None:
        """This process: nothing beyond the step's declared environment."""

    def cancel(self) -> None:
        """Drop queued jobs (running ones finish: threads cannot be killed)."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        """Stop the pool's threads."""
        self._pool.shutdown(wait=False)
