"""``Pipeline.run``: check the options, trace, schedule, record, and report.

Everything that can be wrong with a run's input -- an unknown parameter, a
bad option, an unknown backend or step id -- is found here before any step
runs.
"""

from __future__ import annotations

import sys
import time

from ductwork.dsl.core import ParameterError, PipelineFailed, RunOptionError
from ductwork.dsl.graph import plan_to_dict
from ductwork.dsl.trace import Plan
from ductwork.runtime.engine.backend import GraphBackend, open_backends
from ductwork.runtime.records.run import Run, new_run_id
from ductwork.runtime.status import Status

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def forced_nodes(plan: Plan, regenerate: bool | list[str] | tuple[str, ...]) -> frozenset[str]:
    """The nodes that must run whatever the cache holds: those named and their descendants."""
    if regenerate is True:
        return frozenset(plan.invocations)
    if regenerate is False or regenerate is None:
        return frozenset()
    if isinstance(regenerate, str) or not all(isinstance(r, str) for r in regenerate):
        raise RunOptionError(
            f"regenerate= takes True, False or a list of step ids, got {regenerate!r}."
        )
    unknown = [r for r in regenerate if r not in plan.invocations]
    if unknown:
        raise RunOptionError(
            f"regenerate= names {', '.join(map(repr, unknown))}, which is not a step of "
            f"'{plan.name}'. Its steps: {', '.join(plan.invocations)}."
        )
    forced, stack = set(), list(regenerate)
    dependents: dict[str, list[str]] = {}
    for nid, inv in plan.invocations.items():
        for dep in inv.deps:
            dependents.setdefault(dep, []).append(nid)
    while stack:
        node = stack.pop()
        if node not in forced:
            forced.add(node)
            stack.extend(dependents.get(node, ()))
    return frozenset(forced)


def plan_pipeline(
    pipeline: Any,
    params: dict[str, Any],
    *,
    backend: str = "inline",
    store: Any = None,
    max_workers: int | None = None,
    regenerate: bool | list[str] = False,
    progress: bool | None = None,
    address: str | None = None,
    shared_filesystem: bool = False,
) -> dict[str, Any]:
    """What ``run`` with these options would do: ``{step id: (status, why)}``, no step code
    run (``engine/plan.py``); ``progress`` is accepted and ignored, as nothing runs."""
    from ductwork.runtime.engine.plan import plan_steps

    options = backend_options(backend, max_workers, address, shared_filesystem)
    plan = pipeline.trace(**params)
    return plan_steps(plan, store, backend, forced_nodes(plan, regenerate), options)


def backend_options(backend: Any, max_workers: Any, address: str | None,
                    shared_filesystem: bool) -> dict[str, Any]:
    """Check the run options that choose and size the backend; the settings it is made with."""
    if not isinstance(backend, str):
        raise RunOptionError(f"backend= takes a backend name like 'inline', got {backend!r}.")
    if max_workers is not None and (type(max_workers) is not int or max_workers < 1):
        raise RunOptionError(f"max_workers= must be a whole number >= 1, got {max_workers!r}.")
    options: dict[str, Any] = {}
    if max_workers is not None:
        options["max_workers"] = max_workers
    if address is not None:
        options["address"] = address
    if shared_filesystem:
        options["shared_filesystem"] = True
    return options


def check_recordable(plan: Plan) -> None:
    """Refuse a parameter the run's record cannot hold: an int Python will not write as text."""
    limit = sys.get_int_max_str_digits()  # process-wide; not ours to raise
    for name, value in plan.params.items():
        if limit and isinstance(value, int) and value.bit_length() > 3 * limit \
                and abs(value) >= 10**limit:
            raise ParameterError(
                f"Pipeline '{plan.name}': parameter '{name}' is an int of more than {limit} "
                "digits, which Python will not write as text (sys.set_int_max_str_digits), so "
                "the run could not be recorded. Pass it as a str and convert it inside a step."
            )


def run_pipeline(
    pipeline: Any,
    params: dict[str, Any],
    *,
    backend: str = "inline",
    store: Any = None,
    max_workers: int | None = None,
    regenerate: bool | list[str] = False,
    progress: bool | None = None,
    address: str | None = None,
    shared_filesystem: bool = False,
    run_id: str | None = None,
    logs: str | None = None,
) -> Run:
    """Run ``pipeline`` with ``params``; raise ``PipelineFailed`` if a step fails.

    ``run_id`` is internal (not a ``Pipeline.run`` option): the server gives the run the
    unguessable id it already answered the trigger with. ``logs`` is internal too: a folder
    that each step's output is written through to while it runs, for a watcher (the studio);
    the inline and process backends honour it, the others record logs when a step ends.
    """
    from ductwork.runtime.records.provenance import GitState

    options = backend_options(backend, max_workers, address, shared_filesystem)
    # git runs beside the imports and set-up below (a first run's ~20 ms), read at the end.
    git = GitState.start()
    try:
        return _run(pipeline, params, git, options, backend=backend, store=store,
                    regenerate=regenerate, progress=progress, run_id=run_id, logs=logs)
    finally:
        git.close()  # a run that failed before it began: git's answer is not wanted


def _run(pipeline: Any, params: dict[str, Any], git: Any, options: dict[str, Any], *,
         backend: str, store: Any, regenerate: bool | list[str], progress: bool | None,
         run_id: str | None, logs: str | None) -> Run:
    """The run proper: trace, open the store and history, schedule, record ``git``'s answer."""
    from ductwork import __version__
    from ductwork.runtime.engine.loop import Loop
    from ductwork.runtime.records.history import attach
    from ductwork.runtime.records.provenance import source_of
    from ductwork.runtime.records.runstore import open_runstore
    from ductwork.runtime.store.artifacts import open_store

    if progress is False:  # what make_progress gives, without the module that picks a display
        from ductwork.runtime.ui.display import NullProgress

        display: Any = NullProgress()
    else:
        from ductwork.runtime.ui.progress import make_progress

        display = make_progress(progress)
    plan = pipeline.trace(**params)
    check_recordable(plan)
    force = forced_nodes(plan, regenerate)
    artifacts = open_store(store)
    artifacts.check()  # bad credentials fail here, before a backend starts or a run is recorded
    engines = open_backends(plan, backend, artifacts, **options)
    history = open_runstore(artifacts)
    run = Run(
        run_id or new_run_id(), plan.name, plan.params, backend, store=artifacts.url,
        started=time.time(), ductwork_version=__version__, python_version=sys.version.split()[0],
        graph=plan_to_dict(plan),
    )
    run.module, run.source_file = source_of(pipeline.fn)
    history.begin_run(run)
    try:
        if len(engines) == 1 and engines[None].schedules_graph:
            from ductwork.runtime.engine.driver import GraphDriver

            graph = engines[None]
            assert isinstance(graph, GraphBackend)  # what schedules_graph = True promises
            scheduler: Loop | GraphDriver = GraphDriver(plan, graph, run, artifacts, force,
                                                        display)
        else:
            scheduler = Loop(plan, engines, run, artifacts, force, display, logs)
        display.started(run)
        from ductwork.runtime.context import run_store

        with run_store(artifacts):  # datasets named without a datastore read the run's store
            scheduler.execute()
    except BaseException as exc:
        for engine in engines.values():
            engine.cancel()  # stop work still running before recording the run
        run.status = Status.CANCELLED if isinstance(exc, KeyboardInterrupt) else Status.FAILED
        for record in run.steps.values():
            if record.status in (Status.RUNNING, Status.PENDING):
                record.status = Status.CANCELLED
                record.error = record.error or "cancelled: the run was interrupted"
                display.changed(record)
        raise
    else:
        run.status = Status.FAILED if run.failed_steps else Status.SUCCEEDED
    finally:
        for engine in engines.values():
            engine.close()
        run.finished = time.time()
        run.git_commit, run.git_dirty = git.result()
        history.finish_run(run)
        attach(run, artifacts, history)
        display.finished(run)
    failed = run.failed_steps
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
