"""``ductwork.context()``: what a running step knows about its run.

Inside a step it names the run and the step, takes metrics, and offers a
scratch directory that is removed when the step ends; a step on a Spark compute
target also finds its ``SparkSession`` there (``.spark``). Outside a run it
returns a local context that works the same way, so a step that logs metrics
can be unit-tested as a plain function (its ``.spark`` is a local session).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

from ductwork.dsl.core import DuctworkError

TYPE_CHECKING = False
if TYPE_CHECKING:  # pathlib is imported where a Path is made: a run needs none
    from pathlib import Path
    from typing import Any

_CURRENT: ContextVar[StepContext | None] = ContextVar("ductwork_step_context", default=None)
#: The artifact store of the run being run here, for ``dw.datastore()`` and datasets: set
#: by the code that runs steps, kept here rather than in ``data.datastore`` so that a run
#: that reads no dataset does not import the datastore module to set it.
_RUN_STORE: ContextVar[Any] = ContextVar("ductwork_run_store", default=None)
UNREACHABLE = object()  # a worker whose run store lives in another process's memory
# A float is finite when -_INF < value < _INF (nan compares false): math.isfinite's answer
# without importing math, which a first run does not otherwise need.
_INF = float("inf")
#: The SparkSession of the Spark step running now (set by the spark backend).
_SPARK: ContextVar[Any] = ContextVar("ductwork_spark_session", default=None)


class StepContext:
    """The run and step a piece of step code is running for."""

    def __init__(self, run_id: str, step_id: str | None, attempt: int = 1) -> None:
        self.run_id = run_id
        self.step_id = step_id
        self.attempt = attempt
        self.metrics: dict[str, Any] = {}
        self._scratch: str | None = None

    def __repr__(self) -> str:
        return f"<ductwork context run={self.run_id} step={self.step_id}>"

    @property
    def scratch_dir(self) -> Path:
        """A private temporary directory, made on first use, removed when the step ends."""
        if self._scratch is None:
            import tempfile

            self._scratch = tempfile.mkdtemp(prefix=f"ductwork-{self.step_id or 'local'}-")
        from pathlib import Path

        return Path(self._scratch)

    @property
    def spark(self) -> Any:
        """The step's ``SparkSession`` (a step with a Spark compute target); outside a run, a
        local one (``local[2]``), made on first use."""
        session = _SPARK.get()
        if session is not None:
            return session
        if self.step_id is not None:
            raise DuctworkError(
                f"Step '{self.step_id}' asked for dw.context().spark but does not run on Spark: "
                "give it compute=\"<name>\" of a [tool.ductwork.compute.<name>] with "
                "backend = \"spark\".")
        from pyspark.sql import SparkSession

        return SparkSession.getActiveSession() or SparkSession.builder.master(
            "local[2]").config("spark.ui.enabled", "false").getOrCreate()

    def log_metric(self, name: str, value: float | int) -> None:
        """Record a numeric metric; a name logged again keeps every value, in order."""
        if not isinstance(name, str) or not name:
            raise DuctworkError(f"log_metric needs a metric name (a string), got {name!r}.")
        if isinstance(value, bool) or not isinstance(value, int | float) or (
            isinstance(value, float) and not -_INF < value < _INF  # not finite: inf or nan
        ):
            raise DuctworkError(
                f"log_metric('{name}', ...) takes a finite number, got {value!r}; log text "
                "with print(), which goes to the step's logs."
            )
        if name in self.metrics:
            previous = self.metrics[name]
            self.metrics[name] = [*previous, value] if isinstance(previous, list) else [
                previous, value]
        else:
            self.metrics[name] = value

    def close(self) -> None:
        """Remove the scratch directory."""
        if self._scratch is not None:
            import shutil

            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None


_LOCAL: StepContext | None = None


def context() -> StepContext:
    """The context of the step running now; outside a run, a process-wide local one."""
    global _LOCAL
    current = _CURRENT.get()
    if current is not None:
        return current
    if _LOCAL is None:
        _LOCAL = StepContext("local", None)
    return _LOCAL


@contextlib.contextmanager
def using_spark(session: Any) -> Iterator[Any]:
    """Make ``session`` what ``context().spark`` gives to step code in the block."""
    token = _SPARK.set(session)
    try:
        yield session
    finally:
        _SPARK.reset(token)


@contextlib.contextmanager
def run_store(store: Any) -> Iterator[None]:
    """Make ``datastore()`` mean ``store``'s datastore in the block (None: unreachable)."""
    token = _RUN_STORE.set(UNREACHABLE if store is None else store)
    try:
        yield
    finally:
        _RUN_STORE.reset(token)


def current_run_store() -> Any:
    """The store ``run_store`` set here: None outside a run, or ``UNREACHABLE``."""
    return _RUN_STORE.get()


def enter_step(ctx: StepContext, store: Any) -> tuple[Any, Any]:
    """``running(ctx)`` and ``run_store(store)`` entered by a plain call, for a step's hot
    path (two generator context managers cost ~17k instructions per step); ``leave_step``."""
    return _CURRENT.set(ctx), _RUN_STORE.set(UNREACHABLE if store is None else store)


def leave_step(ctx: StepContext, tokens: tuple[Any, Any]) -> None:
    """Undo ``enter_step``, as leaving ``run_store`` then ``running`` would."""
    try:
        _RUN_STORE.reset(tokens[1])
    finally:
        _CURRENT.reset(tokens[0])
        ctx.close()


@contextlib.contextmanager
def running(ctx: StepContext) -> Iterator[StepContext]:
    """Make ``ctx`` the context of the code in the block; clean its scratch dir after."""
    token = _CURRENT.set(ctx)
    try:
        yield ctx
    finally:
        _CURRENT.reset(token)
        ctx.close()
