"""The docker backend: each step in its own container, from its environment's image.

A job is laid out in a fresh host directory, mounted at ``/ductwork/job``:
``payload`` (the cloudpickled step, the user's serializers and the job) in,
``result`` out. ductwork's own source is mounted read-only at
``/ductwork/lib``; step code travels in the payload (the user's modules by
value), so editing code never rebuilds an image. A local artifact store is
mounted at ``/ductwork/store`` and the container reads inputs and writes
outputs there, as the invoking user (``--user UID:GID``), so files it creates
belong to that user; any other store stays in the parent, and values travel in
the payload and result instead. The local folders a job's dataset arguments read
(a local datastore, an absolute path, the store holding a snapshot's copies) are
mounted read-only at ``/ductwork/data/<n>`` and the datasets shipped with those
paths (``docker_mounts``).

``container_config`` is a pure function from a job's facts to the arguments of
``docker run``; the tests check it without an engine. The container has no
network. It is removed after the step, also on failure, timeout and Ctrl-C.
The cache key of a step names its image by ID (the digest), not its tag, so
a rebuilt image reruns its steps.

Whatever goes wrong between ductwork and the engine fails that one step, never
the run: the engine refusing to create or start a container (a bad image or
mount) or not answering when asked for a step's image, the connection dropping
or the container vanishing while the step runs. Only a wait that outlasted the
step's ``timeout`` is reported as a timeout.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import cloudpickle

import ductwork
from ductwork.backends.docker_env import Images, engine_error
from ductwork.backends.docker_mounts import DATA_MOUNT, STORE_MOUNT, mount_datasets
from ductwork.dsl.slotted import as_dict
from ductwork.runtime.engine.backend import BackendError
from ductwork.runtime.engine.job import Job, JobResult, store_outputs
from ductwork.runtime.engine.shipping import pickle_step

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

JOB_MOUNT = "/ductwork/job"
LIB_MOUNT = "/ductwork/lib"


def container_config(
    image: str,
    job_dir: str,
    lib_dir: str,
    store_dir: str | None,
    uid: int,
    gid: int,
    cpus: float | None = None,
    memory: str | None = None,
    gpus: int | None = None,
    environment: dict[str, str] | None = None,
    data_mounts: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The keyword arguments of ``docker.containers.run`` for one job (pure);
    ``data_mounts`` maps host folders a job's datasets read to their read-only mounts."""
    command = ["python", "-m", "ductwork.runtime.engine.worker", "--job", JOB_MOUNT]
    # Only ductwork's own package is mounted: the image's packages are the step's.
    volumes = {job_dir: {"bind": JOB_MOUNT, "mode": "rw"},
               lib_dir: {"bind": f"{LIB_MOUNT}/ductwork", "mode": "ro"}}
    if store_dir is not None:
        command += ["--store", STORE_MOUNT]
        volumes[store_dir] = {"bind": STORE_MOUNT, "mode": "rw"}
    config: dict[str, Any] = {
        "image": image,
        "command": command,
        "volumes": volumes,
        "user": f"{uid}:{gid}",
        "environment": {"PYTHONPATH": LIB_MOUNT, "HOME": "/tmp", "PYTHONUNBUFFERED": "1",
                        **(environment or {})},
        "working_dir": "/tmp",
        "network_mode": "none",
        "detach": True,
        "labels": {"ductwork.job": os.path.basename(job_dir)},
    }
    if data_mounts:
        import docker.types

        # Mounts, not volumes: a source folder that vanished is an error, where a volume
        # would have the engine create an empty, root-owned folder in its place.
        config["mounts"] = [docker.types.Mount(target, source, type="bind", read_only=True)
                            for source, target in sorted(data_mounts.items())]
    if cpus is not None:
        config["nano_cpus"] = int(cpus * 1e9)
    if memory is not None:
        config["mem_limit"] = memory
    if gpus:
        import docker.types

        config["device_requests"] = [docker.types.DeviceRequest(count=gpus,
                                                                 capabilities=[["gpu"]])]
    return config


def connect() -> Any:
    """A client of the Docker engine; a clear error naming the socket if none answers."""
    where = _engine_address()
    try:
        import docker
    except ImportError as exc:
        raise BackendError(
            "The docker backend needs the Docker SDK: pip install 'ductwork[docker]'."
        ) from exc
    try:
        client = docker.from_env(timeout=120)
        client.ping()
    except Exception as exc:
        raise BackendError(
            f"No Docker engine answers at {where} ({type(exc).__name__}). Start one (e.g. "
            "`dockerd &`, or `bash scripts/services.sh up docker` in ductwork's repository) "
            "or point DOCKER_HOST at a running engine."
        ) from None
    return client


class DockerBackend:
    """Run each job in a container of its environment's image."""

    name = "docker"
    schedules_graph = False

    def __init__(self, store: Any, max_workers: int | None = None, cpus: float | None = None,
                 memory: str | None = None, gpus: int | None = None, image: str | None = None,
                 ) -> None:
        self.client = connect()
        self.store = store
        self.capacity = max_workers or os.cpu_count() or 1
        self.reads_store = store.is_local
        self.limits = {"cpus": cpus, "memory": memory, "gpus": gpus}
        self.images = Images(self.client, default=image)
        self.lib_dir = str(Path(ductwork.__file__).resolve().parent)
        self._pool = ThreadPoolExecutor(self.capacity, thread_name_prefix="ductwork-docker")
        self._running: set[Any] = set()
        self._lock = threading.Lock()
        self._payloads: dict[int, tuple[Any, bytes]] = {}

    def environment(self, step: Any) -> str:
        """The ID of the image the step runs in: part of its cache key."""
        import docker.errors
        import requests.exceptions

        try:
            return self.images.image_for(step.options.env)
        except BackendError as exc:
            raise BackendError(f"Step '{step.name}': {exc}") from None
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            # Raised here it fails the step (the engine catches BackendError), not the run.
            raise BackendError(
                f"Step '{step.name}': the Docker engine at {_engine_address()} could not "
                f"provide its image: {engine_error(exc)}. Check `docker info` and rerun."
            ) from None

    def submit(self, job: Job) -> Future[JobResult]:
        """Run ``job`` in a new container on a pool thread."""
        return self._pool.submit(self._run, job)

    def _payload(self, job: Job) -> bytes:
        with self._lock:
            entry = self._payloads.get(id(job.step))
            if entry is None or entry[0] is not job.step:
                entry = (job.step, pickle_step(job.step))
                self._payloads[id(job.step)] = entry
        # The step's pickle is reused; the job (arguments) is pickled per call.
        return cloudpickle.dumps((entry[1], Job(**{**_fields(job), "step": None})))

    def _run(self, job: Job) -> JobResult:
        started = time.time()
        job_dir = tempfile.mkdtemp(prefix="ductwork-job-")
        container = None

        def failed(error: str, logs: str = "") -> JobResult:
            return JobResult(job.step_id, started, time.time(), error=error, logs=logs)

        try:
            image = self.environment(job.step)
            store_root = self.store.root if self.reads_store else None
            # Datasets on local folders: mounted read-only, and shipped with the paths the
            # container sees them at (a BackendError naming the argument if one is missing).
            job, data_mounts = mount_datasets(job, store_root)
            try:
                payload = self._payload(job)
            except Exception as exc:
                return failed(
                    f"Step '{job.step_id}' could not be sent to its container: "
                    f"{type(exc).__name__}: {exc}. Everything a step uses must be picklable by "
                    "cloudpickle; run it with backend='inline' instead.\n")
            with open(os.path.join(job_dir, "payload"), "wb") as f:
                f.write(payload)
            os.chmod(job_dir, 0o777)  # the container's user writes the result here
            config = container_config(
                image, job_dir, self.lib_dir, store_root, os.getuid(), os.getgid(),
                **self.limits, data_mounts=data_mounts,
            )
            try:
                # Created, then started: a container the engine fails to start is removed too.
                container = self.client.containers.create(**config)
                with self._lock:
                    self._running.add(container)
                container.start()
            except Exception as exc:
                return failed(_start_error(job.step_id, exc))
            timeout = job.step.options.timeout
            waited = time.monotonic()
            try:
                status = container.wait(timeout=timeout)
            except Exception as exc:
                if timeout is not None and _timed_out(exc, time.monotonic() - waited, timeout):
                    return failed(
                        f"Step '{job.step_id}' timed out after {timeout:g} s "
                        f"(timeout={timeout:g}); its container was stopped.\n", _logs(container))
                if _removed(container):
                    return failed(_removed_error(job.step_id), _logs(container))
                return failed(_lost_error(job.step_id, exc), _logs(container))
            return self._collect(job, job_dir, container, status, started)
        except BackendError as exc:
            return failed(f"{exc}\n")
        finally:
            if container is not None:
                with self._lock:
                    self._running.discard(container)
                with contextlib.suppress(Exception):
                    container.remove(force=True)
            shutil.rmtree(job_dir, ignore_errors=True)

    def _collect(self, job: Job, job_dir: str, container: Any, status: dict[str, Any],
                 started: float) -> JobResult:
        logs = _logs(container)
        path = os.path.join(job_dir, "result")
        if not os.path.exists(path):
            if _removed(container):
                return JobResult(job.step_id, started, time.time(), logs=logs,
                                 error=_removed_error(job.step_id))
            code = status.get("StatusCode")
            return JobResult(job.step_id, started, time.time(), logs=logs, error=(
                f"The container running step '{job.step_id}' exited with status {code} without "
                f"a result (137 means it was killed, e.g. out of memory). Its output:\n"
                f"{logs[-2000:]}\n"))
        with open(path, "rb") as f:
            result: JobResult = cloudpickle.load(f)
        result = JobResult(**{**_fields(result), "logs": logs})
        if result.error is None and result.refs is None and result.values is not None:
            try:
                refs = store_outputs(job, result.values, self.store)
            except ValueError as exc:
                return JobResult(job.step_id, result.started, result.finished, error=str(exc),
                                 logs=logs, metrics=result.metrics)
            result = JobResult(**{**_fields(result), "refs": refs})
        return result

    def cancel(self) -> None:
        """Kill the containers still running (Ctrl-C)."""
        with self._lock:
            running = list(self._running)
        for container in running:
            with contextlib.suppress(Exception):
                container.remove(force=True)

    def close(self) -> None:
        """Wait for the pool threads and release the client."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        with contextlib.suppress(Exception):
            self.client.close()


def _engine_address() -> str:
    """Where the client looks for the engine, for messages."""
    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


def _start_error(step_id: str, exc: BaseException) -> str:
    """Say that the engine would not create or start a step's container, and why."""
    return (
        f"Step '{step_id}' could not start its container: the Docker engine at "
        f"{_engine_address()} answered {engine_error(exc)}. Check the step's image "
        "(Environment(base_image=...) or the compute target's image): it must run `python` "
        f"and take directory mounts at {JOB_MOUNT}, {LIB_MOUNT}, {STORE_MOUNT} and "
        f"{DATA_MOUNT}/<n> (the local folders of its datasets); check the "
        "compute target's cpus/memory/gpus against the engine (`docker info`).\n"
    )


def _lost_error(step_id: str, exc: BaseException) -> str:
    """Say that waiting for a step's container failed for a reason other than its timeout."""
    return (
        f"Step '{step_id}' lost the Docker engine while waiting for its container: "
        f"{engine_error(exc)}. The engine at {_engine_address()} may have restarted or dropped the "
        "connection; the step's result is unknown and its container was removed if the engine "
        "still answered. Check `docker info`, then rerun the pipeline (steps that finished are "
        "served from the cache).\n"
    )


def _removed_error(step_id: str) -> str:
    """Say that someone removed a step's container while it ran."""
    return (
        f"Step '{step_id}': its container was removed while the step ran (by `docker rm -f`, "
        "`docker system prune` or another client), so it has no result. Leave containers "
        "labelled ductwork.job alone while a run is going, then rerun the pipeline.\n"
    )


def _timed_out(exc: BaseException, waited: float, timeout: float) -> bool:
    """Whether a failed ``container.wait`` is the step's timeout expiring.

    docker-py reports a read timeout on its unix socket as a ``ConnectionError`` around
    urllib3's ``ReadTimeoutError``, the same type as a dropped connection; so look for a
    timeout in the exception's chain and arguments, and ask that the wait lasted as long.
    """
    import requests.exceptions
    import urllib3.exceptions

    kinds = (requests.exceptions.Timeout, urllib3.exceptions.TimeoutError, TimeoutError)
    seen: set[int] = set()
    todo: list[Any] = [exc]
    found = False
    while todo and not found:
        item = todo.pop()
        if not isinstance(item, BaseException) or id(item) in seen:
            continue
        seen.add(id(item))
        found = isinstance(item, kinds)
        todo += [item.__cause__, item.__context__, *item.args]
    # The socket's clock and ours differ slightly: allow 1 % short.
    return found and waited >= timeout * 0.99


def _removed(container: Any) -> bool:
    """Whether the container is gone or being removed (False if the engine cannot say)."""
    import docker.errors

    try:
        container.reload()
    except docker.errors.NotFound:
        return True
    except Exception:
        return False
    return container.attrs.get("State", {}).get("Status") in ("removing", "dead")


def _logs(container: Any) -> str:
    try:
        return container.logs(stdout=True, stderr=True).decode("utf-8", errors="replace")
    except Exception:
        return ""


def _fields(obj: Any) -> dict[str, Any]:
    return as_dict(obj)
