"""The spark backend: steps that run Spark jobs, with a ``SparkSession`` in their context.

::

    [tool.ductwork.compute.spark]
    backend = "spark"
    master = "local[2]"                 # Spark in this process's JVM, or
    # remote = "sc://127.0.0.1:15002"   # a Spark Connect server (Databricks Connect too)
    conf = { "spark.sql.shuffle.partitions" = "4" }

A step with ``compute="spark"`` runs in this process (the Spark driver), one at
a time -- Spark spreads each job over its executors -- and finds the session in
``dw.context().spark``. ``remote`` may name environment variables, as
``"sc://${DATABRICKS_HOST}:443/;token=${DATABRICKS_TOKEN};x-databricks-cluster-id=..."``;
secrets stay out of the file.

Data (``spark_frames``): a Spark DataFrame the step returns is stored as Parquet with
deterministic bytes, so its digest follows its rows and early cutoff works -- written by
Spark itself into a container of its part files (``spark_parts``) when Spark shares this
machine's filesystem (``master``, or a server on loopback) and the store is local, else
collected as Arrow. A Spark step receives such an input as a Spark DataFrame (read by
Spark from verified files, or sent as Arrow), and a tabular dataset too (``spark_tables``:
Spark reads its files); a plain step receives pandas. Everything else travels as usual.

The session is made on the first Spark step of the process (a cached rerun
starts no JVM), kept for later runs, and stopped at exit. A Spark job that
fails -- when the step runs it, or when its returned DataFrame is collected --
fails the step with Spark's message. A step over its ``timeout`` is failed at once
and its Spark jobs are interrupted; Python code it runs outside Spark jobs goes on
unseen (a thread cannot be stopped), and its result is never stored.
"""

from __future__ import annotations

import atexit
import contextvars
import importlib.util
import os
import re
import shutil
import threading
import time
import traceback
from concurrent.futures import Future
from urllib.parse import urlparse

from ductwork.backends import spark_parts
from ductwork.backends.spark_frames import collect, is_spark_frame, read_frame, register
from ductwork.backends.spark_parts import Scratch
from ductwork.backends.spark_tables import for_spark
from ductwork.runtime.context import using_spark
from ductwork.runtime.engine.backend import BackendError
from ductwork.runtime.engine.job import Job, JobResult, call, store_outputs

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_LOCK = threading.Lock()
_SESSIONS: dict[tuple[str, str, str], Any] = {}
#: Spark's own console progress bars and UI are off: steps' logs stay readable.
_QUIET = {"spark.ui.enabled": "false", "spark.ui.showConsoleProgress": "false"}
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


class SparkBackend:
    """Run Spark steps in this process, against a local master or a Spark Connect server."""

    name = "spark"
    capacity = 1
    #: Jobs carry refs: Spark inputs are read by Spark, the others here.
    reads_store = True
    schedules_graph = False

    def __init__(self, store: Any, master: str | None = None, remote: str | None = None,
                 conf: dict[str, Any] | None = None, shared_filesystem: bool | None = None
                 ) -> None:
        if importlib.util.find_spec("pyspark") is None:
            raise BackendError("The spark backend needs pyspark: pip install 'ductwork[spark]'.")
        if (master is None) == (remote is None):
            raise BackendError(
                "A spark compute target needs master = \"local[2]\" (Spark in this process) or "
                "remote = \"sc://host:15002\" (a Spark Connect server), not "
                f"{'both' if master else 'neither'}.")
        if master is not None and shutil.which("java") is None and not os.environ.get(
                "JAVA_HOME"):
            raise BackendError(f"master = {master!r} runs Spark in a JVM here, and no `java` "
                               "is on PATH: apt-get install -y openjdk-17-jre-headless.")
        register()  # Spark outputs are stored as Parquet from now on, here and in workers
        self.store = store
        self.master = master
        self.remote = _expand(remote) if remote is not None else None
        self.conf = {k: str(v) for k, v in (conf or {}).items()}
        if shared_filesystem is None:  # Spark reads the store's files itself where it can
            shared_filesystem = master is not None or urlparse(
                self.remote or "").hostname in _LOOPBACK
        self.direct = shared_filesystem

    @property
    def spark(self) -> Any:
        """The session, made on first use and kept for the process."""
        return session(self.master, self.remote, self.conf)

    def submit(self, job: Job) -> Future[JobResult]:
        """Run ``job`` now, in this thread, with the session in its context."""
        future: Future[JobResult] = Future()
        future.set_result(self._execute(job))
        return future

    def _execute(self, job: Job) -> JobResult:
        started = time.time()
        try:
            spark = self.spark
        except Exception as exc:
            return JobResult(job.step_id, started, time.time(), error=(
                f"Step '{job.step_id}': no Spark session ({self.master or self.remote}): "
                f"{type(exc).__name__}: {exc}\n"))
        scratch = Scratch(self.store)  # the files Spark reads and writes for this step
        try:
            return self._execute_with(job, spark, scratch, started)
        finally:
            scratch.close()

    def _execute_with(self, job: Job, spark: Any, scratch: Scratch, started: float
                      ) -> JobResult:
        from ductwork.runtime.store.artifacts import CorruptArtifact
        from ductwork.runtime.store.refs import GatherRef, map_refs

        memo: dict[str, Any] = {}
        # Spark writes its outputs into the store's filesystem itself when it shares it.
        writes = scratch if self.direct and self.store.is_local else None

        def load(ref: Any) -> Any:
            if isinstance(ref, GatherRef):
                return [load(part) for part in ref.parts]
            if ref.serializer == "spark":
                return read_frame(spark, self.store, ref, self.direct, scratch)
            if ref.digest not in memo:
                memo[ref.digest] = self.store.get(ref)
            return memo[ref.digest]

        try:
            # Tabular datasets become Spark DataFrames, read by Spark (spark_tables).
            job = job.replace(args=for_spark(map_refs(job.args, load), spark, self.direct),
                              kwargs=for_spark(map_refs(job.kwargs, load), spark, self.direct))
        except CorruptArtifact as exc:
            return JobResult(job.step_id, started, time.time(), error=f"{exc}\n",
                             corrupt=exc.digest)
        except Exception as exc:
            return JobResult(job.step_id, started, time.time(), error=(
                f"Step '{job.step.name}': its inputs could not be read: "
                f"{type(exc).__name__}: {exc}\n"))
        timeout = job.step.options.timeout
        if timeout is None:
            values, error, logs, metrics = _run(job, spark, self.store, writes)
        else:
            ran = _within(timeout, _run, job, spark, self.store, writes)
            if ran is None:
                interrupt(spark)
                return JobResult(job.step_id, started, time.time(), error=(
                    f"Step '{job.step_id}' overran its timeout of {timeout:g} s: its Spark jobs "
                    "were interrupted and its result, if it comes, is discarded (never cached). "
                    "Raise timeout=, or give the job less to do.\n"))
            values, error, logs, metrics = ran
        done = {"logs": logs, "metrics": metrics}
        if error is not None or values is None:
            return JobResult(job.step_id, started, time.time(), error=error, **done)
        try:
            refs = store_outputs(job, values, self.store)
        except ValueError as exc:
            return JobResult(job.step_id, started, time.time(), error=str(exc), **done)
        # No values: the loop reads outputs from the store, so a plain step gets pandas.
        return JobResult(job.step_id, started, time.time(), refs=refs, **done)

    def environment(self, step: Any) -> None:
        """Spark's version is the installed pyspark's, counted with the code's packages."""

    def cancel(self) -> None:
        """Interrupt the Spark jobs running for this process (Ctrl-C)."""
        with _LOCK:
            sessions = list(_SESSIONS.values())
        for spark in sessions:
            interrupt(spark)

    def close(self) -> None:
        """Nothing to release: the session is kept for the next run of this process."""


def interrupt(spark: Any) -> None:
    """Stop the Spark jobs ``spark`` runs (Connect: its operations; classic: its jobs)."""
    try:
        if hasattr(spark, "interruptAll"):
            spark.interruptAll()
        else:
            spark.sparkContext.cancelAllJobs()
    except Exception:  # nothing left to stop
        pass


def _run(job: Job, spark: Any, store: Any, writes: Scratch | None
         ) -> tuple[Any, str | None, str, dict[str, Any]]:
    """Call the step with ``spark`` in its context, and collect the DataFrames it returns."""
    with using_spark(spark):
        values, error, logs, metrics = call(job, "python", store)
        if error is None and values is not None:
            values, error = _collected(job.step_id, values, writes)
    return values, error, logs, metrics


def _within(timeout: float, fn: Any, *args: Any) -> Any:
    """``fn(*args)`` in a helper thread (with this context), or None if it overruns."""
    box: list[Any] = []
    context = contextvars.copy_context()
    runner = threading.Thread(target=lambda: box.append(context.run(fn, *args)), daemon=True,
                              name="ductwork-spark-step")
    runner.start()
    runner.join(timeout)
    return box[0] if box else None


def _collected(sid: str, values: dict[str, Any], writes: Scratch | None
               ) -> tuple[dict[str, Any] | None, str | None]:
    """Run the Spark jobs of the DataFrames a step returned -- Spark writing their Parquet
    into ``writes`` where it can, else collecting them as Arrow; a failure is the step's."""
    out = {}
    for name, value in values.items():
        if not is_spark_frame(value):
            out[name] = value
            continue
        try:
            out[name] = (collect(value) if writes is None else spark_parts.write(value, writes))
        except Exception as exc:
            text = "".join(traceback.format_exception_only(type(exc), exc))
            return None, (f"Step '{sid}': the Spark job computing its output '{name}' "
                          f"failed:\n{text}")
    return out, None


def session(master: str | None, remote: str | None, conf: dict[str, str]) -> Any:
    """A SparkSession for ``master`` or ``remote`` with ``conf``, kept for the process."""
    key = (master or "", remote or "", repr(sorted(conf.items())))
    with _LOCK:
        spark = _SESSIONS.get(key)
        if spark is not None and _alive(spark):
            return spark
        from pyspark.sql import SparkSession

        _one_mode(master, remote)
        builder = SparkSession.builder.appName("ductwork")
        if master is not None:
            if any(k[0] and k[0] != master for k in _SESSIONS):
                raise BackendError(f"Spark runs one local master per process; this one "
                                   f"already runs another than {master!r}.")
            builder = builder.master(master)
            for k, v in {**_QUIET, **conf}.items():
                builder = builder.config(k, v)
            spark = builder.getOrCreate()
        else:
            for k, v in conf.items():
                builder = builder.config(k, v)
            spark = builder.remote(remote).create()
        _SESSIONS[key] = spark
    atexit.unregister(stop_sessions)
    atexit.register(stop_sessions)  # after pyspark's own exit handlers: ours runs first
    return spark


def _one_mode(master: str | None, remote: str | None) -> None:
    """Refuse to mix a local master and Spark Connect in one process: pyspark switches the
    whole process to Connect (SPARK_CONNECT_MODE_ENABLED) once a Connect session exists."""
    hint = ("Give every Spark compute target a remote (a Connect server can run local[2] "
            "itself: bash scripts/services.sh up spark), or run them in separate processes.")
    if master is not None and "SPARK_CONNECT_MODE_ENABLED" in os.environ:
        raise BackendError(f"master = {master!r}: this process already talks Spark Connect, and "
                           f"pyspark cannot run a local master beside it. {hint}")
    if remote is not None and any(k[0] for k in _SESSIONS):
        raise BackendError(f"remote = {remote!r}: this process already runs a local Spark "
                           f"master, which a Spark Connect session would break. {hint}")


def _alive(spark: Any) -> bool:
    try:
        if hasattr(spark, "is_stopped"):
            return not spark.is_stopped
        return spark.sparkContext._jsc is not None
    except Exception:
        return False


def stop_sessions() -> None:
    """Stop every session this process made (at exit)."""
    with _LOCK:
        sessions = list(_SESSIONS.values())
        _SESSIONS.clear()
    for spark in sessions:
        try:
            spark.stop()
        except Exception:  # already gone
            pass


def _expand(value: str) -> str:
    missing = [m for m in _ENV_REF.findall(value) if m not in os.environ]
    if missing:
        raise BackendError(f"remote = {value!r} refers to ${{{missing[0]}}}, which is not set "
                           "in this process's environment: set it (a secret belongs there, "
                           "not in the file).")
    return _ENV_REF.sub(lambda m: os.environ[m.group(1)], value)
