"""Helpers of the server's own tests: ``ductwork serve`` in a subprocess, one request at a time
over ``http.client`` (so a test controls every header and byte), the command line."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

FLOW = textwrap.dedent('''
    import ductwork as dw

    @dw.step
    def double(x: int) -> int:
        print("doubling", x)
        return 2 * x

    @dw.step
    def label(n: int, tag: str) -> str:
        return f"{tag}-{n}-VERSION"

    @dw.pipeline
    def flow(x: int = 3, tag: str = "t"):
        return label(double(x), tag)
''')


def free_port() -> int:
    """A TCP port free on loopback now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def env_for(root: Path) -> dict[str, str]:
    """The environment of a command on the store under ``root``."""
    env = {**os.environ, "DUCTWORK_STORE": str(root / "store"),
           "DUCTWORK_HOME": str(root / "home"), "PYTHONUNBUFFERED": "1"}
    env.pop("DUCTWORK_TOKEN", None)
    return env


def ductwork(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the ``ductwork`` command line on the store under ``root``."""
    done = subprocess.run([sys.executable, "-m", "ductwork", *args], env=env_for(root),
                          cwd=root, capture_output=True, text=True, timeout=120)
    if check and done.returncode != 0:
        raise AssertionError(f"ductwork {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done


def token(root: Path, name: str, role: str) -> str:
    """A new token (``ductwork token create``): the one line it prints on stdout."""
    return ductwork(root, "token", "create", name, "--role", role).stdout.strip()


def write_flow(root: Path, version: str = "v1", name: str = "flow.py") -> Path:
    """Write the test pipeline's file, its label step saying ``version``."""
    path = root / name
    path.write_text(FLOW.replace("VERSION", version))
    return path


class Served:
    """One ``ductwork serve`` subprocess on a free loopback port."""

    def __init__(self, root: Path, *options: str) -> None:
        self.root, self.port = root, free_port()
        self.log = root / f"serve-{self.port}.out"
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "ductwork", "serve", "--port", str(self.port),
                 *options], env=env_for(root), cwd=root, stdout=out,
                stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.kill()
                    raise AssertionError(f"the server did not start:\n{self.output()}") from None
                time.sleep(0.05)

    def output(self) -> str:
        """What the server printed so far."""
        return self.log.read_text(errors="replace")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Stop this server with ``sig`` and wait for it."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=30)

    def call(self, method: str, path: str, token: str | None = None, body: Any = None, *,
             raw: bytes | None = None, headers: dict[str, str] | None = None,
             chunked: bool = False) -> tuple[int, Any]:
        """One request to ``/api/v1{path}``; answers (status, JSON or text)."""
        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            sent.setdefault("Content-Type", "application/json")
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            if chunked:
                conn.request(method, f"/api/v1{path}", body=iter([data]), headers=sent,
                             encode_chunked=True)
            else:
                conn.request(method, f"/api/v1{path}", body=data, headers=sent)
            answer = conn.getresponse()
            text = answer.read().decode()
        finally:
            conn.close()
        kind = answer.getheader("content-type", "")
        return answer.status, json.loads(text) if "json" in kind else text

    def wait(self, token: str, run_id: str, timeout: float = 60) -> dict[str, Any]:
        """Poll a run until it ends; answers its last state."""
        deadline = time.monotonic() + timeout
        while True:
            status, run = self.call("GET", f"/runs/{run_id}", token)
            assert status == 200, run
            if run["status"] not in ("queued", "running"):
                return run
            if time.monotonic() > deadline:
                raise AssertionError(f"run {run_id} still {run['status']}:\n{self.output()}")
            time.sleep(0.05)


SLOW = textwrap.dedent('''
    import time
    import ductwork as dw

    @dw.step(cache=False)
    def nap(seconds: float, n: int) -> int:
        print("napping", n, flush=True)
        time.sleep(seconds)
        return n

    @dw.pipeline
    def slow(seconds: float = 0.5, n: int = 0):
        return nap(seconds, n)
''')


def publish_slow(root: Path) -> Path:
    """Publish ``slow`` (one uncached step that naps ``seconds``) on the store under ``root``."""
    (root / "slow.py").write_text(SLOW)
    ductwork(root, "publish", f"{root / 'slow.py'}:slow", "--name", "slow")
    return root
