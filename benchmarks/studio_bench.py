"""The studio's speed: the runs page with 10,000 runs, and a run page of 2,000 steps.

Targets (issue [11]): a runs page in <= 100 ms of server time with 10,000 runs in the
store (first page, a page deep in the history by its keyset cursor, and a filtered
page); a 2,000-step run's page in <= 1 s, both its server time (read, graph drawn, HTML
rendered) and a browser's load event. Server times are measured in process, through
the same functions the routes call, on real SQLite files; the load event in Debian's
headless chromium (Selenium) against a real ``ductwork serve`` on that store, from
navigation start to the end of the load event (the median of 3, after one warm-up):

    PYTHONPATH=. python benchmarks/studio_bench.py

Without chromium, chromedriver or selenium the browser row is skipped, and says so.
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ductwork.runtime.records.run import Run, StepRun
from ductwork.runtime.records.runstore import RunStore
from ductwork.runtime.status import Status


def _timed(fn, repeat: int = 7) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def runs_page_bench(root: Path) -> list[tuple[str, float, float]]:
    """Fill a history with 10,000 runs; time three pages of the runs page."""
    from ductwork.server.state import ServerState
    from ductwork.server.studio.queries import runs_page

    history = RunStore(root / "runs.sqlite")
    for i in range(10_000):
        run = Run(f"run-{i:05d}", f"p{i % 7}", {"i": i}, "inline", started=1e9 + i,
                  status=Status.SUCCEEDED if i % 5 else Status.FAILED, finished=1e9 + i + 1)
        history.finish_run(run)
    history.close()
    state = ServerState(root / "server.sqlite")
    first = runs_page(state.path, root / "runs.sqlite")
    cursor = None
    for _ in range(100):  # 5,000 runs deep
        cursor = runs_page(state.path, root / "runs.sqlite", after=cursor).after
    return [
        ("runs page, first 50 of 10,000", _timed(
            lambda: runs_page(state.path, root / "runs.sqlite")), 0.1),
        ("runs page, 5,000 runs deep (keyset)", _timed(
            lambda: runs_page(state.path, root / "runs.sqlite", after=cursor)), 0.1),
        ("runs page, pipeline + status filter", _timed(
            lambda: runs_page(state.path, root / "runs.sqlite", pipeline="p3",
                              status="failed")), 0.1),
    ] if first.rows else []


def run_page_bench(root: Path) -> list[tuple[str, float, float]]:
    """Record a 2,000-step chain; time reading it and rendering its page."""
    from ductwork.runtime.store.artifacts import open_store
    from ductwork.server.state import ServerState
    from ductwork.server.studio.render import page
    from ductwork.server.studio.runview import load_run
    from ductwork.server.studio.sessions import Who
    from ductwork.server.views import RunSource

    store = open_store(str(root / "store"))
    n = 2000
    graph = {"name": "chain", "nodes": [{"id": f"s{i}", "kind": "step"} for i in range(n)],
             "edges": [{"source": f"s{i}", "target": f"s{i + 1}", "argument": "x"}
                       for i in range(n - 1)]}
    run = Run("big-run", "chain", {}, "inline", status=Status.SUCCEEDED, started=1e9,
              finished=1e9 + 60, graph=graph)
    for i in range(n):
        run.steps[f"s{i}"] = StepRun(f"s{i}", "s", Status.SUCCEEDED, cached=bool(i % 2),
                                     started=1e9 + i * 0.01, finished=1e9 + i * 0.01 + 0.005)
    history = RunStore(root / "store" / "runs.sqlite")
    history.finish_run(run)

    class Srv:
        artifacts = store
        state = ServerState(root / "store" / "server.sqlite")
        runs = RunSource(state, store)

    who = Who("bench", "viewer", "x")
    return [("run page, 2,000 steps (read + graph + HTML)", _timed(
        lambda: page("run.html", who, view=load_run(Srv, "big-run"), title="r").body,
        repeat=3), 1.0)]


CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
# From navigation start to the end of the load event, in ms (0 until the event is over).
_LOAD_EVENT = ("const n = performance.getEntriesByType('navigation')[0];"
               "return n && n.loadEventEnd > 0 ? n.loadEventEnd - n.startTime : null;")


def _serve(root: Path) -> tuple[subprocess.Popen[bytes], str, str]:
    """A real ``ductwork serve`` on the store under ``root``: the process, its URL, a token."""
    env = {**os.environ, "DUCTWORK_STORE": str(root / "store"),
           "DUCTWORK_HOME": str(root / "home")}
    command = [sys.executable, "-m", "ductwork"]
    token = subprocess.run([*command, "token", "create", "bench", "--role", "viewer"], env=env,
                           capture_output=True, text=True, check=True).stdout.strip()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([*command, "serve", "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return server, f"http://127.0.0.1:{port}", token
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                raise RuntimeError("ductwork serve did not start") from None
            time.sleep(0.05)


def browser_bench(root: Path) -> list[tuple[str, float, float]]:
    """The 2,000-step run page (``run_page_bench`` recorded it) in headless chromium."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
        from selenium.webdriver.common.by import By
    except ImportError:
        print("browser: skipped, selenium is not installed (pip install -e '.[browser]')")
        return []
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        print("browser: skipped, no chromium/chromedriver (bash scripts/services.sh up browser)")
        return []
    server, url, token = _serve(root)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--no-first-run", "--window-size=1280,900",
                 f"--user-data-dir={root / 'chromium'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        driver.get(f"{url}/signin")
        driver.find_element(By.ID, "token").send_keys(token)
        driver.find_element(By.ID, "signin").click()
        times = []
        for _ in range(4):
            driver.get(f"{url}/runs/big-run")  # returns once the page has loaded
            while (ms := driver.execute_script(_LOAD_EVENT)) is None:
                time.sleep(0.01)
            times.append(ms / 1000)
        assert 'id="step-s499"' in driver.page_source, "the run page did not show the run"
    finally:
        driver.quit()
        server.terminate()
        server.wait(timeout=30)
    return [("run page, 2,000 steps (chromium load event)", statistics.median(times[1:]),
             1.0)]


def main() -> int:
    """Print each measurement against its target; exit 1 if one is missed."""
    missed = 0
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "a").mkdir()
        rows = runs_page_bench(root / "a") + run_page_bench(root) + browser_bench(root)
    for name, seconds, target in rows:
        ok = seconds <= target
        missed += not ok
        print(f"{name:<48} {seconds * 1000:8.1f} ms  target <= {target * 1000:.0f} ms  "
              f"{'PASS' if ok else 'MISS'}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
