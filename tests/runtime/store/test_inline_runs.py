"""Inlined step outputs through whole runs: real stores on disk, real SQLite run records,
real worker and fresh processes, real gc.

A cold small step writes one file (its entry); the value is reachable from its ref
wherever that ref went -- a downstream step, ``get_run(...).outputs`` in another
process, gc -- without any object file; damaged inline bytes are recomputed like a
corrupt artifact; gc keeps a kept run's values and the entries that still serve it.
"""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import pytest

from ductwork import pipeline, step
from ductwork.runtime.records.gc import collect
from ductwork.runtime.records.history import get_run
from ductwork.runtime.store.artifacts import INLINE_MAX, CorruptArtifact, open_store


@step
def make(n: int) -> list[int]:
    return list(range(n))


@step
def total(xs: list[int]) -> int:
    return sum(xs)


@step
def report(t: int, blob: bytes) -> dict:
    return {"t": t, "blob": len(blob)}


@step
def big(n: int) -> bytes:
    return b"b" * n


@pipeline
def flow(n: int = 5, size: int = 4 * INLINE_MAX):
    return report(total(make(n)), big(size))


def files(store: Path, kind: str) -> list[Path]:
    return sorted(p for p in (store / kind).rglob("*") if p.is_file())


def test_a_cold_small_step_writes_only_its_entry(tmp_path):
    store = tmp_path / "s"
    run = flow.run(store=str(store))
    assert run.outputs == {"t": 10, "blob": 4 * INLINE_MAX}
    # make, total and report are small: inlined; big is not: one object, its own.
    assert [p.parent.name + p.name for p in files(store, "objects")] == [
        run.steps["big"].output_refs["output"].digest]
    assert len(files(store, "keys")) == 4
    assert json.loads(run.steps["make"].output_refs["output"].inline) == [0, 1, 2, 3, 4]
    warm = flow.run(store=str(store))
    assert all(s.cached for s in warm.steps.values()) and warm.outputs == run.outputs


def test_recorded_outputs_load_in_another_process_without_objects(tmp_path):
    store = tmp_path / "s"
    run = flow.run(n=3, size=10, store=str(store))  # every output small: no object at all
    assert files(store, "objects") == []
    code = ("import json, sys; from ductwork.runtime.records.history import get_run; "
            "r = get_run(sys.argv[1], store=sys.argv[2]); "
            "print(json.dumps([r.outputs, r.steps['make'].outputs]))")
    out = subprocess.run([sys.executable, "-c", code, run.id, str(store)],
                         capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == [{"t": 3, "blob": 10}, {"output": [0, 1, 2]}]


@pytest.mark.slow
def test_inlined_inputs_reach_worker_processes(tmp_path):
    store = str(tmp_path / "s")
    first = flow.run(n=4, size=10, store=store, backend="process", max_workers=2)
    assert first.outputs == {"t": 6, "blob": 10}
    again = flow.run(n=4, size=10, store=store, backend="process", max_workers=2)
    assert all(s.cached for s in again.steps.values()) and again.outputs == first.outputs


def _flip_inline(store: Path, key: str) -> None:
    """Change one bit of an entry's inline bytes, keeping it valid base64 of the same size."""
    path = Path(open_store(str(store)).key_path(key))
    body = json.loads(path.read_text())
    out = body["outputs"]["output"]
    data = bytearray(base64.b64decode(out["inline"]))
    data[len(data) // 2] ^= 0x01
    out["inline"] = base64.b64encode(bytes(data)).decode()
    path.write_text(json.dumps(body))


def test_a_tampered_inline_value_in_an_entry_is_a_miss_with_a_warning(tmp_path):
    """Valid base64 of the right size, one bit flipped: the hash check finds it."""
    store = tmp_path / "s"
    first = flow.run(store=str(store))
    path = open_store(str(store)).key_path(first.steps["make"].key)
    _flip_inline(store, first.steps["make"].key)
    with pytest.warns(RuntimeWarning, match="inline data that hashes to") as caught:
        second = flow.run(store=str(store))
    assert path in " ".join(str(w.message) for w in caught)
    assert second.outputs == first.outputs
    assert not second.steps["make"].cached and second.steps["total"].cached
    # make's entry was rewritten with the right bytes: a third run is all hits.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        third = flow.run(store=str(store))
    assert all(s.cached for s in third.steps.values()) and third.outputs == first.outputs


def test_a_tampered_inline_value_in_a_run_record_fails_verification(tmp_path):
    """The run store's copy of a ref is checked when loaded: never a wrong value."""
    store = tmp_path / "s"
    run = flow.run(n=3, size=10, store=str(store))
    db = sqlite3.connect(store / "runs.sqlite")
    with db:
        (outputs,) = db.execute("SELECT outputs FROM steps WHERE run_id = ? AND id = ?",
                                (run.id, "make")).fetchone()
        body = json.loads(outputs)
        data = bytearray(base64.b64decode(body["output"]["inline"]))
        data[1] ^= 0x01
        body["output"]["inline"] = base64.b64encode(bytes(data)).decode()
        db.execute("UPDATE steps SET outputs = ? WHERE run_id = ? AND id = ?",
                   (json.dumps(body), run.id, "make"))
    db.close()
    with pytest.raises(CorruptArtifact) as info:
        get_run(run.id, store=str(store)).steps["make"].outputs  # noqa: B018
    assert info.value.digest == run.steps["make"].output_refs["output"].digest
    assert get_run(run.id, store=str(store)).outputs == {"t": 3, "blob": 10}


def test_a_truncated_inline_value_is_a_miss_with_a_warning(tmp_path):
    store = tmp_path / "s"
    first = flow.run(store=str(store))
    path = Path(open_store(str(store)).key_path(first.steps["total"].key))
    body = json.loads(path.read_text())
    body["outputs"]["output"]["inline"] = body["outputs"]["output"]["inline"][:-4]
    path.write_text(json.dumps(body))
    with pytest.warns(RuntimeWarning, match="inline data") as caught:
        second = flow.run(store=str(store))
    assert str(path) in " ".join(str(w.message) for w in caught)
    assert not second.steps["total"].cached and second.steps["report"].cached
    assert second.outputs == first.outputs


def test_gc_keeps_inlined_values_reachable(tmp_path):
    store = tmp_path / "s"
    old = flow.run(n=2, store=str(store))
    kept = flow.run(n=6, store=str(store))
    old_past = [p for p in files(store, "keys") + files(store, "objects")]
    for p in old_past:
        os.utime(p, (1, 1))  # past any grace period
    report = collect(str(store), keep_last=1, grace=0)
    assert report.runs_removed == 1 and report.keys_removed > 0
    # The kept run's values load; its entries still serve (make/total/report hits).
    assert get_run(kept.id, store=str(store)).outputs == {"t": 15, "blob": 4 * INLINE_MAX}
    again = flow.run(n=6, store=str(store))
    assert all(s.cached for s in again.steps.values())
    # The dropped run's own entries are gone: n=2 recomputes make and total.
    gone = flow.run(n=2, store=str(store))
    assert not gone.steps["make"].cached and gone.outputs == old.outputs


@step(cache=False)
def hold(x: int, flag: str) -> int:
    """Say we are inside, then wait for the test to let go."""
    open(flag + ".inside", "w").close()
    deadline = time.monotonic() + 30
    while not os.path.exists(flag) and time.monotonic() < deadline:
        time.sleep(0.01)
    return x


@pipeline
def paused(n: int = 4, flag: str = ""):
    xs = make(hold(n, flag))  # hits served after the pause: leased after the sweep
    return {"xs": xs, "t": total(xs)}


def test_a_gc_during_a_run_does_not_take_inlined_values_for_lost(tmp_path):
    """Leases name object files only: after a sweep, a run checks that what it leased is
    still there, and an inlined value has no file to find -- it must not be recomputed."""
    store = str(tmp_path / "s")
    first = tmp_path / "first"
    first.touch()
    paused.run(n=4, flag=str(first), store=store)  # make and total are now cached
    flag = tmp_path / "second"
    result: dict = {}

    def second() -> None:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                result["run"] = paused.run(n=4, flag=str(flag), store=store)
            except BaseException as exc:  # reported by the assertions below
                result["error"] = exc
        result["warnings"] = [str(w.message) for w in caught]

    thread = threading.Thread(target=second)
    thread.start()
    deadline = time.monotonic() + 30
    while not (tmp_path / "second.inside").exists():
        assert time.monotonic() < deadline and thread.is_alive(), result
        time.sleep(0.01)
    collect(store, keep_last=2, grace=0)  # a sweep (keeping both runs) while the run is paused
    flag.touch()
    thread.join(30)
    assert "error" not in result, result
    run = result["run"]
    assert run.outputs == {"xs": [0, 1, 2, 3], "t": 6}
    assert [w for w in result["warnings"] if "removed by gc" in w] == []
    assert run.steps["make"].cached and run.steps["total"].cached
    assert not any(s.note for s in run.steps.values()), {s.id: s.note for s in run.steps.values()}


KILLED = '''
import json, os, pathlib, sys, time
from ductwork import pipeline, step


@step
def one(n: int) -> int:
    return n + 1


@step
def two(x: int) -> dict:
    return {"x": x}


@step
def three(d: dict) -> str:
    if os.environ.get("DW_HOLD"):
        pathlib.Path(os.environ["DW_HOLD"]).write_text(str(os.getpid()))
        time.sleep(60)  # killed here
    return f"x={d['x']}"


@pipeline
def chain(n: int = 1):
    return three(two(one(n)))


if __name__ == "__main__":
    run = chain.run(store=sys.argv[1])
    print(json.dumps({"outputs": run.outputs,
                      "cached": {s: r.cached for s, r in run.steps.items()}}))
'''


@pytest.mark.slow
def test_kill_9_mid_run_leaves_only_sound_inline_entries(tmp_path):
    """SIGKILL while the third small step runs: the two finished steps' entries are whole,
    carry bytes that verify, and serve the rerun; nothing else is left but tmp/."""
    from ductwork.runtime.store.artifacts import parse_entry

    script = tmp_path / "killed.py"
    script.write_text(KILLED)
    store = tmp_path / "s"
    hold = tmp_path / "holding"
    proc = subprocess.Popen([sys.executable, str(script), str(store)],
                            env={**os.environ, "DW_HOLD": str(hold)}, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not hold.exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the third step never started"
            time.sleep(0.01)
        proc.kill()
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    entries = files(store, "keys")
    assert len(entries) == 2 and files(store, "objects") == []
    s = open_store(str(store))
    for path in entries:
        for ref in parse_entry(path.read_bytes()).values():
            assert ref.inline is not None and s.get(ref) in (2, {"x": 2})
    rerun = subprocess.run([sys.executable, str(script), str(store)], cwd=tmp_path,
                           capture_output=True, text=True, timeout=60, check=True)
    report = json.loads(rerun.stdout.splitlines()[-1])
    assert report == {"outputs": "x=2", "cached": {"one": True, "two": True, "three": False}}
