"""The inline backend: every job runs in this process, one at a time, when submitted.

It is the default because it costs nothing to start and debuggers and
breakpoints work in step code. A step with a ``timeout`` runs in a helper thread
instead, which is interrupted when it overruns: at its next Python instruction,
so a call blocked in C (a long ``sleep``, a native library) ends first, and the
step's error says so (its late result is discarded, never cached). The process
backend kills the worker; use it when a step must stop at once.
"""

from __future__ import annotations

from ductwork.runtime.engine.futures import Done
from ductwork.runtime.engine.job import Job, JobResult, execute

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class InlineBackend:
    """Run each job in the calling thread."""

    name = "inline"
    capacity = 1
    #: The loop hands this backend values it already holds.
    reads_store = False
    schedules_graph = False

    def __init__(self, store: Any) -> None:
        self.store = store

    def submit(self, job: Job) -> Done[JobResult]:
        """Run ``job`` now and return its result as a finished future."""
        # The scheduler hands this backend values it already holds: nothing to resolve.
        timeout = job.step.options.timeout
        if timeout is None:
            return Done(execute(job, self.store, resolve=False))
        from ductwork.runtime.engine.tasks import run_with_timeout

        result, _ = run_with_timeout(job, self.store, {}, timeout, capture="python",
                                     resolve=False)
        return Done(result)

    def environment(self, step: Any) -> None:
        """This process: nothing beyond the step's declared environment."""

    def cancel(self) -> None:
        """Nothing runs in the background: a running step is interrupted by Ctrl-C itself."""

    def close(self) -> None:
        """Nothing to release."""
