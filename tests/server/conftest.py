"""A real ``ductwork serve`` on loopback, started by the tests as a user would start it.

``live_server`` (one per test module): a store with two published pipelines --
``flow`` (one cached step, ``x * 10``, which prints) and ``sleepy`` (one uncached step
that sleeps ``seconds``) -- tokens for each role, and the server in a subprocess on a
free port. Everything goes through the command line (``publish``, ``token create``,
``serve``); nothing is mocked.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

PIPELINES = '''
import time

from ductwork import pipeline, step


@step
def scale(x: int) -> int:
    print(f"scaling {x}")
    return x * 10


@pipeline
def flow(x: int = 2):
    return {"y": scale(x)}


@step(cache=False)
def nap(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


@pipeline
def sleepy(seconds: float = 30.0):
    return nap(seconds)
'''

ROLES = ("admin", "runner", "viewer")


def free_port() -> int:
    """A TCP port nothing listens on now (the OS's choice)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def token_from(stdout: str) -> str:
    """The token in ``ductwork token create``'s output: its one long url-safe word."""
    words = re.findall(r"[A-Za-z0-9_\-\.~]{32,}", stdout)
    assert words, f"no token in: {stdout!r}"
    return max(words, key=len)


@dataclass
class LiveServer:
    """A running server: its URL, store, the environment its commands use, and tokens."""

    root: Path
    store: str
    env: dict[str, str]
    port: int = 0
    tokens: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    log: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``python -m ductwork ARGS`` against this server's store."""
        out = subprocess.run([sys.executable, "-m", "ductwork", *args], capture_output=True,
                             text=True, timeout=180, env=self.env, cwd=self.root)
        if check:
            assert out.returncode == 0, f"ductwork {' '.join(args)}:\n{out.stdout}{out.stderr}"
        return out

    def create_token(self, name: str, role: str) -> str:
        """A new token of ``role`` (``ductwork token create``)."""
        token = token_from(self.cli("token", "create", name, "--role", role).stdout)
        self.tokens[name] = token
        return token

    def output(self) -> str:
        """What the server printed so far."""
        return self.log.read_text(errors="replace") if self.log and self.log.exists() else ""

    def start(self, *extra: str, wait: float = 60.0) -> None:
        """Start ``ductwork serve`` on a free port and wait until it answers."""
        self.port = free_port()
        self.log = self.root / f"serve-{self.port}.log"
        with open(self.log, "wb") as sink:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "ductwork", "serve", "--port", str(self.port),
                 "--store", self.store, *extra],
                stdout=sink, stderr=subprocess.STDOUT, env=self.env, cwd=self.root)
        deadline = time.monotonic() + wait
        while True:
            if self.process.poll() is not None:
                pytest.fail(f"ductwork serve exited {self.process.returncode}:\n{self.output()}")
            try:
                with urllib.request.urlopen(f"{self.url}/api/v1/openapi.json", timeout=2):
                    return
            except urllib.error.HTTPError:
                return  # it answers (even if it wants a token for this document)
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    pytest.fail(f"ductwork serve did not answer in {wait} s:\n{self.output()}")
                time.sleep(0.1)

    def stop(self) -> None:
        """Stop the server this fixture started (and only it)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def make_server(root: Path) -> LiveServer:
    """A store under ``root`` with ``flow`` and ``sleepy`` published and a token per role."""
    root.mkdir(parents=True, exist_ok=True)
    store = str(root / "store")
    env = {**os.environ, "DUCTWORK_STORE": store, "DUCTWORK_HOME": str(root / "home")}
    env.pop("DUCTWORK_TOKEN", None)
    server = LiveServer(root=root, store=store, env=env)
    source = root / "served_pipelines.py"
    source.write_text(textwrap.dedent(PIPELINES))
    for name in ("flow", "sleepy"):
        server.cli("publish", f"{source}:{name}", "--name", name, "--store", store)
    for role in ROLES:
        server.create_token(role, role)
    return server


@pytest.fixture(scope="module")
def live_server(tmp_path_factory):
    """A running ``ductwork serve`` (``--max-runs 4``) with published pipelines and tokens."""
    server = make_server(tmp_path_factory.mktemp("served"))
    server.start("--max-runs", "4")
    try:
        yield server
    finally:
        server.stop()
