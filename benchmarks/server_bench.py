"""Benchmark the server: trigger latency under 50 concurrent clients, and end to end.

Starts ``ductwork serve`` on a free loopback port in a scratch store, with a one-step
cached pipeline published and an admin token made through the command line, as a
user would; and beside it the floor: a bare Starlette app on uvicorn (same host, same
interpreter) whose ``POST /api/v1/pipelines/{name}/runs`` answers 202 at once and
whose ``GET /api/v1/runs/{id}`` answers ``succeeded`` at once. Both are driven by
the same client code (``dw.Client``, on httpx).

trigger latency   50 threads, each with its own client (connection opened before the
                  clock starts), start together and each posts ``--per-client``
                  triggers one after another; the time from sending each POST to its
                  202, p50 and p95 over all of them. Target (issue [9]): p95 <= 50 ms.
end to end        one client triggers the (already cached) pipeline and polls its run
                  every 10 ms until ``succeeded`` is visible over REST, ``--e2e``
                  times; p50. Target: <= 0.5 s. Measured before the latency test, on
                  an idle server; ``dw.Client.wait`` (its own backoff) is shown beside.

By default it benchmarks ductwork as users install it: a wheel built from this
checkout's HEAD commit (``git archive`` + ``pip wheel``), installed with its ``[all]``
dependencies into a venv of its own and byte-compiled -- compare.py's build, cached
under ``~/.cache/ductwork-bench/`` while the wheel's contents are the same -- and the
benchmark runs again under that venv's python, from a scratch directory, with no
PYTHONPATH. ``--install here`` runs with this interpreter's ductwork instead
(an editable checkout, say). The first lines say how it was installed and imported;
the servers run the same interpreter.

    python benchmarks/server_bench.py [--quick] [--clients 50] [--per-client 10]
        [--e2e 20] [--max-runs N] [--install wheel|here] [--dir DIR] [--json FILE]
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _table import NOTES, add, add_json_option, load, print_table, ratio, scratch
from trace_bench import how_imported

TRIGGER_P95_MS = 50.0
E2E_P50_S = 0.5

PIPELINE = '''
from ductwork import pipeline, step


@step
def double(x: int) -> int:
    return 2 * x


@pipeline
def one_step(x: int = 21):
    return double(x)
'''

# The floor: what any Python web service on this stack pays for the same request.
FLOOR_APP = '''
import secrets
import sys

import uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route


async def trigger(request):
    await request.json()
    return JSONResponse({"run_id": secrets.token_hex(16), "status": "queued", "version": 1},
                        status_code=202)


async def run(request):
    return JSONResponse({"run_id": request.path_params["run_id"], "status": "succeeded"})


app = Starlette(routes=[
    Route("/api/v1/pipelines/{name}/runs", trigger, methods=["POST"]),
    Route("/api/v1/runs/{run_id}", run),
])

uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
'''


def free_port() -> int:
    """A loopback TCP port nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank ``q``-th percentile (0-100) of ``values``."""
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def wait_until_up(url: str, process: subprocess.Popen[bytes], log: str, seconds: float = 60.0
                  ) -> None:
    """Wait until something answers HTTP at ``url`` (any status), or fail with its output."""
    deadline = time.monotonic() + seconds
    while True:
        if process.poll() is not None:
            sys.exit(f"server exited {process.returncode}:\n{open(log).read()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            if time.monotonic() > deadline:
                sys.exit(f"server did not answer in {seconds} s:\n{open(log).read()[-3000:]}")
            time.sleep(0.1)


def start(cmd: list[str], url: str, log: str, env: dict[str, str], cwd: str
          ) -> subprocess.Popen[bytes]:
    """Start a server process (output to ``log``) and wait until it answers."""
    with open(log, "wb") as sink:
        process = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT, env=env, cwd=cwd)
    wait_until_up(url, process, log)
    return process


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop a server this script started."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def cli(env: dict[str, str], cwd: str, *args: str) -> str:
    """Run ``python -m ductwork ARGS``; its stdout."""
    out = subprocess.run([sys.executable, "-m", "ductwork", *args], capture_output=True,
                         text=True, env=env, cwd=cwd, timeout=300)
    if out.returncode != 0:
        sys.exit(f"ductwork {' '.join(args)} failed:\n{out.stdout}{out.stderr}")
    return out.stdout


def trigger_latencies(dw: Any, url: str, token: str, clients: int, per_client: int
                      ) -> tuple[list[float], list[str], float]:
    """Seconds from each POST to its 202, with ``clients`` threads; errors; wall time."""
    made = [dw.Client(url, token=token, timeout=60) for _ in range(clients)]
    for client in made:
        client._http.get("/openapi.json")  # open the connection before the clock starts
    times: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(clients + 1)

    def work(client: Any) -> None:
        mine, failed = [], []
        barrier.wait()
        for _ in range(per_client):
            t = time.perf_counter()
            try:
                client.trigger("one_step", {"x": 21})
            except Exception as exc:  # counted and shown, never hidden
                failed.append(f"{type(exc).__name__}: {exc}")
                continue
            mine.append(time.perf_counter() - t)
        with lock:
            times.extend(mine)
            errors.extend(failed)

    threads = [threading.Thread(target=work, args=(c,)) for c in made]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    for client in made:
        client.close()
    return times, errors, wall


def end_to_end(dw: Any, url: str, token: str, n: int, waiter: str,
               phases: dict[str, list[float]] | None = None) -> list[float]:
    """Seconds from trigger to ``succeeded`` over REST, ``n`` times, one after another;
    ``phases`` gets where each run's time went, from its record's timestamps."""
    times = []
    with dw.Client(url, token=token, timeout=60) as client:
        for _ in range(n):
            t, wall = time.perf_counter(), time.time()
            run_id = client.trigger("one_step", {"x": 21})
            if waiter == "wait":
                record = client.wait(run_id, timeout=120)
            else:
                record = poll(client.run, run_id, 0.01)
            times.append(time.perf_counter() - t)
            if record["status"] != "succeeded":
                sys.exit(f"run {run_id} ended {record['status']}: {record}")
            if phases is not None and all(record.get(k) for k in ("submitted", "started",
                                                                   "finished")):
                seen = wall + times[-1]
                for name, value in (
                        ("POST sent -> queued (submitted)", record["submitted"] - wall),
                        ("queued -> run started (launcher, child start-up)",
                         record["started"] - record["submitted"]),
                        ("run started -> finished (the cached step)",
                         record["finished"] - record["started"]),
                        ("finished -> seen over REST (polling)", seen - record["finished"])):
                    phases.setdefault(name, []).append(value)
    return times


def poll(get: Callable[[str], dict[str, Any]], run_id: str, every: float,
         seconds: float = 120.0) -> dict[str, Any]:
    """Read the run every ``every`` seconds until it reaches a final status."""
    deadline = time.monotonic() + seconds
    while True:
        record = get(run_id)
        if record["status"] in ("succeeded", "failed", "cancelled", "died"):
            return record
        if time.monotonic() > deadline:
            sys.exit(f"run {run_id} still {record['status']} after {seconds} s")
        time.sleep(every)


def drain(dw: Any, url: str, token: str, seconds: float = 300.0) -> int:
    """Cancel the runs still queued and wait until none runs (so no child outlives the
    server); how many still were when the time ran out."""
    from ductwork.client import ClientError

    deadline = time.monotonic() + seconds
    with dw.Client(url, token=token) as client:
        for run in client.runs(status="queued", limit=1000):
            try:
                client.cancel(run["run_id"])
            except ClientError:
                pass  # it started (or ended) meanwhile
        while True:
            busy = sum(len(client.runs(status=s, limit=1000)) for s in ("queued", "running"))
            if busy == 0 or time.monotonic() > deadline:
                return busy
            time.sleep(0.5)


def run_installed(argv: list[str]) -> int:
    """Build and install the wheel of HEAD (compare.py's way, cached), then run this script
    under the venv's python from a scratch directory; its exit status."""
    import compare

    repo = Path(__file__).resolve().parent.parent
    commit = compare.git(repo, "rev-parse", "HEAD")
    inst = compare.Install("server-bench", "HEAD", commit,
                           compare.git(repo, "log", "-1", "--format=%s", commit),
                           compare.git(repo, "log", "-1", "--format=%cs", commit))
    dirty = compare.git(repo, "status", "--porcelain", "--", "ductwork", "pyproject.toml")
    with tempfile.TemporaryDirectory(prefix="server-bench-build-") as work:
        compare.install(repo, inst, Path(work))
        inst.home = Path(work) / "home"
        compare.verify(inst, Path(work))
        env = compare.clean_env(inst)
        env["DUCTWORK_BENCH_INSTALLED"] = inst.describe() + (
            "; uncommitted changes under ductwork/ are NOT in the wheel" if dirty else "")
        args = [os.path.abspath(a) if i and argv[i - 1] in ("--json", "--dir") else a
                for i, a in enumerate(argv)]
        return subprocess.run([str(inst.python), os.path.abspath(__file__), *args,
                               "--install", "here"], env=env, cwd=work).returncode


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f} ms"


def main() -> None:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="a smoke test: 50 clients x 2 triggers, 5 end-to-end runs")
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients (50)")
    parser.add_argument("--per-client", type=int, help="triggers per client (10; 2 quick)")
    parser.add_argument("--e2e", type=int, help="end-to-end runs (20; 5 quick)")
    parser.add_argument("--max-runs", type=int, default=None,
                        help="ductwork serve --max-runs (default: the server's)")
    parser.add_argument("--dir", default=None, help="where the scratch store goes")
    parser.add_argument("--install", choices=("wheel", "here"), default="wheel",
                        help="wheel: a wheel of HEAD in a venv of its own (default); here: "
                             "this interpreter's ductwork")
    add_json_option(parser)
    args = parser.parse_args()
    if args.install == "wheel":
        sys.exit(run_installed(sys.argv[1:]))
    per_client = args.per_client or (2 if args.quick else 10)
    n_e2e = args.e2e or (5 if args.quick else 20)

    import ductwork as dw

    print(f"ductwork {dw.__version__}, Python {platform.python_version()}, {os.cpu_count()} "
          f"CPUs, {platform.machine()}{' (--quick)' if args.quick else ''}; load average "
          f"{load()}")
    print("installed: " + os.environ.get("DUCTWORK_BENCH_INSTALLED",
                                         "--install here: this interpreter's ductwork"))
    print(f"ductwork imported from {dw.__file__}: {how_imported(dw)}; the servers run "
          f"{sys.executable}")
    started = time.perf_counter()
    with scratch(args.dir, "server-bench-") as root:
        store = os.path.join(root, "store")
        env = {**os.environ, "DUCTWORK_STORE": store, "DUCTWORK_HOME": os.path.join(root, "home")}
        env.pop("DUCTWORK_TOKEN", None)
        source = os.path.join(root, "bench_pipeline.py")
        with open(source, "w") as f:
            f.write(textwrap.dedent(PIPELINE))
        cli(env, root, "publish", f"{source}:one_step", "--name", "one_step", "--store", store)
        token = max(re.findall(r"[A-Za-z0-9_\-\.~]{32,}",
                               cli(env, root, "token", "create", "bench", "--role", "runner")),
                    key=len)
        floor_file = os.path.join(root, "floor_app.py")
        with open(floor_file, "w") as f:
            f.write(textwrap.dedent(FLOOR_APP))

        port, floor_port = free_port(), free_port()
        url, floor_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{floor_port}"
        serve = [sys.executable, "-m", "ductwork", "serve", "--port", str(port), "--store", store]
        if args.max_runs:
            serve += ["--max-runs", str(args.max_runs)]
        server = start(serve, f"{url}/api/v1/openapi.json", os.path.join(root, "serve.log"),
                       env, root)
        floor = start([sys.executable, floor_file, str(floor_port)],
                      f"{floor_url}/api/v1/runs/x", os.path.join(root, "floor.log"), env, root)
        try:
            print(f"ductwork serve {' '.join(serve[4:])}; floor: Starlette on uvicorn\n",
                  flush=True)
            end_to_end(dw, url, token, 2, "poll")  # warm: the step is cached from here on
            phases: dict[str, list[float]] = {}
            e2e = end_to_end(dw, url, token, n_e2e, "poll", phases)
            e2e_wait = end_to_end(dw, url, token, max(3, n_e2e // 2), "wait")
            e2e_floor = end_to_end(dw, floor_url, token, n_e2e, "poll")

            lat, errors, wall = trigger_latencies(dw, url, token, args.clients, per_client)
            lat_floor, floor_errors, floor_wall = trigger_latencies(
                dw, floor_url, token, args.clients, per_client)
            left = drain(dw, url, token)
        finally:
            stop(floor)
            stop(server)

    n = args.clients * per_client
    for q in (50, 95):
        value, base = percentile(lat, q) if lat else float("nan"), percentile(lat_floor, q)
        add(f"trigger latency p{q}, {args.clients} clients x {per_client}", ms(value), ms(base),
            ratio(value, base), f"<= {TRIGGER_P95_MS:g} ms" if q == 95 else "-",
            value <= TRIGGER_P95_MS / 1e3 if q == 95 else None)
    add("triggers accepted (202)", f"{len(lat)} of {n}", f"{len(lat_floor)} of {n}", "-",
        f"{n} of {n}", len(lat) == n)
    add("trigger throughput", f"{len(lat) / wall:.0f}/s", f"{len(lat_floor) / floor_wall:.0f}/s")
    p50 = percentile(e2e, 50)
    add(f"end to end p50, one cached step (poll 10 ms, {n_e2e} runs)", ms(p50),
        ms(percentile(e2e_floor, 50)), ratio(p50, percentile(e2e_floor, 50)),
        f"<= {E2E_P50_S:g} s", p50 <= E2E_P50_S)
    add("end to end p95", ms(percentile(e2e, 95)), ms(percentile(e2e_floor, 95)))
    for name, values in phases.items():
        add(f"  e2e p50: {name}", ms(percentile(values, 50)))
    add(f"end to end p50 with dw.Client.wait ({len(e2e_wait)} runs)",
        ms(percentile(e2e_wait, 50)))
    if errors or floor_errors:
        NOTES.append(f"trigger errors: {len(errors)} (first: {errors[:1]}); floor: "
                     f"{len(floor_errors)}")
    if left:
        NOTES.append(f"{left} runs were still queued or running when the server was stopped")
    NOTES.append("floor: a bare Starlette app on uvicorn answering 202 (and `succeeded`) at "
                 "once, driven by the same dw.Client code from the same threads.")
    NOTES.append(f"took {time.perf_counter() - started:.1f} s; load average at the end: "
                 f"{load()} (on {os.cpu_count()} CPUs; a shared machine).")
    print_table(args.json)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
