"""The worker process: ``python -m ductwork.runtime.engine.worker``.

It reads jobs from a socket on the file descriptor named by
``DUCTWORK_WORKER_FD`` and answers each with a ``JobResult`` (its fields, as a
tuple), in the order they came (the parent sends a worker its next job while
it runs one, so it never waits a round trip between jobs). Messages are length-prefixed pickles
(``Channel``: no ``multiprocessing`` to import at start-up). A job message is
``(token, step_bytes, store_config, job_bytes)``: the step (cloudpickled, sent
once per worker and kept under its token), the run's store (so one worker
serves runs on any store; the stores it opened are kept) and the job's fields with
its arguments -- refs into the artifact store, or values when the store is private
to the parent (``memory://``, whose config has no URL), in which case outputs
come back as values too. Output of each job is captured at the file-descriptor
level, so what child processes print is kept as well.

SIGINT is ignored: on Ctrl-C the parent decides, and stops workers itself.
"""

from __future__ import annotations

import gc
import os
import signal
import struct
import sys
import time
import traceback

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_MEMO_ENTRIES = 32  # input values kept per worker, so a map's fixed inputs are read once
STEPS_KEPT = 256  # pickled steps a worker keeps; its parent mirrors this to know what it has
_STORES_KEPT = 8  # stores a worker keeps open (a worker serves runs on any store)
_HEADER = struct.Struct("!Q")
_CHUNK = 1 << 16


class Channel:
    """One end of a worker's socket: length-prefixed messages, read in as few calls as may be."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._buffer = bytearray()

    def send(self, data: bytes) -> None:
        """Write one message whole (blocking)."""
        header = _HEADER.pack(len(data))
        if len(data) <= _CHUNK:  # one system call for the usual small message
            self._write(header + data)
        else:
            self._write(header)
            self._write(data)

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view):]

    def has_message(self) -> bool:
        """A whole message is already read: take it without waiting on the socket."""
        buffer = self._buffer
        return len(buffer) >= _HEADER.size and \
            len(buffer) >= _HEADER.size + _HEADER.unpack_from(buffer)[0]

    def recv(self) -> bytes:
        """The next message (blocking); EOFError when the other end closed."""
        buffer = self._buffer
        while len(buffer) < _HEADER.size:
            self._fill(_CHUNK)
        end = _HEADER.size + _HEADER.unpack_from(buffer)[0]
        while len(buffer) < end:
            self._fill(end - len(buffer))
        message = bytes(memoryview(buffer)[_HEADER.size:end])
        del buffer[:end]
        return message

    def _fill(self, wanted: int) -> None:
        chunk = os.read(self.fd, max(wanted, _CHUNK))
        if not chunk:
            raise EOFError("the other end of the worker's socket closed")
        self._buffer += chunk

    def close(self) -> None:
        """Close the socket (once)."""
        fd, self.fd = self.fd, -1
        if fd >= 0:
            os.close(fd)


def serve(fd: int) -> None:
    """Answer jobs until the connection closes."""
    import pickle

    import cloudpickle

    from ductwork.runtime.engine.job import JobResult, execute
    from ductwork.runtime.engine.shipping import unpickle, unpickle_job

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _exit_with_parent()
    # What is imported by now lives as long as the worker: the collector need not walk it.
    gc.freeze()
    channel = Channel(fd)
    steps: dict[str, Any] = {}
    memo: dict[str, Any] = {}
    stores: dict[str, Any] = {}
    run_id = None
    while True:
        try:
            token, step_bytes, store_config, job_bytes = pickle.loads(channel.recv())
        except (EOFError, OSError):
            return
        store = _open_store(stores, store_config) if store_config.get("url") else None
        if step_bytes is not None:
            if len(steps) >= STEPS_KEPT:  # the parent evicts the same token at the same time
                del steps[next(iter(steps))]
            steps[token] = unpickle(step_bytes)
        job = unpickle_job(steps[token], job_bytes)
        if len(memo) > _MEMO_ENTRIES or job.run_id != run_id:
            memo.clear()  # inputs are shared within a run, not kept across runs
        run_id = job.run_id
        try:
            result = execute(job, store, capture="fds", memo=memo)
        except Exception:  # a fault of ours must fail the step, not kill the worker
            result = JobResult(job.step_id, time.time(), time.time(),
                               error=traceback.format_exc())
        # Values stay here when there is a store: data travels through it, not the pipe.
        channel.send(_dumps(result, store is None, pickle, cloudpickle))


def _dumps(result: Any, with_values: bool, pickle: Any, cloudpickle: Any) -> bytes:
    """Pickle a result's fields as a tuple (``result_from``): plainly (refs, text, numbers:
    twice as fast), else by cloudpickle (values of classes the user's pickled-by-value
    modules define)."""
    fields = (result.step_id, result.started, result.finished, result.refs,
              result.values if with_values else None, result.error, result.logs,
              result.metrics, result.corrupt)
    if fields[4] is None:
        try:
            return pickle.dumps(fields, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:  # a metric of a type only cloudpickle can carry
            pass
    return cloudpickle.dumps(fields, protocol=pickle.HIGHEST_PROTOCOL)


def result_from(message: bytes) -> Any:
    """The ``JobResult`` a worker sent (``_dumps``)."""
    import pickle

    from ductwork.runtime.engine.job import JobResult

    return JobResult(*pickle.loads(message))


def _open_store(stores: dict[str, Any], config: dict[str, Any]) -> Any:
    """The store a config names, opened once per worker (the few used last are kept)."""
    key = repr(sorted(config.items()))
    store = stores.get(key)
    if store is None:
        from ductwork.runtime.store.artifacts import ArtifactStore

        if len(stores) >= _STORES_KEPT:
            del stores[next(iter(stores))]
        store = stores[key] = ArtifactStore(config["url"], **config.get("options", {}))
    return store


def _exit_with_parent(interval: float = 0.5) -> None:
    """Exit when the parent dies (even by SIGKILL), instead of running on as an orphan."""
    import threading

    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(interval)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, daemon=True, name="ductwork-parent-watch").start()


def run_job_dir(job_dir: str, store_url: str | None) -> None:
    """Run the one job in ``job_dir`` (a container's way): ``payload`` in, ``result`` out.

    The layout is fixed: ``payload`` holds the cloudpickled ``(step bytes, job)``, the
    step bytes being ``(step, serializers)`` pickled once per run; ``result`` (written
    whole, by rename) holds the ``JobResult``. With no store the outputs come back as
    values in the result.
    """
    import cloudpickle

    from ductwork.runtime.engine.job import JobResult, execute
    from ductwork.runtime.engine.shipping import unpickle
    from ductwork.runtime.store.artifacts import ArtifactStore

    with open(os.path.join(job_dir, "payload"), "rb") as f:
        step_bytes, job = cloudpickle.load(f)
    job = job.replace(step=unpickle(step_bytes))
    store = ArtifactStore(store_url) if store_url else None
    try:
        result = execute(job, store, capture="none")
    except Exception:
        result = JobResult(job.step_id, time.time(), time.time(), error=traceback.format_exc())
    if store is not None:
        result = result.replace(values=None)
    tmp = os.path.join(job_dir, "result.tmp")
    with open(tmp, "wb") as f:
        cloudpickle.dump(result, f)
    os.replace(tmp, os.path.join(job_dir, "result"))


def main() -> None:
    """Entry point: ``--job DIR [--store URL]`` runs one job; else serve a parent's jobs."""
    args = sys.argv[1:]
    if args[:1] == ["--job"]:
        store = args[3] if args[2:3] == ["--store"] else None
        run_job_dir(args[1], store)
        # The result is on disk: skip the interpreter's teardown (it is the container's end).
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    serve(int(os.environ["DUCTWORK_WORKER_FD"]))


if __name__ == "__main__":
    main()
    sys.exit(0)
