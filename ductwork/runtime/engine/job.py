"""Running one job where the step runs: call the function, check and store its outputs.

This is the worker's half of a run (in-process, in a worker process, in a
container): it resolves input refs from the artifact store, materializes lazy
inputs (values with a ``__ductwork_materialize__(context)`` method, such as
datasets: read here, where the step runs, not where the pipeline was traced;
``dsl.lazy`` finds them, also inside lists, tuples and dicts),
calls the step under its ``ductwork.context()`` with its output captured,
checks the return value against the step's annotation, writes each output to
the store (the digest is computed while writing) and then the key's index
entry, and reports refs. It must stay small.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping

from ductwork.dsl.lazy import LEAVES, holds_lazy, materialize
from ductwork.dsl.slotted import Frozen, setter
from ductwork.runtime.engine.annotations import check_outputs

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class Job(Frozen):
    """One unit of work: a step function with its arguments (values or refs) and cache key.

    ``whole``: a map element keeps a multi-output step's return value whole, as one list
    item. ``log_to``: where the step's output is also written while it runs, for a
    watcher (``livelog``).
    """

    __slots__ = ("step_id", "step", "args", "kwargs", "attempt", "key", "whole", "run_id", "log_to")
    step_id: str
    step: Any
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    attempt: int
    key: str | None
    whole: bool
    run_id: str
    log_to: str | None

    def __init__(self, step_id: str, step: Any, args: tuple[Any, ...], kwargs: dict[str, Any],
                 attempt: int = 1, key: str | None = None, whole: bool = False,
                 run_id: str = "local", log_to: str | None = None) -> None:
        set_ = setter(self)
        set_("step_id", step_id)
        set_("step", step)
        set_("args", args)
        set_("kwargs", kwargs)
        set_("attempt", attempt)
        set_("key", key)
        set_("whole", whole)
        set_("run_id", run_id)
        set_("log_to", log_to)


class JobResult(Frozen):
    """What came of a job: output refs (and values, in-process), or the user's traceback.

    ``corrupt``: the digest of an input that failed verification, whose producer must
    recompute it.
    """

    __slots__ = ("step_id", "started", "finished", "refs", "values", "error", "logs", "metrics",
                 "corrupt")
    step_id: str
    started: float
    finished: float
    refs: dict[str, Any] | None
    values: dict[str, Any] | None
    error: str | None
    logs: str
    metrics: dict[str, Any]
    corrupt: str | None

    def __init__(self, step_id: str, started: float, finished: float,
                 refs: dict[str, Any] | None = None, values: dict[str, Any] | None = None,
                 error: str | None = None, logs: str = "",
                 metrics: dict[str, Any] | None = None, corrupt: str | None = None) -> None:
        set_ = setter(self)
        set_("step_id", step_id)
        set_("started", started)
        set_("finished", finished)
        set_("refs", refs)
        set_("values", values)
        set_("error", error)
        set_("logs", logs)
        set_("metrics", {} if metrics is None else metrics)
        set_("corrupt", corrupt)


class OutputMismatch(Exception):
    """A step returned something that does not fit its declared outputs."""


def split_outputs(step: Any, result: Any) -> dict[str, Any]:
    """Map a step's return value onto its declared output names."""
    names = step.options.outputs
    if not step.options.multiple:
        return {names[0]: result}
    if isinstance(result, Mapping) and set(result) == set(names):
        return {name: result[name] for name in names}
    if isinstance(result, tuple) and len(result) == len(names):
        return dict(zip(names, result, strict=True))
    got = f"a tuple of {len(result)}" if isinstance(result, tuple) else type(result).__name__
    raise OutputMismatch(
        f"Step '{step.name}' declares {len(names)} outputs ({', '.join(names)}) but returned "
        f"{got}. Return a tuple of {len(names)} values in that order, or a dict with those keys."
    )


def resolve_refs(value: Any, store: Any, memo: dict[str, Any]) -> Any:
    """Replace artifact refs inside arguments by their values, read (and verified) once."""
    from ductwork.runtime.store.refs import GatherRef, map_refs

    def load(ref: Any) -> Any:
        if isinstance(ref, GatherRef):
            return [load(part) for part in ref.parts]
        if ref.digest not in memo:
            memo[ref.digest] = store.get(ref)
        return memo[ref.digest]

    return map_refs(value, load)


class MaterializeError(Exception):
    """An argument's ``__ductwork_materialize__`` failed; the message names step and argument."""


def _materialized(job: Job, ctx: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The job's arguments with datasets (and other lazy inputs) materialized."""
    if _only_leaves(job) or (not holds_lazy(job.args) and not holds_lazy(job.kwargs)):
        return job.args, job.kwargs

    def read(value: Any) -> Any:
        return type(value).__ductwork_materialize__(value, ctx)

    from ductwork.runtime.data.reading import reading_for_key

    bound = job.step.signature.bind(*job.args, **job.kwargs)
    # A dataset read for a keyed job checks it reads the content the key was made of.
    with reading_for_key(job.key is not None):
        for name, value in bound.arguments.items():
            try:
                bound.arguments[name] = materialize(value, read)
            except Exception as exc:
                raise MaterializeError(
                    f"Step '{job.step_id}': argument '{name}' could not be read before the "
                    f"step ran: {type(exc).__name__}: {exc}"
                ) from exc
    return bound.args, bound.kwargs


def _only_leaves(job: Job) -> bool:
    """Every argument is a number, a string or None: no ref to read, nothing to materialize
    (a map element's usual arguments, checked without walking anything)."""
    return LEAVES.issuperset(map(type, job.args)) and (
        not job.kwargs or LEAVES.issuperset(map(type, job.kwargs.values())))


def _catcher(job: Job, capture: str) -> Any:
    """The context manager that captures the step's output the ``capture`` way."""
    from ductwork.runtime.engine.capture import capture_fds, capture_python, capture_thread

    if capture == "fds":
        return capture_fds(job.log_to)
    if capture == "python":
        return capture_python(log_to=job.log_to)
    if capture == "thread":
        return capture_thread()
    return _no_capture()  # "none": the caller collects output itself (a container's logs)


def call(job: Job, capture: str = "python", store: Any = None,
         ) -> tuple[dict[str, Any] | None, str | None, str, dict[str, Any]]:
    """Call the step under its context with output captured: (values, error, logs, metrics).

    ``store`` is the run's artifact store as this process sees it (None: out of reach);
    ``dw.datastore()`` and datasets without a datastore read from it.
    """
    from ductwork.runtime.context import StepContext, enter_step, leave_step

    ctx = StepContext(job.run_id, job.step_id, job.attempt)
    values = error = None
    with _catcher(job, capture) as captured:
        scope = enter_step(ctx, store)  # running(ctx) and run_store(store), inside the capture
        try:
            args, kwargs = _materialized(job, ctx)
            result = job.step.fn(*args, **kwargs)
        except MaterializeError as exc:
            error = f"{exc}\n"
        except (Exception, SystemExit) as exc:
            import traceback

            # Drop this frame: the user wants their own traceback, starting at their step.
            tb = exc.__traceback__.tb_next if exc.__traceback__ else None
            error = "".join(traceback.format_exception(type(exc), exc, tb))
            if isinstance(exc, SystemExit):
                # Let through, it would end the run (inline), or the worker, with its code:
                # `ductwork run` would exit 0 for sys.exit(0). Last line: what the CLI shows.
                called = f"sys.exit({', '.join(map(repr, exc.args))})"
                error += (
                    f"\nStep '{job.step_id}' called {called}: a step must return a value or "
                    "raise an exception; exiting would end the whole run, and sys.exit(0) "
                    "would report it a success. Return the result, or raise to fail the step.\n"
                )
        finally:
            leave_step(ctx, scope)
    logs = captured["text"] if isinstance(captured, dict) else "".join(captured)
    if error is None:
        try:
            values = {"output": result} if job.whole else split_outputs(job.step, result)
            check_outputs(job.step, split_outputs(job.step, result) if job.whole else values)
        except (OutputMismatch, TypeError) as exc:
            values, error = None, f"{exc}\n"
    return values, error, logs, ctx.metrics


@contextlib.contextmanager
def _no_capture() -> Iterator[list[str]]:
    yield []


def store_outputs(job: Job, values: dict[str, Any], store: Any) -> dict[str, Any]:
    """Write each output, then the key's index entry; raise ValueError naming what failed."""
    from ductwork.runtime.store.artifacts import StoreFull

    refs = {}
    for name, value in values.items():
        what = f"Step '{job.step.name}': output '{name}'"
        try:
            # Small outputs live in their ref, entry and run record: one file per step.
            refs[name] = store.put(value, inline=True)
        except StoreFull as exc:  # says which disk and what to do; the value is not at fault
            raise ValueError(f"{what} could not be stored: {exc}\n") from None
        except OSError as exc:
            raise ValueError(
                f"{what} ({type(value).__name__}) could not be written to the artifact store "
                f"{store.url}: {type(exc).__name__}: {exc}. Check that the store is reachable "
                "and writable, or point it elsewhere (store=, DUCTWORK_STORE).\n"
            ) from None
        except Exception as exc:
            raise ValueError(
                f"{what} ({type(value).__name__}) could not be stored: {type(exc).__name__}: "
                f"{exc}. Return a value that can be serialized, or register a serializer for "
                "its type (ductwork.register_serializer).\n"
            ) from None
    if job.key is not None:
        # Indexed only after every output is stored: a reader never sees a partial entry.
        try:
            store.put_key(job.key, refs)
        except StoreFull as exc:
            raise ValueError(f"Step '{job.step.name}': its outputs were stored but its cache "
                             f"index entry could not be: {exc}\n") from None
    return refs


def execute(job: Job, store: Any, capture: str = "python",
            memo: dict[str, Any] | None = None, resolve: bool = True) -> JobResult:
    """Run ``job`` here and now; user errors become a formatted traceback in the result.

    ``resolve`` reads input refs from the store (off when the caller passed values);
    with ``store=None`` the outputs are returned as values for the caller to store.
    """
    from ductwork.runtime.store.artifacts import CorruptArtifact

    started = time.time()
    if store is not None and resolve and not _only_leaves(job):
        try:
            memo = {} if memo is None else memo
            job = job.replace(args=resolve_refs(job.args, store, memo),
                              kwargs=resolve_refs(job.kwargs, store, memo))
        except CorruptArtifact as exc:
            return JobResult(job.step_id, started, time.time(), error=f"{exc}\n",
                             corrupt=exc.digest)
        except Exception as exc:
            return JobResult(job.step_id, started, time.time(), error=(
                f"Step '{job.step.name}': its inputs could not be read from the store: "
                f"{type(exc).__name__}: {exc}\n"))
    values, error, logs, metrics = call(job, capture, store)
    if error is not None or values is None:
        return JobResult(job.step_id, started, time.time(), error=error, logs=logs,
                         metrics=metrics)
    if store is None:
        return JobResult(job.step_id, started, time.time(), values=values, logs=logs,
                         metrics=metrics)
    try:
        refs = store_outputs(job, values, store)
    except ValueError as exc:
        return JobResult(job.step_id, started, time.time(), error=str(exc), logs=logs,
                         metrics=metrics)
    return JobResult(job.step_id, started, time.time(), refs=refs, values=values, logs=logs,
                     metrics=metrics)
