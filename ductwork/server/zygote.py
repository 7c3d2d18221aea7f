"""The zygote: a process that has imported the runtime once and forks one child per run.

A fresh interpreter spends most of a short run importing ductwork and its runtime;
a child forked from a process that already has them starts in milliseconds. The
launcher starts ``python -m ductwork.server.zygote`` with the server (``Zygote``),
and asks it for a child per run; when the zygote is gone or still starting, the
launcher starts the run as before, in a fresh interpreter (``child``), and starts a
new zygote.

The zygote is single-threaded and never imports user code (the children load the
published snapshot after the fork). Its protocol is JSON lines: on its stdin
``{"run_id", "spec", "log"}``; on its stdout ``{"ready": pid}`` once, then
``{"run_id", "pid"}`` (or ``{"run_id", "error"}``) per request. The spec travels
as the child's stdin does, never in argv. Each child does what a fresh child does:
a session of its own (a Ctrl-C or a kill meant for the server's group, or the
zygote's, never reaches it; cancel signals its group), stdout and stderr to the
run's log file, ``child.run``; it writes its exit status to ``<log>.exit`` (its
parent is the zygote, so the launcher watches it by pid). The zygote reaps its
children; it exits when its stdin closes -- the server stopped or died -- and leaves
its children running.

Why not ``multiprocessing``'s forkserver: it pickles what it runs, is one per
interpreter, starts a resource tracker and keeps each child's exit status on the
parent's ``Process`` object; here the spec is JSON, a server that restarts adopts
children by pid, and the file descriptors and session are set before any run code,
in a loop of a few dozen lines.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import select
import signal
import socket
import subprocess
import sys
import threading
from typing import IO, Any

__all__ = ["Zygote", "ZygoteUnavailable", "main"]

ANSWER_SECONDS = 10.0
STARTING_WAIT = 2.0


class ZygoteUnavailable(Exception):
    """The zygote cannot fork this run now; the message says why."""


class Zygote:
    """The launcher's handle on its zygote process."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen[bytes] | None = None
        self._answers: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._ready = threading.Event()

    @property
    def pid(self) -> int | None:
        """The zygote's pid, while one was started."""
        return None if self._proc is None else self._proc.pid

    def start(self) -> None:
        """Start a zygote; it takes runs once it has imported the runtime (``ready``)."""
        self._answers, self._ready = queue.Queue(), threading.Event()
        # A session of its own: a Ctrl-C at the server's terminal is the server's to handle.
        self._proc = subprocess.Popen([sys.executable, "-m", "ductwork.server.zygote"],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      start_new_session=True, close_fds=True)
        assert self._proc.stdout is not None
        threading.Thread(target=self._read, args=(self._proc.stdout, self._answers,
                                                  self._ready),
                         name="ductwork-zygote-answers", daemon=True).start()

    @staticmethod
    def _read(stream: IO[bytes], answers: queue.Queue[dict[str, Any] | None],
              ready: threading.Event) -> None:
        for line in stream:
            with contextlib.suppress(ValueError):
                message = json.loads(line)
                if "ready" in message:
                    ready.set()
                else:
                    answers.put(message)
        answers.put(None)  # it exited

    def exited(self) -> int | None:
        """The zygote's exit status if it is gone (-1 if none was started), else None."""
        if self._proc is None:
            return -1
        return self._proc.poll()

    def ready(self) -> bool:
        """Whether it is running and has imported the runtime."""
        return self.exited() is None and self._ready.is_set()

    def fork(self, run_id: str, spec: dict[str, Any], log: str) -> int:
        """Fork a child running ``run_id``; its pid. Raises ``ZygoteUnavailable``."""
        status = self.exited()
        if status is not None:
            raise ZygoteUnavailable(f"the zygote exited with status {status}")
        # A zygote still importing is about as far along as a fresh interpreter would be.
        if not self._ready.wait(timeout=STARTING_WAIT):
            raise ZygoteUnavailable("the zygote is still starting")
        assert self._proc is not None and self._proc.stdin is not None
        line = json.dumps({"run_id": run_id, "spec": spec, "log": log}).encode() + b"\n"
        try:
            self._proc.stdin.write(line)
            self._proc.stdin.flush()
            answer = self._answers.get(timeout=ANSWER_SECONDS)
        except OSError as exc:
            raise ZygoteUnavailable(f"the zygote is gone ({exc})") from None
        except queue.Empty:
            self.stop(kill=True)  # stuck: a zygote that does not answer is replaced
            raise ZygoteUnavailable(f"the zygote did not answer in {ANSWER_SECONDS:g} s"
                                    ) from None
        if answer is None:
            raise ZygoteUnavailable("the zygote exited")
        if answer.get("run_id") != run_id or "pid" not in answer:
            raise ZygoteUnavailable(f"the zygote could not fork: {answer.get('error')}")
        return int(answer["pid"])

    def stop(self, kill: bool = False) -> None:
        """Let the zygote go (it exits when its stdin closes); its children run on."""
        proc = self._proc
        if proc is None:
            return
        with contextlib.suppress(OSError):
            if proc.stdin is not None:
                proc.stdin.close()
        if kill:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()  # the zygote alone, never its children's groups
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


# --- the zygote process ----------------------------------------------------------------------


def _send(fd: int, message: dict[str, Any]) -> None:
    data = json.dumps(message).encode() + b"\n"
    while data:
        data = data[os.write(fd, data):]


def _reap() -> None:
    """Collect children that have exited (their status is in their ``.exit`` files)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _own_driver() -> None:
    """Record runs as driven by this process, not the zygote.

    The run history names a run's driver ``host:pid`` as computed when the records
    module was imported -- in the zygote -- and reads a running run whose driver is gone
    as ``died``: without this, every run still going when the zygote exits (with its
    server) would read ``died``.
    """
    from ductwork.runtime.records import rows, runstore

    rows.DRIVER = runstore._DRIVER = f"{socket.gethostname()}:{os.getpid()}"


def _become_child(request: dict[str, Any], inherited: tuple[int, ...], detached: int) -> None:
    """In the forked child: detach, point output at the run's log, run, and exit.

    ``detached`` is closed once the child leads its own session: the zygote answers the
    pid only then, so a cancel (a signal to the pid's group) never comes too early.
    """
    code = 2
    log = request["log"]
    try:
        os.setsid()
        os.close(detached)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for fd in inherited:
            os.close(fd)
        out = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(out, 1)
        os.dup2(out, 2)
        os.close(out)
        sys.argv = ["ductwork.server.child", request["run_id"]]
        _own_driver()
        from ductwork.server import child

        code = child.run(request["run_id"], request["spec"])
    except KeyboardInterrupt:
        print("cancelled", file=sys.stderr)
        code = 130
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        with contextlib.suppress(BaseException):
            sys.stdout.flush()
            sys.stderr.flush()
            with open(f"{log}.exit", "w") as f:
                f.write(str(code))
        os._exit(code)


def _fork(request: dict[str, Any], inherited: tuple[int, ...]) -> dict[str, Any]:
    run_id = request.get("run_id")
    sys.stdout.flush()
    sys.stderr.flush()  # nothing buffered here may be written twice by the child
    ready, detached = os.pipe()
    try:
        pid = os.fork()
    except OSError as exc:
        os.close(ready)
        os.close(detached)
        return {"run_id": run_id, "error": f"fork failed: {exc}"}
    if pid == 0:
        os.close(ready)
        _become_child(request, inherited, detached)
    os.close(detached)
    os.read(ready, 1)  # end of file: the child called setsid (or died)
    os.close(ready)
    return {"run_id": run_id, "pid": pid}


def main() -> int:
    """Import the runtime, say ready, and fork a child per request until stdin closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server stops us by closing stdin
    requests, answers = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(2, 1)  # stray output goes where the server's does, not into the protocol
    os.close(devnull)
    from ductwork.server import child

    child.preload()
    if threading.active_count() != 1:
        print("ductwork: zygote: the runtime started a thread; forking would copy it "
              "half-done, so runs start in fresh interpreters", file=sys.stderr, flush=True)
        return 1
    _send(answers, {"ready": os.getpid()})
    print(f"ductwork: zygote ready (pid {os.getpid()}): runs start by fork", file=sys.stderr,
          flush=True)
    pending = b""
    while True:
        _reap()
        readable, _, _ = select.select([requests], [], [], 0.2)
        if not readable:
            continue
        chunk = os.read(requests, 1 << 16)
        if not chunk:
            _reap()
            return 0
        pending += chunk
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            try:
                request = json.loads(line)
            except ValueError as exc:
                _send(answers, {"run_id": None, "error": f"not JSON: {exc}"})
                continue
            _send(answers, _fork(request, (requests, answers)))


if __name__ == "__main__":
    sys.exit(main())
