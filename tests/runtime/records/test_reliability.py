"""Reliability with real processes: a killed driver, concurrent runs on one store, corrupt
artifacts, code edits between runs, and set-valued outputs under different hash seeds.

Every pipeline lives in a module written to ``tmp_path`` and runs in a fresh interpreter
(``sys.executable``) through a small driver script; the test process only inspects the
store on disk and its history. Nothing is mocked.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from ductwork.runtime.keys.hashing import HASH_NAME
from ductwork.runtime.records.history import get_run, open_store, runs
from ductwork.runtime.records.runstore import forget_runstore

TIMEOUT = 60

DRIVER = r'''
import hashlib, importlib, json, os, sys, time, warnings

spec = json.loads(sys.argv[1])
sys.path.insert(0, spec["src"])
pipe = getattr(importlib.import_module(spec["module"]), spec["pipeline"])
if spec.get("barrier"):
    # say we are ready, then wait for the test to open the barrier: both drivers go together
    open(f"{spec['barrier']}.ready-{os.getpid()}", "w").close()
    deadline = time.monotonic() + 30
    while not os.path.exists(spec["barrier"]):
        if time.monotonic() > deadline:
            sys.exit("the barrier was never opened")
        time.sleep(0.002)


def plain(v):
    if isinstance(v, (set, frozenset)):
        return sorted(plain(x) for x in v)
    if isinstance(v, (bytes, bytearray)):
        return {"sha256": hashlib.sha256(v).hexdigest(), "len": len(v)}
    if isinstance(v, dict):
        return {k: plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    return v


with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    run = pipe.run(store=spec["store"], **spec.get("options", {}))
    outputs = plain(run.outputs)
report = {
    "id": run.id,
    "status": run.status,
    "outputs": outputs,
    "cached": {sid: s.cached for sid, s in run.steps.items()},
    "notes": {sid: s.note for sid, s in run.steps.items()},
    "digests": {sid: {n: getattr(r, "digest", None) for n, r in s.output_refs.items()}
                for sid, s in run.steps.items()},
    "serializers": {sid: {n: getattr(r, "serializer", None) for n, r in s.output_refs.items()}
                    for sid, s in run.steps.items()},
    "warnings": [f"{w.category.__name__}: {w.message}" for w in caught],
}
print("REPORT " + json.dumps(report))
'''


# -- helpers ---------------------------------------------------------------------------------


@pytest.fixture
def lab(tmp_path):
    """A source dir for pipeline modules, a driver script and a store, all under tmp_path."""
    src = tmp_path / "src"
    src.mkdir()
    (tmp_path / "driver.py").write_text(DRIVER)
    store = tmp_path / "store"
    yield Lab(tmp_path, src, store)
    forget_runstore(open_store(str(store)))  # close this process's SQLite handle


class Lab:
    def __init__(self, root: Path, src: Path, store: Path) -> None:
        self.root, self.src, self.store = root, src, store

    def module(self, name: str, source: str) -> None:
        (self.src / f"{name}.py").write_text(textwrap.dedent(source))

    def command(self, module: str, pipeline: str, barrier: Path | None = None,
                **options: Any) -> list[str]:
        spec = {"src": str(self.src), "module": module, "pipeline": pipeline,
                "store": str(self.store), "options": options,
                "barrier": str(barrier) if barrier else None}
        return [sys.executable, str(self.root / "driver.py"), json.dumps(spec)]

    def env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        # A module rewritten within one second at the same size could otherwise run stale
        # bytecode from __pycache__; every run must execute the source the test wrote.
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env.pop("DW_BLOCK", None)
        env.update(extra)
        return env

    def drive(self, module: str, pipeline: str, env: dict[str, str] | None = None,
              **options: Any) -> dict[str, Any]:
        proc = subprocess.run(self.command(module, pipeline, **options), cwd=self.root,
                              env=env or self.env(), capture_output=True, text=True,
                              timeout=TIMEOUT)
        return report_of(proc.returncode, proc.stdout, proc.stderr)


def report_of(returncode: int, stdout: str, stderr: str) -> dict[str, Any]:
    assert returncode == 0, f"driver exited {returncode}\nstdout:\n{stdout}\nstderr:\n{stderr}"
    lines = [ln for ln in stdout.splitlines() if ln.startswith("REPORT ")]
    assert lines, f"no report\nstdout:\n{stdout}\nstderr:\n{stderr}"
    return json.loads(lines[-1][len("REPORT "):])


def file_digest(path: Path) -> str:
    """The content digest of a file, by the algorithm the store names objects with,
    computed here independently of the store's own code."""
    data = path.read_bytes()
    if HASH_NAME == "blake3":
        from blake3 import blake3

        return blake3(data).hexdigest()
    return hashlib.new(HASH_NAME, data).hexdigest()


def bad_objects(store: Path) -> list[str]:
    """Every object file whose bytes do not hash to the name of its path."""
    bad = []
    for path in sorted((store / "objects").rglob("*")):
        if path.is_file() and file_digest(path) != path.parent.name + path.name:
            bad.append(str(path.relative_to(store)))
    return bad


def object_digests(store: Path) -> set[str]:
    return {p.parent.name + p.name for p in (store / "objects").rglob("*") if p.is_file()}


def indexed_digests(store: Path) -> dict[str, set[str]]:
    """Cache key -> the digests of the object files its index record names (a small
    output's bytes are inlined in the record instead: they must hash to its digest)."""
    found = {}
    for path in (store / "keys").rglob("*.json"):
        body = json.loads(path.read_text())
        outputs = body["outputs"].values()
        for o in outputs:
            if "inline" in o:
                assert inline_digest(o["inline"]) == o["digest"], f"{path}: bad inline data"
        found[path.parent.name + path.stem] = {o["digest"] for o in outputs
                                               if "inline" not in o}
    return found


def inline_digest(text: str) -> str:
    data = base64.b64decode(text, validate=True)
    if HASH_NAME == "blake3":
        from blake3 import blake3

        return blake3(data).hexdigest()
    return hashlib.new(HASH_NAME, data).hexdigest()


def assert_store_sound(store: Path) -> None:
    """Every object verifies, and every key names only objects that are there and verify."""
    assert bad_objects(store) == []
    stored = object_digests(store)
    tmp = {p.name for p in (store / "tmp").glob("*")} if (store / "tmp").exists() else set()
    for key, digests in indexed_digests(store).items():
        assert digests <= stored, f"key {key} names objects that are not in objects/"
        assert not digests & tmp, f"key {key} names an in-flight tmp/ file"


def integrity(store: Path) -> str:
    db = sqlite3.connect(store / "runs.sqlite")
    try:
        return db.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        db.close()


def object_path(store: Path, digest: str) -> Path:
    return store / "objects" / digest[:2] / digest[2:]


# -- 1. kill -9 the driver in the middle of a run --------------------------------------------

KILL_MODULE = '''
import hashlib, os, pathlib, time

from ductwork import pipeline, step
from ductwork.runtime.store.serializers import register_serializer


def _hold(where):
    """Block (after saying so) when DW_BLOCK names this place; not part of any input."""
    if os.environ.get("DW_BLOCK") != where:
        return
    markers = pathlib.Path(os.environ["DW_MARKERS"])
    # Written whole, then renamed: the test polls for the name and reads the pid at once.
    (markers / "tmp").write_text(str(os.getpid()))
    os.replace(markers / "tmp", markers / f"started-{where}")
    deadline = time.monotonic() + 60
    while not (markers / "never").exists():
        if time.monotonic() > deadline:
            raise RuntimeError("held 60 s: the test should have killed this process")
        time.sleep(0.02)


class Blob:
    def __init__(self, data):
        self.data = data


class BlobSerializer:
    """Writes half the bytes, may block (so a kill leaves a partial tmp file), then the rest."""

    name = "reliability.blob"

    def dump(self, value, f):
        half = len(value.data) // 2
        f.write(value.data[:half])
        _hold("dump")
        f.write(value.data[half:])

    def load(self, f):
        return Blob(f.read())


register_serializer(Blob, BlobSerializer())


@step
def source(n: int) -> list:
    return list(range(n))


@step
def square(xs: list) -> list:
    return [x * x for x in xs]


@step
def slow(xs: list):
    _hold("body")
    return Blob(b"".join(x.to_bytes(8, "little") for x in xs) * 160)  # > 2 MiB: spills to tmp/


@step
def summarize(blob) -> dict:
    return {"len": len(blob.data), "sha": hashlib.sha256(blob.data).hexdigest()}


@pipeline
def chain(n: int = 2000):
    return summarize(slow(square(source(n))))
'''


def _expected_chain(n: int = 2000) -> dict:
    data = b"".join((x * x).to_bytes(8, "little") for x in range(n)) * 160
    return {"len": len(data), "sha": hashlib.sha256(data).hexdigest()}


def _kill_session(pgid: int) -> None:
    """SIGKILL what is left of the process group of a driver this test started."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


@pytest.mark.slow
@pytest.mark.parametrize(("where", "backend"), [
    ("body", "inline"), ("dump", "inline"), ("body", "process"), ("dump", "process"),
])
def test_kill_9_mid_run_then_rerun_resumes_from_the_completed_steps(lab, where, backend):
    """SIGKILL the driver while the third step runs (``body``) or while its output is half
    written to ``tmp/`` (``dump``); the rerun serves the first two from the cache.

    With the process backend the step runs in a worker, which outlives a SIGKILLed driver
    (it is orphaned, still inside the step); it is killed too, as in a crash of the machine.
    """
    lab.module("killmod", KILL_MODULE)
    markers = lab.root / "markers"
    markers.mkdir()
    env = lab.env(DW_BLOCK=where, DW_MARKERS=str(markers))
    proc = subprocess.Popen(lab.command("killmod", "chain", backend=backend), cwd=lab.root,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        started = markers / f"started-{where}"
        deadline = time.monotonic() + TIMEOUT
        while not started.exists():
            if proc.poll() is not None:
                out, err = proc.communicate()
                pytest.fail(f"driver exited {proc.returncode} before blocking:\n{out}\n{err}")
            assert time.monotonic() < deadline, "the step never started"
            time.sleep(0.01)
        runner = int(started.read_text())
        assert (runner == proc.pid) == (backend == "inline")  # inline: the step runs here
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=TIMEOUT) == -signal.SIGKILL
    finally:
        _kill_session(proc.pid)  # the driver's own session: its orphaned workers, if any
        if proc.poll() is None:
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    if backend == "process":
        deadline = time.monotonic() + TIMEOUT
        while Path(f"/proc/{runner}").exists() and _state(runner) != "Z":
            assert time.monotonic() < deadline, "the orphaned worker did not die"
            time.sleep(0.01)

    store = lab.store
    # What the kill left: the two finished steps indexed, nothing of the third.
    assert len(indexed_digests(store)) == 2
    assert_store_sound(store)
    leftovers = list((store / "tmp").glob("*")) if (store / "tmp").exists() else []
    if where == "dump":
        assert leftovers, "the kill mid-write should leave a partial tmp/ file"
        assert all(0 < p.stat().st_size < _expected_chain()["len"] for p in leftovers)
    assert integrity(store) == "ok"

    rerun = lab.drive("killmod", "chain")  # DW_BLOCK unset: same code, same inputs, no block
    assert rerun["status"] == "succeeded"
    assert rerun["cached"] == {"source": True, "square": True, "slow": False,
                               "summarize": False}
    assert rerun["outputs"] == _expected_chain()
    assert_store_sound(store)
    for leftover in leftovers:  # a crash leftover is never adopted as an object
        assert leftover.name not in object_digests(store)
    assert integrity(store) == "ok"
    # The killed run was recorded as begun; the rerun as succeeded.
    history = {r.id: r.status for r in runs(store=str(store))}
    assert history[rerun["id"]] == "succeeded"
    assert len(history) == 2
    (killed,) = set(history) - {rerun["id"]}
    assert history[killed] != "succeeded"
    # A third run is all hits: the rerun indexed the steps the killed run never finished.
    again = lab.drive("killmod", "chain")
    assert all(again["cached"].values()) and again["outputs"] == _expected_chain()
    if where == "dump":
        assert open_store(str(store)).clean_tmp(older_than=0) == len(leftovers)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return "gone"


# -- 2. two processes run the same pipeline on one store at once -----------------------------

SHARED_MODULE = '''
import hashlib, time

from ductwork import pipeline, step


@step
def seed(n: int) -> list:
    time.sleep(0.1)
    return list(range(n))


@step
def big(xs: list) -> bytes:
    # over 4 MiB: written and verified through the two-thread paths
    return hashlib.sha256(repr(xs).encode()).digest() * (160 * 1024)


@step
def stats(xs: list) -> dict:
    time.sleep(0.1)
    return {"n": len(xs), "total": sum(xs)}


@step
def combine(blob: bytes, st: dict) -> dict:
    return {"blob": hashlib.sha256(blob).hexdigest(), "len": len(blob), **st}


@step
def fan(x: int) -> int:
    return x * x


@pipeline
def shared(n: int = 500):
    xs = seed(n)
    return {"combined": combine(big(xs), stats(xs)), "squares": fan.map([1, 2, 3, 4, 5])}
'''


@pytest.mark.slow
def test_two_processes_run_the_same_pipeline_on_one_store_at_once(lab):
    lab.module("sharedmod", SHARED_MODULE)
    barrier = lab.root / "go"
    procs = [
        subprocess.Popen(lab.command("sharedmod", "shared", barrier=barrier, **options),
                         cwd=lab.root, env=lab.env(), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
        for options in ({}, {"backend": "process", "max_workers": 2})
    ]
    try:
        deadline = time.monotonic() + TIMEOUT
        while len(list(lab.root.glob("go.ready-*"))) < len(procs):
            assert all(p.poll() is None for p in procs), [p.communicate() for p in procs]
            assert time.monotonic() < deadline, "the drivers never got ready"
            time.sleep(0.01)
        barrier.touch()
        outputs = [p.communicate(timeout=TIMEOUT) for p in procs]
        reports = [report_of(p.returncode, *out) for p, out in zip(procs, outputs, strict=True)]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()

    first, second = reports
    assert first["status"] == second["status"] == "succeeded"
    assert first["outputs"] == second["outputs"]
    assert first["outputs"]["squares"] == [1, 4, 9, 16, 25]
    assert first["outputs"]["combined"]["n"] == 500
    assert first["outputs"]["combined"]["len"] == 32 * 160 * 1024
    # Same code, same inputs: the same bytes under the same digests, whoever wrote them.
    assert first["digests"] == second["digests"]

    store = lab.store
    assert_store_sound(store)
    assert list((store / "tmp").glob("*")) == []  # a finished run leaves no in-flight file
    assert integrity(store) == "ok"
    history = {r.id: r.status for r in runs(store=str(store))}
    assert history == {first["id"]: "succeeded", second["id"]: "succeeded"}
    for report in reports:
        run = get_run(report["id"], store=str(store))
        assert run.outputs["combined"]["total"] == sum(range(500))
        assert {sid: s.cached for sid, s in run.steps.items()} == report["cached"]


FIRST_USE = r'''
import os, sys, time

from ductwork.runtime.records.history import runs
from ductwork.runtime.store.artifacts import open_store
from ductwork.runtime.records.run import Run
from ductwork.runtime.records.runstore import open_runstore

store, barrier = sys.argv[1], sys.argv[2]
open(f"{barrier}.ready-{os.getpid()}", "w").close()
while not os.path.exists(barrier):
    time.sleep(0.0005)
# what run() does first: open (on first use, create) the store's history and record a run
history = open_runstore(open_store(store))
run = Run(f"run-{os.getpid()}", "p", {}, "inline", started=time.time())
history.begin_run(run)
run.status = "succeeded"
history.finish_run(run)
assert run.id in {r.id for r in runs(store=store)}
'''


@pytest.mark.slow
def test_several_processes_opening_a_new_store_at_once_all_succeed(tmp_path):
    """The first use of a store by several processes at once (e.g. two ``run()`` calls on a
    new ``DUCTWORK_STORE``) must not fail: switching a new runs.sqlite to WAL and creating
    its tables can fail at once with "database is locked" (SQLite skips the busy timeout
    where waiting could deadlock). A race, so it is repeated on fresh stores."""
    script = tmp_path / "first_use.py"
    script.write_text(FIRST_USE)
    for rep in range(6):
        store, barrier = tmp_path / f"store{rep}", tmp_path / f"go{rep}"
        procs = [subprocess.Popen([sys.executable, str(script), str(store), str(barrier)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(5)]
        try:
            deadline = time.monotonic() + TIMEOUT
            while len(list(tmp_path.glob(f"go{rep}.ready-*"))) < len(procs):
                assert all(p.poll() is None for p in procs), [p.communicate() for p in procs]
                assert time.monotonic() < deadline, "the processes never got ready"
                time.sleep(0.005)
            barrier.touch()
            results = [(p, *p.communicate(timeout=TIMEOUT)) for p in procs]
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
        for p, _, err in results:
            assert p.returncode == 0, f"repetition {rep}: a process failed:\n{err}"
        assert integrity(store) == "ok"
        db = sqlite3.connect(store / "runs.sqlite")
        try:
            assert db.execute("SELECT count(*) FROM runs").fetchone()[0] == len(procs)
        finally:
            db.close()


# -- 3. a corrupt artifact is detected and recomputed ----------------------------------------

CORRUPT_MODULE = '''
import hashlib

from ductwork import pipeline, step


@step
def make(n: int) -> list:
    return list(range(n))


@step
def mid(xs: list, size: int) -> bytes:
    unit = hashlib.sha256(repr(xs).encode()).digest()
    return (unit * (size // len(unit) + 1))[:size]


@step
def consumer(blob: bytes) -> dict:
    return {"sha": hashlib.sha256(blob).hexdigest(), "len": len(blob)}


@step
def final(summary: dict) -> dict:
    # padded over INLINE_MAX: an object file, for the test to damage
    return {"report": f"{summary['len']}:{summary['sha'][:16]}", "pad": "." * 2000}


@pipeline
def corrupt(n: int = 100, size: int = 2000):
    return final(consumer(mid(make(n), size)))
'''


def _expected_final(n: int = 100, size: int = 2000) -> dict:
    unit = hashlib.sha256(repr(list(range(n))).encode()).digest()
    blob = (unit * (size // len(unit) + 1))[:size]
    return {"report": f"{size}:{hashlib.sha256(blob).hexdigest()[:16]}", "pad": "." * 2000}


def _damage(path: Path, how: str) -> None:
    data = bytearray(path.read_bytes())
    if how == "flip":
        data[len(data) // 2] ^= 0x01
    else:  # truncate
        del data[len(data) // 2:]
    path.chmod(0o644)
    path.write_bytes(bytes(data))
    assert file_digest(path) != path.parent.name + path.name


@pytest.mark.slow
@pytest.mark.parametrize(("how", "size", "backend"), [
    pytest.param("flip", 2000, "inline", id="flip-small"),
    pytest.param("flip", 5 << 20, "inline", id="flip-large"),
    pytest.param("truncate", 2000, "inline", id="truncate-small"),
    pytest.param("truncate", 5 << 20, "inline", id="truncate-large"),
    # a worker reads the step's inputs itself: it reports the corrupt digest to the driver
    pytest.param("flip", 2000, "process", id="flip-small-process"),
    pytest.param("truncate", 5 << 20, "process", id="truncate-large-process"),
])
def test_a_corrupt_intermediate_artifact_is_recomputed(lab, how, size, backend):
    """``mid``'s stored bytes are damaged between runs; ``consumer`` is forced to read them."""
    lab.module("corruptmod", CORRUPT_MODULE)
    first = lab.drive("corruptmod", "corrupt", size=size)  # a pipeline parameter
    assert first["outputs"] == _expected_final(size=size)
    digest = get_run(first["id"], store=str(lab.store)).steps["mid"].output_refs["output"].digest
    assert digest == first["digests"]["mid"]["output"]
    _damage(object_path(lab.store, digest), how)

    second = lab.drive("corruptmod", "corrupt", size=size, regenerate=["consumer"],
                       backend=backend)
    assert second["status"] == "succeeded"
    assert second["outputs"] == _expected_final(size=size)
    assert second["cached"] == {"make": True, "mid": False, "consumer": False, "final": False}
    assert "failed verification" in (second["notes"]["mid"] or "")
    assert any(w.startswith("RuntimeWarning") and digest[:12] in w and "mid" in w
               for w in second["warnings"]), second["warnings"]
    assert second["digests"]["mid"]["output"] == digest  # the same bytes, put back
    assert file_digest(object_path(lab.store, digest)) == digest
    assert_store_sound(lab.store)
    # And a third run is all hits again, reading nothing corrupt.
    third = lab.drive("corruptmod", "corrupt", size=size)
    assert all(third["cached"].values()) and third["warnings"] == []


@pytest.mark.slow
@pytest.mark.parametrize(("how", "backend"), [
    ("flip", "inline"), ("truncate", "inline"), ("flip", "process"),
])
def test_a_corrupt_final_output_is_recomputed_for_run_outputs(lab, how, backend):
    """The pipeline's own return value is damaged on disk: every step is a hit, and the
    scheduler recomputes the producer when it loads ``run.outputs``."""
    lab.module("corruptmod", CORRUPT_MODULE)
    first = lab.drive("corruptmod", "corrupt")
    digest = first["digests"]["final"]["output"]
    _damage(object_path(lab.store, digest), how)

    second = lab.drive("corruptmod", "corrupt", backend=backend)
    assert second["status"] == "succeeded"
    assert second["outputs"] == _expected_final()
    assert second["cached"] == {"make": True, "mid": True, "consumer": True, "final": False}
    assert any(w.startswith("RuntimeWarning") and digest[:12] in w and "final" in w
               for w in second["warnings"]), second["warnings"]
    assert file_digest(object_path(lab.store, digest)) == digest
    assert_store_sound(lab.store)
    # The recorded run reads back correctly from history, in this process.
    assert get_run(second["id"], store=str(lab.store)).outputs == _expected_final()


# -- 4. code edits between runs: exactly the steps that reach the change rerun ---------------

HELPERS_V0 = '''
"""Helpers for the pipeline."""

SCALE = 3


def inner(x):
    return x * 2


def outer(x):
    return inner(x) + 1


def twice(x):
    return outer(x) + outer(x)


def unrelated(x):
    return x - 1
'''

# Comments, docstrings, blank lines and function order change; no code does.
HELPERS_COSMETIC = '''
"""Helpers for the pipeline, reworded: nothing here changes what runs."""

# the scale used by `scaled`
SCALE = 3  # three


def unrelated(x):
    """Moved up, and documented."""
    return x - 1  # off by one on purpose



def inner(x):
    """Two calls below the steps."""
    # double it
    return x * 2


def outer(x):
    return inner(x) + 1


def twice(x):
    """Calls outer twice."""
    return outer(x) + outer(x)
'''

PIPE_MODULE = '''
import deephelp as h
from deephelp import twice

from ductwork import pipeline, step


@step
def deep(x: int) -> int:
    return h.outer(x)


@step
def deep_too(x: int) -> int:
    return twice(x)


@step
def after_deep(v: int) -> int:
    return v + 100


@step
def shallow(x: int) -> int:
    return h.unrelated(x)


@step
def scaled(x: int) -> int:
    return x * h.SCALE


@step
def plain(x: int) -> int:
    return x + 7


@pipeline
def edits(x: int = 5):
    d = deep(x)
    return {"deep": d, "deep_too": deep_too(x), "after": after_deep(d),
            "shallow": shallow(x), "scaled": scaled(x), "plain": plain(x)}
'''


def _hits(report: dict) -> set[str]:
    return {sid for sid, cached in report["cached"].items() if cached}


@pytest.mark.slow
def test_code_edits_between_processes_rerun_exactly_the_steps_that_reach_them(lab):
    everything = {"deep", "deep_too", "after_deep", "shallow", "scaled", "plain"}
    lab.module("deephelp", HELPERS_V0)
    lab.module("edits_pipe", PIPE_MODULE)
    base = lab.drive("edits_pipe", "edits")
    assert _hits(base) == set()
    assert base["outputs"] == {"deep": 11, "deep_too": 22, "after": 111, "shallow": 4,
                               "scaled": 15, "plain": 12}

    # Comment-, docstring-, blank-line- and order-only edits, in the helpers and the steps.
    lab.module("deephelp", HELPERS_COSMETIC)
    lab.module("edits_pipe", PIPE_MODULE.replace(
        "def plain(x: int) -> int:\n",
        'def plain(x: int) -> int:\n    """Now with a docstring."""\n    # and a comment\n',
    ).replace("import deephelp as h\n", '"""The pipeline module."""\n\nimport deephelp as h\n'))
    cosmetic = lab.drive("edits_pipe", "edits")
    assert _hits(cosmetic) == everything, cosmetic["notes"]
    assert cosmetic["outputs"] == base["outputs"]

    # The helper two calls deep changes but returns the same: the two steps that reach it
    # rerun; after_deep's input has the same bytes, so it stays cached (early cutoff).
    lab.module("deephelp", HELPERS_COSMETIC.replace("return x * 2", "return x + x"))
    same_value = lab.drive("edits_pipe", "edits")
    assert everything - _hits(same_value) == {"deep", "deep_too"}
    assert same_value["outputs"] == base["outputs"]

    # It changes what it returns: those two rerun, and so does what consumes their output.
    lab.module("deephelp", HELPERS_COSMETIC.replace("return x * 2", "return x * 4"))
    changed = lab.drive("edits_pipe", "edits")
    assert everything - _hits(changed) == {"deep", "deep_too", "after_deep"}
    assert changed["outputs"] == {**base["outputs"], "deep": 21, "deep_too": 42, "after": 121}

    # A module constant read by one step: that step only.
    lab.module("deephelp", HELPERS_COSMETIC.replace("return x * 2", "return x * 4")
               .replace("SCALE = 3", "SCALE = 4"))
    constant = lab.drive("edits_pipe", "edits")
    assert everything - _hits(constant) == {"scaled"}
    assert constant["outputs"] == {**changed["outputs"], "scaled": 20}


# -- 5. set-valued outputs under different PYTHONHASHSEED ------------------------------------

SET_MODULE = '''
from ductwork import pipeline, step


@step
def letters() -> set:
    return {"b", "a", "c"}


@step
def frozen() -> frozenset:
    return frozenset({"x", "y", "z", "w"})


@step
def tag(tags: frozenset) -> list:
    return sorted(tags)


@step
def count(s: set, f: frozenset) -> int:
    return len(s) + len(f)


@step(cache=False)
def fresh_letters() -> set:
    return {"b", "a", "c"}


@step(cache=False)
def fresh_frozen() -> frozenset:
    return frozenset({"x", "y", "z", "w"})


@pipeline
def sets():
    s, f = letters(), frozen()
    return {"s": s, "f": f, "n": count(s, f), "tags": tag(frozenset({"q", "r", "s"}))}


@step(cache=False)
def fresh_nested() -> dict:
    return {"tags": {"b", "a", "c"}, "pairs": frozenset({("x", 1), ("y", 2), ("z", 3)}),
            "mixed": {1, "a", b"z", 2.5, None}, "deep": [({"q", "r", "s", "t"},)]}


@step
def nested_size(d: dict) -> int:
    return sum(len(v) for v in d.values())


@pipeline
def fresh_sets():
    s, f = fresh_letters(), fresh_frozen()
    return {"s": s, "f": f, "n": count(s, f), "nested": nested_size(fresh_nested())}
'''


@pytest.mark.slow
def test_set_outputs_and_set_arguments_hit_the_cache_under_another_hash_seed(lab):
    lab.module("setmod", SET_MODULE)
    one = lab.drive("setmod", "sets", env=lab.env(PYTHONHASHSEED="1"))
    two = lab.drive("setmod", "sets", env=lab.env(PYTHONHASHSEED="2"))
    assert _hits(one) == set()
    # every key -- including tag's, whose argument is a frozenset constant -- is seed-free
    assert _hits(two) == {"letters", "frozen", "tag", "count"}
    assert one["outputs"] == two["outputs"] == {
        "s": ["a", "b", "c"], "f": ["w", "x", "y", "z"], "n": 7, "tags": ["q", "r", "s"]}
    store = str(lab.store)
    a, b = get_run(one["id"], store=store), get_run(two["id"], store=store)
    for sid in ("letters", "frozen", "count", "tag"):
        assert a.steps[sid].output_refs == b.steps[sid].output_refs, sid
    assert b.steps["letters"].output == {"a", "b", "c"}
    assert b.steps["frozen"].output == frozenset("wxyz")


@pytest.mark.slow
def test_recomputed_set_output_has_the_same_digest_under_another_hash_seed(lab):
    """The producers rerun (cache=False) in a second interpreter with another hash seed: an
    equal set -- also nested, or of mixed types -- must get the same digest, so what
    consumes it stays cached (early cutoff)."""
    lab.module("setmod", SET_MODULE)
    consumers = {"count", "nested_size"}
    producers = ("fresh_letters", "fresh_frozen", "fresh_nested")
    one = lab.drive("setmod", "fresh_sets", env=lab.env(PYTHONHASHSEED="1"))
    same_seed = lab.drive("setmod", "fresh_sets", env=lab.env(PYTHONHASHSEED="1"))
    assert _hits(same_seed) == consumers  # the control: same seed
    for seed in ("2", "3", "random"):
        other = lab.drive("setmod", "fresh_sets", env=lab.env(PYTHONHASHSEED=seed))
        assert other["outputs"] == one["outputs"]
        for sid in producers:
            assert other["digests"][sid] == one["digests"][sid], (seed, sid)
        assert _hits(other) == consumers, seed
    assert one["outputs"]["n"] == 7 and one["outputs"]["nested"] == 3 + 3 + 5 + 1


# -- 6. process workers and a serializer registered by the pipeline's module -----------------

SERIALIZER_MODULE = '''
from ductwork import pipeline, step
from ductwork.runtime.store.serializers import register_serializer


class Blob:
    def __init__(self, data):
        self.data = data


class BlobSerializer:
    name = "reliability.tagged-blob"

    def dump(self, value, f):
        f.write(b"BLOB" + value.data)

    def load(self, f):
        if f.read(4) != b"BLOB":
            raise ValueError("not a blob")
        return Blob(f.read())


register_serializer(Blob, BlobSerializer())


@step
def make() -> Blob:
    return Blob(b"x" * 10)


@step
def size(b) -> int:
    return len(b.data)


@pipeline
def blobs():
    return {"n": size(make())}
'''


@pytest.mark.slow
def test_a_registered_serializer_works_in_process_workers(lab):
    """Workers never import the pipeline's module (steps travel by cloudpickle), yet a
    serializer that module registers must be used there, both to read and to write."""
    lab.module("sermod", SERIALIZER_MODULE)
    inline = lab.drive("sermod", "blobs")
    assert inline["serializers"]["make"] == {"output": "reliability.tagged-blob"}
    # A worker reads the artifact written with the module's serializer ...
    reads = lab.drive("sermod", "blobs", backend="process", regenerate=["size"])
    assert reads["status"] == "succeeded" and reads["outputs"] == {"n": 10}
    # ... and writes with it: the same bytes, so the same digest, as inline.
    writes = lab.drive("sermod", "blobs", backend="process", regenerate=True)
    assert writes["serializers"]["make"] == inline["serializers"]["make"]
    assert writes["digests"]["make"] == inline["digests"]["make"]
