"""The inline backend: every job runs in this process, one at a time, when submitted.

It is the default because it costs nothing to start and debuggers and
breakpoints work in step code. It cannot stop a running step, so ``timeout``
is not enforced here; the process backend enforces it.
"""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any

from ductwork.runtime.execute import Job, JobResult, execute


class InlineBackend:
    """Run each job in the calling thread."""

    name = "inline"
    capacity = 1

    def __init__(self, store: Any, **options: Any) -> None:
        self.store = store
        self.options = options

    def submit(self, job: Job) -> Future[JobResult]:
        """Run ``job`` now and return an already-completed future."""
        future: Future[JobResult] = Future()
        # The scheduler hands this backend values it already holds: nothing to resolve.
        future.set_result(execute(job, self.store, resolve=False))
        return future

    def close(self) -> None:
        """Nothing to release."""
