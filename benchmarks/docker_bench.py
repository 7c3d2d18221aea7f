"""Benchmark the docker backend against what a bare container pays for the same work.

Prints one row per measurement: its value, the floor it is compared with, the
ratio, the target and PASS / MISS ("info" rows have no target), then where a
step's time goes.

overhead
     a chain of 5 trivial ``cache=False`` steps (``x + 1``) on the docker backend
     with a local store: per step = median run wall time / 5 (everything is in
     the run: the backend's start, the image lookup, the scheduler, the SQLite
     record; the image's Python-version check is remembered by image ID, so an
     unmeasured first run makes it). The floor is one bare container doing the
     same read-run-write: the host writes a pickled input into a fresh job dir,
     ``docker run --rm --network none -v JOBDIR:/job ductwork/python:3.11 python
     -c "<load /job/input, add 1, write /job/output>"`` runs, the host reads the
     pickled output and removes the dir. Through the Docker SDK
     (``client.containers.run(..., remove=True)``, the floor) and through the
     ``docker`` CLI (for reference). Medians over interleaved repeats.
     ductwork's source is bind-mounted into every container and imported there.
     Here PYTHONDONTWRITEBYTECODE is set, so the checkout has no .pyc files for
     most of ductwork and each container compiles it from source; an installed
     package has them. Both are measured: as mounted from this checkout, and
     with a copy of the package compiled into a temp dir mounted instead (the
     backend's ``lib_dir`` is pointed at it in this process; no library file is
     touched). Also shown: best of the repeats (the floor as groups of 5
     containers in a row, like a run), and the floor with the backend's own
     container options (its three bind mounts, ``--user``, environment).
warm
     a 5-step pipeline whose steps use an ``Environment`` that needs an image
     build (one variable, with a value unique to this benchmark run, so its
     image, and the containers of that image, are this benchmark's alone on a
     shared engine), run twice in FRESH processes on one store (a module written
     to a temp dir): the second run is all cache hits. The engine's events API
     counts the containers created from that image and the image builds (image
     ``build`` / ``tag`` events naming its tag, and new image IDs with its label)
     during the warm run; the program itself also counts the SDK's
     ``create_container`` and ``build`` calls. Target: 0 and 0.
breakdown
     the chain again, with wall-clock timers wrapped (in this process only)
     around the backend's functions and the SDK's container calls, the engine's
     events (create / start / die / destroy) of each container, and timestamps
     taken inside the container by a probe script that runs the worker
     (``ductwork.runtime.engine.worker.main()``) after timing its imports. The floor
     container gets the same treatment. Per step, exclusive times.

Nothing is written to the source tree or the user's ductwork home: stores, job
dirs, modules, the compiled copy and ``DUCTWORK_HOME`` (set for this process and
its children) go to temporary directories (under ``--dir`` if given) that are
removed afterwards, and so is the image built for the warm test. Needs a
running engine with the base image (``bash scripts/services.sh up docker``);
without one the script says so and exits 0.

    python benchmarks/docker_bench.py [--quick] [--only overhead,warm,breakdown] [--dir DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib
import itertools
import json
import os
import pickle
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from _table import DETAIL, NOTES, add, load, print_table, ratio, scratch

N_STEPS = 5
PARTS = ("overhead", "warm", "breakdown")

# The floor's container: the same read-run-write a step does, in plain Python.
FLOOR_CODE = (
    "import os, pickle\n"
    "with open('/job/input', 'rb') as f:\n    x = pickle.load(f)\n"
    "with open('/job/output.tmp', 'wb') as f:\n    pickle.dump(x + 1, f)\n"
    "os.replace('/job/output.tmp', '/job/output')\n"
)
# The same, with timestamps (epoch, the host's clock) for the breakdown.
FLOOR_CODE_TIMED = (
    "import time\nT0 = time.time()\nimport os, pickle\nTI = time.time()\n"
    "with open('/job/input', 'rb') as f:\n    x = pickle.load(f)\nT1 = time.time()\n"
    "y = x + 1\nT2 = time.time()\n"
    "with open('/job/output.tmp', 'wb') as f:\n    pickle.dump(y, f)\n"
    "os.replace('/job/output.tmp', '/job/output')\nT3 = time.time()\n"
    "print(T0, TI, T1, T2, T3, time.time())\n"
)

# Runs inside the step's container instead of `python -m ductwork.runtime.engine.worker` (the
# arguments are the same): it times the imports the worker makes, then runs the worker.
PROBE = '''\
import time
T0 = time.time()
import json, os, sys
marks = {"t0": T0}
import cloudpickle
marks["cloudpickle"] = time.time()
import ductwork.runtime.engine.job as ex
import ductwork.runtime.store.serializers, ductwork.runtime.store.artifacts
import ductwork.runtime.engine.worker as worker
marks["imports"] = time.time()
_execute = ex.execute
def execute(*a, **k):
    marks["execute_start"] = time.time()
    try:
        return _execute(*a, **k)
    finally:
        marks["execute_end"] = time.time()
ex.execute = execute
sys.argv = ["ductwork.runtime.engine.worker", *sys.argv[1:]]
worker.main()
marks["end"] = time.time()
with open(os.path.join("/bench-probe", os.uname().nodename + ".json"), "w") as f:
    json.dump(marks, f)
'''


# --- the table (the format of pipeline_bench.py) ---------------------------------------------












def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f} ms"




def spread(samples: list[float]) -> str:
    return (f"median {ms(statistics.median(samples))}, min {ms(min(samples))}, "
            f"max {ms(max(samples))} (n={len(samples)})")






def chain_source(n_steps: int, decorator: str = "@step(cache=False)",
                 header: str = "") -> str:
    lines = ["from ductwork import Environment, pipeline, step", header, ""]
    for i in range(n_steps):
        lines += ["", decorator, f"def s{i}(x: int) -> int:", "    return x + 1", ""]
    names = ", ".join(f"s{i}" for i in range(n_steps))
    lines += [
        "", f"STEPS = [{names}]", "", "",
        "@pipeline", "def chain(n: int = 0):", "    x = n", "    for s in STEPS:",
        "        x = s(x)", "    return x", "",
    ]
    return "\n".join(lines)


class ModuleFactory:
    """Writes step modules to a directory on sys.path and imports them (user code, with source)."""

    def __init__(self, base: str | None) -> None:
        self.dir = tempfile.mkdtemp(prefix="docker-bench-mods-", dir=base)
        sys.path.insert(0, self.dir)

    def write(self, name: str, source: str) -> str:
        path = os.path.join(self.dir, f"{name}.py")
        with open(path, "w") as f:
            f.write(source)
        importlib.invalidate_caches()
        return path

    def load(self, name: str) -> Any:
        sys.modules.pop(name, None)
        return importlib.import_module(name)

    def close(self) -> None:
        with contextlib.suppress(ValueError):
            sys.path.remove(self.dir)
        shutil.rmtree(self.dir, ignore_errors=True)


# --- the engine ------------------------------------------------------------------------------


def engine(image: str) -> tuple[Any, str] | str:
    """(client, image ID), or why there is none."""
    try:
        import docker
        import docker.errors
    except ImportError:
        return "the Docker SDK is not installed (pip install 'ductwork[docker]')"
    try:
        client = docker.from_env(timeout=120)
        client.ping()
    except Exception as exc:
        where = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
        return (f"no Docker engine answers at {where} ({type(exc).__name__}): start one with "
                "`bash scripts/services.sh up docker`")
    try:
        return client, client.images.get(image).id
    except docker.errors.ImageNotFound:
        return f"image {image} is absent: build it with `bash scripts/services.sh up docker`"


def events(client: Any, since: float, until: float, kind: str) -> list[dict[str, Any]]:
    """The engine's events of ``kind`` between two host times (the same clock)."""
    # `until` in the future would make the call wait for it.
    time.sleep(max(0.0, until - time.time()) + 0.01)
    return list(client.events(since=since, until=until, decode=True, filters={"type": kind}))


def event_time(e: dict[str, Any]) -> float:
    return e["timeNano"] / 1e9


def attrs_of(e: dict[str, Any]) -> dict[str, str]:
    return e.get("Actor", {}).get("Attributes", {}) or {}


# --- the floor -------------------------------------------------------------------------------


def floor_once(client: Any | None, image: str, base: str | None, labels: dict[str, str],
               code: str = FLOOR_CODE,
               like_backend: tuple[str, str] | None = None) -> tuple[float, bytes]:
    """One bare container doing the step's read-run-write: SDK (client) or CLI (None).

    ``like_backend=(lib_dir, store_dir)``: with the options of the backend's containers
    (its ``container_config``: three bind mounts, ``--user``, environment, working dir).
    """
    t = time.perf_counter()
    job = tempfile.mkdtemp(prefix="docker-bench-floor-", dir=base)
    try:
        with open(os.path.join(job, "input"), "wb") as f:
            pickle.dump(0, f)
        command = ["python", "-c", code]
        if client is not None and like_backend is not None:
            from ductwork.backends.docker import JOB_MOUNT, container_config

            os.chmod(job, 0o777)
            config = container_config(image, job, *like_backend, os.getuid(), os.getgid())
            config.pop("detach")
            config["command"] = ["python", "-c", code.replace("/job/", f"{JOB_MOUNT}/")]
            config["labels"] = labels
            out = client.containers.run(**config, remove=True)
        elif client is not None:
            out = client.containers.run(
                image, command, volumes={job: {"bind": "/job", "mode": "rw"}},
                network_mode="none", remove=True, labels=labels)
        else:
            label_args = [a for k, v in labels.items() for a in ("--label", f"{k}={v}")]
            out = subprocess.run(
                ["docker", "run", "--rm", "--network", "none", "-v", f"{job}:/job", *label_args,
                 image, *command], check=True, capture_output=True).stdout
        with open(os.path.join(job, "output"), "rb") as f:
            value = pickle.load(f)
    finally:
        shutil.rmtree(job, ignore_errors=True)
    seconds = time.perf_counter() - t
    assert value == 1, value
    return seconds, out


# --- the docker backend ----------------------------------------------------------------------


def compiled_copy(base: str | None) -> str:
    """A copy of the ductwork package with .pyc files next to its sources."""
    import py_compile

    import ductwork

    src = os.path.dirname(os.path.abspath(ductwork.__file__))
    root = tempfile.mkdtemp(prefix="docker-bench-lib-", dir=base)
    os.chmod(root, 0o755)
    dst = os.path.join(root, "ductwork")
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
    # Next to the sources, whatever PYTHONDONTWRITEBYTECODE or a cache prefix say here.
    for dirpath, _, files in os.walk(dst):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(dirpath, name)
                py_compile.compile(path, cfile=_pyc_path(path), doraise=True)
    return dst


def _pyc_path(path: str) -> str:
    head, tail = os.path.split(path)
    tag = sys.implementation.cache_tag
    return os.path.join(head, "__pycache__", f"{tail[:-3]}.{tag}.pyc")


@contextlib.contextmanager
def mounted_lib(lib_dir: str | None) -> Iterator[None]:
    """In this process only: the docker backend mounts ``lib_dir`` as ductwork's source."""
    if lib_dir is None:
        yield
        return
    from ductwork.backends.docker import DockerBackend

    original = DockerBackend.__init__

    @functools.wraps(original)
    def init(self: Any, *a: Any, **k: Any) -> None:
        original(self, *a, **k)
        self.lib_dir = lib_dir

    DockerBackend.__init__ = init  # type: ignore[method-assign]
    try:
        yield
    finally:
        DockerBackend.__init__ = original  # type: ignore[method-assign]


def run_chain(module: Any, store: str) -> float:
    t = time.perf_counter()
    run = module.chain.run(n=0, store=store, backend="docker")
    seconds = time.perf_counter() - t
    cached = sum(s.cached for s in run.steps.values())
    assert run.status == "succeeded" and run.outputs == N_STEPS, run
    assert cached == 0, f"{cached} cached steps in a cache=False chain: {run!r}"
    return seconds


def bench_overhead(client: Any, image: str, mods: ModuleFactory, base: str | None,
                   repeat: int, lib_pyc: str) -> None:
    print(f"overhead: {repeat} repeats of a {N_STEPS}-step chain (x2) and "
          f"{repeat * N_STEPS} floor containers (x2)", file=sys.stderr, flush=True)
    mods.write("docker_bench_chain", chain_source(N_STEPS))
    module = mods.load("docker_bench_chain")
    nonce = uuid.uuid4().hex[:12]
    labels = {"ductwork.bench": f"floor-{nonce}"}
    variants = {"pyc": lib_pyc, "src": None}
    walls: dict[str, list[float]] = {v: [] for v in variants}
    sdk: list[float] = []
    cli: list[float] = []
    like: list[float] = []
    sdk_groups: list[float] = []  # the SDK floor, N_STEPS containers in a row: like a run
    with scratch(base, "docker-bench-store-") as store:
        # The process's first docker run pays one-time costs (imports of the SDK and of the
        # runtime, the first fingerprints); and one unmeasured floor of each kind.
        first = run_chain(module, store)
        with mounted_lib(lib_pyc):
            first_pyc = run_chain(module, store)
        floor_once(client, image, base, labels)
        floor_once(None, image, base, labels)
        t1 = time.time()
        recorder = IdRecorder()
        with recorder:
            for r in range(repeat):
                # Interleaved, the order turned each repeat, so drift hits every kind alike.
                kinds = ["pyc", "src", "sdk", "cli", "like"]
                kinds = kinds[r % 5:] + kinds[:r % 5]
                for kind in kinds:
                    if kind in variants:
                        with mounted_lib(variants[kind]):
                            walls[kind].append(run_chain(module, store))
                    else:
                        group = 0.0
                        for _ in range(N_STEPS):
                            sample = floor_once(
                                None if kind == "cli" else client, image, base, labels,
                                like_backend=(lib_pyc, store) if kind == "like" else None)[0]
                            {"sdk": sdk, "cli": cli, "like": like}[kind].append(sample)
                            group += sample
                        if kind == "sdk":
                            sdk_groups.append(group)
        t2 = time.time()
    floor = statistics.median(sdk)
    fl = f"{ms(floor)}/ctr"
    for kind, label in (("pyc", "ductwork with .pyc (as installed)"),
                        ("src", "ductwork from source (no .pyc here)")):
        per_step = statistics.median(walls[kind]) / N_STEPS
        add(f"docker backend, per step: {label}",
            f"{ms(per_step)}/step", fl, ratio(per_step, floor), "<= 1.3x floor",
            per_step <= 1.3 * floor)
    best = min(sdk_groups) / N_STEPS
    for kind, label in (("pyc", "with .pyc"), ("src", "from source")):
        per_step = min(walls[kind]) / N_STEPS
        add(f"  best of {repeat} (noise only adds), {label}", f"{ms(per_step)}/step",
            f"{ms(best)}/ctr", ratio(per_step, best), "<= 1.3x floor", per_step <= 1.3 * best)
    per_step = statistics.median(walls["pyc"]) / N_STEPS
    add("  with .pyc, above the floor (medians)", f"{ms(per_step - floor)}/step", fl)
    add("floor: a bare container, read-run-write (SDK)", f"{ms(floor)}/ctr")
    add("floor through the docker CLI (reference)", f"{ms(statistics.median(cli))}/ctr",
        fl, ratio(statistics.median(cli), floor))
    add("floor with the backend's options (3 mounts, --user, env)",
        f"{ms(statistics.median(like))}/ctr", fl, ratio(statistics.median(like), floor))
    add("first docker run in the process, per step",
        f"{ms(first / N_STEPS)}/step", fl, ratio(first / N_STEPS, floor))
    NOTES.append(
        f"overhead: run wall times ({N_STEPS} steps): with .pyc {spread(walls['pyc'])}; from "
        f"source {spread(walls['src'])}. Floor per container: SDK {spread(sdk)} (best of "
        f"the {len(sdk_groups)} groups of {N_STEPS} in a row: {ms(best)} a container); CLI "
        f"{spread(cli)}; SDK with the backend's options {spread(like)}. "
        f"The process's first run took {ms(first)}, its first with the compiled copy "
        f"{ms(first_pyc)}.")
    creates = [e for e in events(client, t1, t2, "container") if e.get("Action") == "create"]
    foreign = sum(e.get("id") not in recorder.ids
                  and attrs_of(e).get("ductwork.bench") != labels["ductwork.bench"]
                  for e in creates)
    NOTES.append(
        f"overhead: {foreign} containers of other clients were created on this engine during "
        "the measurements (a shared engine and 2 CPUs: they compete with ours)."
        if foreign else "overhead: no other client created containers during the measurements.")


class IdRecorder:
    """Records the IDs of the containers this process creates, while active."""

    def __init__(self) -> None:
        self.ids: set[str] = set()
        self._original: Any = None

    def __enter__(self) -> IdRecorder:
        import docker.api.container as api

        self._original = original = api.ContainerApiMixin.create_container

        @functools.wraps(original)
        def create(*a: Any, **k: Any) -> Any:
            out = original(*a, **k)
            self.ids.add(out["Id"])
            return out

        api.ContainerApiMixin.create_container = create
        return self

    def __exit__(self, *exc: Any) -> None:
        import docker.api.container as api

        api.ContainerApiMixin.create_container = self._original


# --- warm: fresh processes -------------------------------------------------------------------


WARM_MAIN = '''\
"""One run of docker_bench_warm.chain in a fresh process; prints a JSON line."""
import json
import sys
import time

import docker.api.container
import docker.api.build

import ductwork.backends.docker_env as docker_env

calls = {"create_container": 0, "build": 0, "check_python_s": 0.0}

def counted(owner, name, key):
    original = getattr(owner, name)
    def wrapper(*a, **k):
        calls[key] += 1
        return original(*a, **k)
    setattr(owner, name, wrapper)

counted(docker.api.container.ContainerApiMixin, "create_container", "create_container")
counted(docker.api.build.BuildApiMixin, "build", "build")
_check = docker_env.Images._check_python
def check(*a, **k):
    t = time.perf_counter()
    try:
        return _check(*a, **k)
    finally:
        calls["check_python_s"] += time.perf_counter() - t
docker_env.Images._check_python = check

import docker_bench_warm  # noqa: E402

t = time.perf_counter()
run = docker_bench_warm.chain.run(n=0, store=sys.argv[1], backend="docker")
wall = time.perf_counter() - t
print(json.dumps({"wall": wall, "status": run.status, "outputs": run.outputs,
                  "cached": sum(s.cached for s in run.steps.values()),
                  "steps": len(run.steps), **calls}))
'''


def bench_warm(client: Any, base_id: str, mods: ModuleFactory, base: str | None) -> None:
    print("warm: a cold and a warm run in fresh processes", file=sys.stderr, flush=True)
    from ductwork import Environment
    from ductwork.backends.docker_env import ca_bundle, default_base, image_tag

    nonce = uuid.uuid4().hex[:16]
    env = Environment(env={"DUCTWORK_BENCH_NONCE": nonce})
    tag = image_tag(env, base_id, ca_bundle() is not None)
    decorator = "@step(env=ENV)"
    header = f"\nENV = Environment(env={{'DUCTWORK_BENCH_NONCE': {nonce!r}}})"
    mods.write("docker_bench_warm", chain_source(N_STEPS, decorator, header))
    main = mods.write("docker_bench_warm_main", WARM_MAIN)
    assert default_base()  # the steps use the default base image
    with scratch(base, "docker-bench-pyc-") as pyc, scratch(base, "docker-bench-warm-") as d:
        store = os.path.join(d, "store")
        environ = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        environ["PYTHONPYCACHEPREFIX"] = pyc
        environ["PYTHONPATH"] = os.pathsep.join([mods.dir, environ.get("PYTHONPATH", "")])

        def program() -> tuple[dict[str, Any], float, float, float]:
            since = time.time()
            t = time.perf_counter()
            out = subprocess.run([sys.executable, main, store], capture_output=True,
                                 text=True, env=environ, cwd=os.getcwd())
            if out.returncode:
                raise RuntimeError(f"the warm-test program failed:\n{out.stderr[-3000:]}")
            wall = time.perf_counter() - t
            return json.loads(out.stdout.strip().splitlines()[-1]), wall, since, time.time()

        def ours(since: float, until: float, image_id: str | None) -> tuple[int, int, int, list]:
            cont = events(client, since, until, "container")
            creates = [e for e in cont if e.get("Action") == "create"]
            mine = [e for e in creates
                    if image_id and attrs_of(e).get("image") in (image_id, tag)]
            imgs = events(client, since, until, "image")
            builds = [e for e in imgs if e.get("Action") in ("build", "tag")
                      and (attrs_of(e).get("name") == tag
                           or (image_id and e.get("id") == image_id))]
            return len(mine), len(builds), len(creates) - len(mine), mine

        def env_images() -> set[str]:
            return {i.id for i in client.images.list(
                all=True, filters={"label": f"ductwork.environment={tag}"})}

        try:
            before = env_images()
            cold, _, c0, c1 = program()
            assert cold["status"] == "succeeded" and cold["cached"] == 0, cold
            image_id = client.images.get(tag).id
            cold_mine, cold_builds, _, _ = ours(c0, c1, image_id)
            after_cold = env_images()
            warm, warm_wall, w0, w1 = program()
            assert warm["status"] == "succeeded" and warm["outputs"] == N_STEPS, warm
            after_warm = env_images()
            mine, builds, foreign, mine_events = ours(w0, w1, image_id)
        finally:
            with contextlib.suppress(Exception):
                client.images.remove(tag, force=True)
    new_images = len(after_warm - after_cold)
    add("cold run: containers of its image | image builds",
        f"{cold_mine} | {max(cold_builds, len(after_cold - before))}",
        target=f"{N_STEPS + 1} | 1 expected")
    add("warm run (a fresh process): cache hits", f"{warm['cached']} of {warm['steps']}",
        target=f"{N_STEPS} of {N_STEPS}", ok=warm["cached"] == N_STEPS)
    checks = sum(attrs_of(e).get("ductwork.job") is None for e in mine_events)
    reason = (f"; {checks} of them the image's Python-version check "
              "(Images._check_python)") if mine else ""
    add("warm run: containers created (engine events)"
        + (f": {checks} Python-version check(s)" if checks else ""), str(mine), target="0",
        ok=mine == 0)
    add("warm run: image builds (engine events, image list)",
        f"{max(builds, new_images)}", target="0", ok=max(builds, new_images) == 0)
    add("warm run: the run's wall time (in its process)", ms(warm["wall"]))
    if warm["check_python_s"]:
        add("  of which the Python-version check", ms(warm["check_python_s"]))
    add("warm run: the program, spawn to exit", ms(warm_wall))
    if cold["check_python_s"]:
        add("cold run: the image's Python-version check (once)",
            ms(cold["check_python_s"]))
    NOTES.append(
        f"warm: the program itself counted {warm['create_container']} create_container and "
        f"{warm['build']} build calls of the Docker SDK in the warm run (cold: "
        f"{cold['create_container']} and {cold['build']}){reason}. Image {tag} (built by the "
        f"cold run in {ms(cold['wall'])} of run time, removed afterwards). {foreign} "
        "containers of other clients were created on the engine during the warm run (not "
        "counted).")


# --- breakdown -------------------------------------------------------------------------------


Mark = tuple[str, str, float, Any]  # label, "enter" / "exit", perf_counter, container ID


class Timeline:
    """Enter/exit marks of wrapped functions, per thread, while active (this process only)."""

    def __init__(self) -> None:
        self.marks: dict[int, list[Mark]] = defaultdict(list)
        self._undo: list[Callable[[], None]] = []

    def mark(self, label: str, kind: str, extra: Any = None) -> None:
        self.marks[threading.get_ident()].append((label, kind, time.perf_counter(), extra))

    def wrap(self, owner: Any, attr: str, label: str) -> None:
        original = getattr(owner, attr)

        @functools.wraps(original)
        def wrapper(*a: Any, **k: Any) -> Any:
            self.mark(label, "enter")
            extra = None
            try:
                out = original(*a, **k)
                if label == "create" and isinstance(out, dict):
                    extra = out.get("Id")
                return out
            finally:
                self.mark(label, "exit", extra)

        setattr(owner, attr, wrapper)
        self._undo.append(lambda: setattr(owner, attr, original))

    def __enter__(self) -> Timeline:
        import docker.api.container as api

        import ductwork.backends.docker as dk
        import ductwork.backends.docker_env as de

        for owner, attr, label in [
            (dk.DockerBackend, "__init__", "DockerBackend() (connect, ping)"),
            (dk.DockerBackend, "close", "DockerBackend.close"),
            (dk.DockerBackend, "_run", "_run"),
            (dk.DockerBackend, "_payload", "payload: pickle"),
            (dk.DockerBackend, "_collect", "_collect"),
            (dk, "container_config", "container_config"),
            (de.Images, "image_for", "Images.image_for"),
            (de.Images, "_check_python", "Python check"),
            (api.ContainerApiMixin, "create_container", "create"),
            (api.ContainerApiMixin, "inspect_container", "inspect"),
            (api.ContainerApiMixin, "start", "start"),
            (api.ContainerApiMixin, "wait", "wait"),
            (api.ContainerApiMixin, "logs", "logs"),
            (api.ContainerApiMixin, "remove_container", "remove"),
        ]:
            self.wrap(owner, attr, label)
        return self

    def __exit__(self, *exc: Any) -> None:
        for undo in reversed(self._undo):
            undo()
        self._undo.clear()


# Time inside `_run` / `_collect` when no wrapped call runs, named by the calls around it.
GAPS = {
    ("_run:enter", "Images.image_for:enter"): "mkdtemp (job dir)",
    ("Images.image_for:exit", "payload: pickle:enter"): "payload: open the file",
    ("payload: pickle:exit", "container_config:enter"): "payload: write, close, chmod",
    ("logs:exit", "_collect:exit"): "result: open, unpickle, JobResult",
    ("remove:exit", "_run:exit"): "rmtree (job dir)",
}
SDK_GLUE = "SDK and backend glue between the calls"
FLOOR_HOST = "host: mkdtemp, input write, output read, rmtree; SDK glue"


@dataclass
class Unit:
    """One top-level call on one thread: a step (`_run`), a floor container, or a run part."""

    top: str
    parts: dict[str, float]
    epochs: dict[str, float]
    container: str | None = None
    check: str | None = None


def units(marks: list[Mark], offset: float) -> list[Unit]:
    """Split one thread's marks into top-level calls, with exclusive times per call path."""
    out: list[Unit] = []
    stack: list[str] = []
    unit: Unit | None = None
    prev: Mark | None = None
    for label, kind, t, extra in marks:
        if prev is not None and stack and unit is not None:
            if len(stack) == 1 or stack[-1] == "_collect":
                if stack[0] == "floor":
                    name = FLOOR_HOST
                elif stack[-1] in ("_run", "_collect"):
                    name = GAPS.get((f"{prev[0]}:{prev[1]}", f"{label}:{kind}"), SDK_GLUE)
                else:
                    name = f"{stack[0]} (own time)"
            else:
                name = " / ".join(x for x in stack[1:] if x != "_collect")
            unit.parts[name] = unit.parts.get(name, 0.0) + t - prev[2]
        if kind == "enter":
            if not stack:
                unit = Unit(label, {}, {"enter": t + offset})
                out.append(unit)
            stack.append(label)
            if unit is not None and len(stack) == 2:
                unit.epochs.setdefault(f"{label}:enter", t + offset)
        else:
            stack.pop()
            if unit is not None:
                if label == "create" and extra:
                    if "Python check" in stack:
                        unit.check = extra
                    elif len(stack) == 1:
                        unit.container = extra
                if len(stack) == 1:
                    unit.epochs[f"{label}:exit"] = t + offset
                if not stack:
                    unit.epochs["exit"] = t + offset
        prev = (label, kind, t, extra)
    return out


def bench_breakdown(client: Any, image: str, mods: ModuleFactory, base: str | None,
                    runs: int, lib_pyc: str, lib_src: str) -> None:
    print(f"breakdown: {runs} timed runs and {runs * N_STEPS} timed floor containers",
          file=sys.stderr, flush=True)
    import ductwork.backends.docker as dk

    mods.write("docker_bench_chain", chain_source(N_STEPS))
    module = mods.load("docker_bench_chain")
    probe_dir = tempfile.mkdtemp(prefix="docker-bench-probe-", dir=base)
    os.chmod(probe_dir, 0o777)  # the container's user writes here
    with open(os.path.join(probe_dir, "probe.py"), "w") as f:
        f.write(PROBE)
    original_config = dk.container_config

    def probed_config(*a: Any, **k: Any) -> dict[str, Any]:
        config = original_config(*a, **k)
        if config["command"][:3] == ["python", "-m", "ductwork.runtime.engine.worker"]:
            config["command"] = ["python", "/bench-probe/probe.py", *config["command"][3:]]
            config["volumes"] = {**config["volumes"],
                                 probe_dir: {"bind": "/bench-probe", "mode": "rw"}}
        return config

    labels = {"ductwork.bench": f"floor-{uuid.uuid4().hex[:12]}"}
    walls: list[float] = []
    floor_walls: list[float] = []
    floor_inside: dict[str, list[float]] = {}  # container ID -> timestamps inside
    timeline = Timeline()
    try:
        dk.container_config = probed_config
        with scratch(base, "docker-bench-store-") as store, mounted_lib(lib_pyc):
            run_chain(module, store)  # unmeasured: the first probed run
            since = time.time()
            with timeline:
                for _ in range(runs):
                    walls.append(run_chain(module, store))
                    for _ in range(N_STEPS):
                        timeline.mark("floor", "enter")
                        seconds, out = floor_once(client, image, base, labels, FLOOR_CODE_TIMED)
                        timeline.mark("floor", "exit")
                        floor_walls.append(seconds)
                        floor_inside[f"#{len(floor_walls)}"] = [float(x) for x in out.split()]
            until = time.time()
    finally:
        dk.container_config = original_config
        probes: dict[str, dict[str, float]] = {}
        for name in os.listdir(probe_dir):
            if name.endswith(".json"):
                with open(os.path.join(probe_dir, name)) as f:
                    probes[name[:-5]] = json.load(f)
        shutil.rmtree(probe_dir, ignore_errors=True)

    by_id: dict[str, dict[str, float]] = defaultdict(dict)
    for e in events(client, since, until, "container"):
        by_id[e.get("id", "")].setdefault(e.get("Action", ""), event_time(e))
    offset = time.time() - time.perf_counter()  # perf_counter -> the epoch (one offset)
    all_units = [u for marks in timeline.marks.values() for u in units(marks, offset)]
    steps = [u for u in all_units if u.top == "_run"]
    floors = [u for u in all_units if u.top == "floor"]
    per_run = [u for u in all_units if u.top not in ("_run", "floor")]
    for u, inside in zip(floors, floor_inside.values(), strict=True):  # in order
        u.epochs.update(zip(("t0", "pickle", "read", "run", "write", "end"), inside,
                            strict=True))
    n_steps, n_floors = len(steps), len(floors)
    assert n_steps == runs * N_STEPS and n_floors == runs * N_STEPS, (n_steps, n_floors)

    def total(samples: list[float], n: int) -> str:
        return f"{sum(samples) / n * 1e3:9.1f}" if samples and n else f"{'-':>9}"

    def median(samples: list[float]) -> str:
        return f"{statistics.median(samples) * 1e3:9.1f}" if samples else f"{'-':>9}"

    lines = DETAIL
    width = 70

    def row(name: str, step: list[float] | None, floor: list[float] | None,
            n: int | None = None, nf: int | None = None, indent: int = 1) -> None:
        step, floor = step or [], floor or []
        lines.append(f"{'  ' * indent + name:<{width}} {total(step, n or len(step))} "
                     f"{total(floor, nf or len(floor))}")

    lines.append(
        f"Where the time goes: {runs} runs of the {N_STEPS}-step cache=False chain (ductwork "
        f"with .pyc, the worker started by a probe) = {n_steps} steps, and {n_floors} floor "
        "containers (SDK, with timestamps), interleaved. Mean ms per step | per floor "
        "container; client parts are exclusive wall times (wrapped functions, this process).")
    lines.append(f"{'part':<{width}} {'step':>9} {'floor':>9}")
    lines.append("-" * (width + 20))
    lines.append(f"{'run wall time / ' + str(N_STEPS) + ' | floor container wall':<{width}} "
                 f"{total(walls, n_steps)} {total(floor_walls, n_floors)}")
    lines.append(f"per run, divided by its {N_STEPS} steps (main thread):")
    run_parts: dict[str, list[float]] = defaultdict(list)
    for u in per_run:
        for name, seconds in u.parts.items():
            run_parts[f"{u.top} / {name}" if not name.startswith(u.top) else name].append(seconds)
    for name, samples in run_parts.items():
        row(name, samples, None, n_steps)
    in_steps = sum(sum(u.parts.values()) for u in steps)
    in_parts = sum(sum(v) for v in run_parts.values())
    row("the rest: scheduler, runner, SQLite, thread hand-offs", [sum(walls) - in_steps -
                                                                  in_parts], None, n_steps)
    lines.append("per step, DockerBackend._run (pool thread) | per floor container:")
    names: dict[str, None] = {}
    for u in [*steps, *floors]:
        names.update(dict.fromkeys(u.parts))
    for name in names:
        row(name, [u.parts.get(name, 0.0) for u in steps],
            [u.parts.get(name, 0.0) for u in floors] if any(name in u.parts for u in floors)
            else None, n_steps, n_floors)
    row("total", [sum(u.parts.values()) for u in steps],
        [sum(u.parts.values()) for u in floors], n_steps, n_floors)

    def phases(u: Unit, inside: dict[str, float] | None) -> dict[str, float]:
        ev = by_id.get(u.container or "", {})
        ep = u.epochs
        if not {"create", "start", "die", "destroy"} <= ev.keys():
            return {}
        out = {
            "create() sent -> create event": ev["create"] - ep.get("create:enter", ev["create"]),
            "create event -> start event (engine and runc start the container)":
                ev["start"] - ev["create"],
            "start event -> die event (the container's process)": ev["die"] - ev["start"],
        }
        if inside:
            marks = ["t0", *[k for k in ("cloudpickle", "imports", "execute_start",
                                         "execute_end", "pickle", "read", "run", "write")
                             if k in inside], "end"]
            names = {"t0": "  start event -> first line (interpreter start-up)",
                     "cloudpickle": "  import cloudpickle",
                     "imports": "  import ductwork.runtime.{execute,serializers,store,worker}",
                     "pickle": "  import os, pickle (the floor's imports)",
                     "execute_start": "  payload: read + unpickle (+ ArtifactStore())",
                     "execute_end": "  execute (the step, its outputs into the store)",
                     "read": "  payload: read + unpickle (+ ArtifactStore())",
                     "run": "  execute (the step, its outputs into the store)",
                     "write": "  result: pickle + write",
                     "end": "  result: pickle + write"}
            out[names["t0"]] = inside["t0"] - ev["start"]
            for a, b in itertools.pairwise(marks):
                key = names[b]
                out[key] = out.get(key, 0.0) + inside[b] - inside[a]
            out["  last line -> die event (interpreter exit)"] = ev["die"] - inside["end"]
        out["die event -> wait() returns"] = ep.get("wait:exit", ev["die"]) - ev["die"]
        out["die event -> destroy event (remove)"] = ev["destroy"] - ev["die"]
        return out

    step_ph = [phases(u, probes.get((u.container or "")[:12])) for u in steps]
    floor_ph = [phases(u, u.epochs) for u in floors]
    lines.append("per container, the engine's events and timestamps taken inside it:")
    names = {}
    for p in [*step_ph, *floor_ph]:
        names.update(dict.fromkeys(p))
    order = ["create()", "create event", "start event -> die", "  start event", "  import",
             "  payload", "  execute", "  result", "  last line", "die event -> wait", "die"]
    for name in sorted(names, key=lambda n: next(
            (i for i, o in enumerate(order) if n.startswith(o)), len(order))):
        row(name, [p[name] for p in step_ph if name in p], [p[name] for p in floor_ph
                                                               if name in p])
    missing = sum(not p for p in step_ph) + sum(not p for p in floor_ph)
    if missing:
        lines.append(f"  ({missing} containers had no complete events; left out)")
    checks = [u.check for u in per_run if u.check]
    cp = [by_id.get(c, {}) for c in checks]
    cp = [e for e in cp if {"create", "start", "die", "destroy"} <= e.keys()]
    if cp:
        lines.append(f"the Python-version check's container (one per run; {len(cp)} here), "
                     "per check:")
        row("create event -> start event", [e["start"] - e["create"] for e in cp], None)
        row("start event -> die event", [e["die"] - e["start"] for e in cp], None)
        row("die event -> destroy event", [e["destroy"] - e["die"] for e in cp], None)
    imports_probe(client, image, lib_pyc, lib_src)


IMPORT_PROBE = (
    "import time\nt = time.perf_counter()\nimport cloudpickle\nt1 = time.perf_counter()\n"
    "import ductwork.runtime.engine.job, ductwork.runtime.store.serializers, "
    "ductwork.runtime.store.artifacts, ductwork.runtime.engine.worker\n"
    "print(t1 - t, time.perf_counter() - t1)\n"
)
IMPORTS = ("import cloudpickle\nimport ductwork.runtime.engine.job, "
           "ductwork.runtime.store.serializers, ductwork.runtime.store.artifacts, "
           "ductwork.runtime.engine.worker\n")


def imports_probe(client: Any, image: str, lib_pyc: str, lib_src: str, repeat: int = 5) -> None:
    """The worker's imports in a container, ductwork with and without .pyc; the heaviest."""

    def run(lib: str, command: list[str], stderr: bool = False) -> bytes:
        return client.containers.run(
            image, command, remove=True, network_mode="none", stdout=not stderr, stderr=stderr,
            volumes={lib: {"bind": "/ductwork/lib/ductwork", "mode": "ro"}},
            environment={"PYTHONPATH": "/ductwork/lib"})

    results: dict[str, list[tuple[float, float]]] = {"pyc": [], "src": []}
    for _ in range(repeat):
        for kind, lib in (("pyc", lib_pyc), ("src", lib_src)):
            a, b = map(float, run(lib, ["python", "-c", IMPORT_PROBE]).split())
            results[kind].append((a, b))
    lines = DETAIL
    lines.append("")
    lines.append(f"The worker's imports in a container (medians of {repeat}): cloudpickle | "
                 "ductwork.runtime.{execute,serializers,store,worker}")
    for kind, label in (("pyc", "ductwork with .pyc"),
                        ("src", "ductwork from this checkout (no .pyc)")):
        a = statistics.median(x for x, _ in results[kind])
        b = statistics.median(y for _, y in results[kind])
        lines.append(f"  {label:<40} {a * 1e3:6.1f} ms | {b * 1e3:6.1f} ms")
    err = run(lib_pyc, ["python", "-X", "importtime", "-c", IMPORTS], stderr=True).decode()
    rows = []
    for line in err.splitlines():
        if not line.startswith("import time:"):
            continue
        fields = line.split(":", 1)[1].split("|")
        if len(fields) != 3 or not fields[0].strip().isdigit():
            continue
        rows.append((int(fields[1]), int(fields[0]), fields[2].rstrip()))
    lines.append("  the heaviest, with .pyc (python -X importtime; cumulative | self; "
                 "indented = imported by the one above):")
    for cum, own, name in [r for r in rows if r[0] >= 4000][-16:]:
        lines.append(f"    {cum / 1e3:6.1f} | {own / 1e3:5.1f} ms {name}")


# --- main ------------------------------------------------------------------------------------


def main() -> None:
    """Run the benchmarks and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke test: fewer repeats")
    parser.add_argument("--repeat", type=int, help="chain runs per variant (default 9, 2 quick)")
    parser.add_argument("--breakdown-runs", type=int,
                        help="timed runs for the breakdown (default 4, 1 quick)")
    parser.add_argument("--dir", default=None, help="where stores and job dirs go (default: tmp)")
    parser.add_argument("--only", default=",".join(PARTS),
                        help=f"comma-separated subset of {','.join(PARTS)}")
    args = parser.parse_args()
    repeat = args.repeat or (2 if args.quick else 9)
    b_runs = args.breakdown_runs or (1 if args.quick else 4)
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    unknown = only - set(PARTS)
    if unknown:
        parser.error(f"--only: unknown {', '.join(sorted(unknown))}")

    import ductwork
    from ductwork.backends.docker_env import default_base

    image = default_base()
    found = engine(image)
    print(f"ductwork {ductwork.__version__}, Python {platform.python_version()}, "
          f"{os.cpu_count()} CPUs, {platform.machine()}; image {image}"
          f"{' (--quick)' if args.quick else ''}; load average {load()}")
    if isinstance(found, str):
        add("docker engine", "not available", result="skip")
        NOTES.append(f"skipped: {found}.")
        print()
        print_table()
        return
    client, image_id = found
    version = client.version()
    print(f"engine {version.get('Version')} (API {version.get('ApiVersion')}), "
          f"{image} = {image_id[:19]}")
    mods = ModuleFactory(args.dir)
    lib_pyc = compiled_copy(args.dir)
    # ductwork's per-user state (e.g. the images whose Python was checked) in a private
    # home: nothing of the user's is read or written, and the first check is measured.
    home = tempfile.mkdtemp(prefix="docker-bench-home-", dir=args.dir)
    os.environ["DUCTWORK_HOME"] = home
    lib_src = os.path.dirname(os.path.abspath(ductwork.__file__))
    try:
        if "overhead" in only:
            bench_overhead(client, image, mods, args.dir, repeat, lib_pyc)
        if "warm" in only:
            bench_warm(client, image_id, mods, args.dir)
        if "breakdown" in only:
            bench_breakdown(client, image, mods, args.dir, b_runs, lib_pyc, lib_src)
    finally:
        mods.close()
        shutil.rmtree(os.path.dirname(lib_pyc), ignore_errors=True)
        shutil.rmtree(home, ignore_errors=True)
        client.close()
    NOTES.append(f"load average at the end: {load()} (on {os.cpu_count()} CPUs; a shared "
                 "machine).")
    print()
    print_table()


if __name__ == "__main__":
    main()
