"""``Pipeline.run``: check the options, trace, schedule, and report.

Everything that can be wrong with a run's input -- an unknown parameter, a
bad option, an unknown backend -- is found here before any step runs.
"""

from __future__ import annotations

import time
from typing import Any

from ductwork.dsl.core import DuctworkError, PipelineFailed
from ductwork.dsl.trace import substitute
from ductwork.runtime.backend import get_backend
from ductwork.runtime.run import FAILED, SUCCEEDED, Run, new_run_id
from ductwork.runtime.scheduler import Scheduler


class RunOptionError(DuctworkError, ValueError):
    """A run option (backend, max_workers, ...) has a value that cannot work."""


def run_pipeline(
    pipeline: Any,
    params: dict[str, Any],
    *,
    backend: str = "inline",
    store: str | None = None,
    max_workers: int | None = None,
    regenerate: bool | list[str] = False,
    progress: bool | None = None,
    address: str | None = None,
    shared_filesystem: bool = False,
) -> Run:
    """Run ``pipeline`` with ``params``; raise ``PipelineFailed`` if a step fails."""
    if not isinstance(backend, str):
        raise RunOptionError(f"backend= takes a backend name like 'inline', got {backend!r}.")
    if max_workers is not None and (type(max_workers) is not int or max_workers < 1):
        raise RunOptionError(f"max_workers= must be a whole number >= 1, got {max_workers!r}.")
    plan = pipeline.trace(**params)
    options: dict[str, Any] = {}
    if max_workers is not None:
        options["max_workers"] = max_workers
    if address is not None:
        options["address"] = address
    engine = get_backend(backend, **options)
    run = Run(new_run_id(), plan.name, plan.params, backend, store=store, started=time.time())
    try:
        values = Scheduler(plan, engine, run).execute()
    finally:
        engine.close()
    run.finished = time.time()
    run.outputs = substitute(plan.result, lambda out: values.get(out.key))
    failed = run.failed_steps
    run.status = FAILED if failed else SUCCEEDED
    if failed:
        first = failed[0]
        others = [s.id for s in failed[1:]]
        also = f" (also failed: {', '.join(others)})" if others else ""
        raise PipelineFailed(
            f"Pipeline '{plan.name}' run {run.id} failed in step '{first.id}'{also}:\n\n"
            f"{first.error}",
            run,
        )
    return run
