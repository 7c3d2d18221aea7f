"""Helpers of the studio's tests: a real ``ductwork serve`` with published pipelines, tokens,
and a signed-in ``httpx`` client that fills forms as a browser does (CSRF field included)."""

from __future__ import annotations

import re
import signal
import textwrap
import time
from pathlib import Path
from typing import Any

import httpx
from harness import Served, ductwork, token

PIPELINES = textwrap.dedent('''
    import time

    import ductwork as dw


    @dw.step
    def scale(x: int) -> int:
        print(f"scaling {x}")
        dw.context().log_metric("scaled", x * 10)
        return x * 10


    @dw.step
    def describe(y: int, tag: str) -> dict:
        return {"y": y, "tag": tag}


    @dw.pipeline
    def flow(x: int = 2, tag: str = "t"):
        return describe(scale(x), tag)


    @dw.step(cache=False)
    def nap(seconds: float) -> float:
        print("napping", seconds)
        time.sleep(seconds / 2)
        print("half way")
        time.sleep(seconds / 2)
        return seconds


    @dw.step(cache=False)
    def after(s: float) -> str:
        return f"slept {s}"


    @dw.pipeline
    def sleepy(seconds: float = 2.0):
        return after(nap(seconds))
''')

_CSRF = re.compile(r'name="csrf" value="([^"]+)"')
_LINK = re.compile(r"(http://\S+/signin\?once=\S+)")


class Studio:
    """A served store with ``flow`` and ``sleepy`` published and a token per role."""

    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        source = root / "studio_pipelines.py"
        source.write_text(PIPELINES)
        for name in ("flow", "sleepy"):
            ductwork(root, "publish", f"{source}:{name}", "--name", name,
                     "--description", f"the {name} pipeline")
        self.tokens = {role: token(root, role, role) for role in ("viewer", "runner", "admin")}
        self.served = Served(root, "--max-runs", "4")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.served.port}"

    def link(self) -> str:
        """The one-time sign-in link ``ductwork serve`` printed."""
        deadline = time.monotonic() + 10
        while (found := _LINK.search(self.served.output())) is None:
            assert time.monotonic() < deadline, self.served.output()
            time.sleep(0.05)
        return found.group(1)

    def client(self, role: str | None = None) -> httpx.Client:
        """An ``httpx`` client, signed in with the token of ``role`` (None: not signed in)."""
        client = httpx.Client(base_url=self.url, timeout=60, follow_redirects=False)
        if role is not None:
            form = client.get("/signin")
            answer = client.post("/signin", data={"token": self.tokens[role],
                                                  "csrf": csrf_of(form.text), "next": "/"})
            assert answer.status_code == 303, answer.text
        return client

    def wait(self, run_id: str, timeout: float = 60) -> dict[str, Any]:
        """Poll the API until the run ends; answer its last state."""
        deadline = time.monotonic() + timeout
        while True:
            status, run = self.served.call("GET", f"/runs/{run_id}", self.tokens["viewer"])
            assert status == 200, run
            if run["status"] not in ("queued", "running"):
                return run
            assert time.monotonic() < deadline, self.served.output()
            time.sleep(0.1)

    def trigger_api(self, name: str, parameters: dict[str, Any]) -> str:
        """Trigger a run over the REST API; answer its id."""
        status, answer = self.served.call("POST", f"/pipelines/{name}/runs",
                                          self.tokens["runner"], {"parameters": parameters})
        assert status == 202, answer
        return str(answer["run_id"])

    def stop(self) -> None:
        """Stop the server these tests started."""
        self.served.kill(signal.SIGTERM)


def csrf_of(html: str) -> str:
    """The CSRF token in a page's forms."""
    found = _CSRF.search(html)
    assert found, f"no CSRF field in:\n{html[:2000]}"
    return found.group(1)
