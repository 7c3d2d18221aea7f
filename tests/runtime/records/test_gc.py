"""ductwork gc: what no kept run refers to goes; what a kept or young run uses stays."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from ductwork import pipeline, step
from ductwork.runtime.records.gc import collect
from ductwork.runtime.records.history import get_run, open_store, runs


@step
def make(n: int) -> list[int]:
    return list(range(n)) + [0] * 600  # over INLINE_MAX: an object file, for gc to remove


@step
def total(xs: list[int]) -> int:
    return sum(xs)


@pipeline
def flow(n: int = 3):
    return total(make(n))


def _age_everything(store_dir, seconds=7200):
    """Make every stored file look old, as if written before the grace period."""
    past = time.time() - seconds
    for dirpath, _, files in os.walk(store_dir):
        for name in files:
            os.utime(os.path.join(dirpath, name), (past, past))


def test_keep_last_removes_older_runs_and_their_artifacts(tmp_path):
    store = tmp_path / "s"
    old = flow.run(n=3, store=str(store))
    new = flow.run(n=5, store=str(store))
    _age_everything(store)
    before = set(open_store(str(store)).iter_objects())
    report = collect(str(store), keep_last=1)
    after = set(open_store(str(store)).iter_objects())
    assert report.runs_removed == 1 and report.objects_removed > 0
    assert after < before
    assert [r.id for r in runs(store=str(store))] == [new.id]
    assert get_run(new.id, store=str(store)).outputs == 10
    with pytest.raises(LookupError):
        get_run(old.id, store=str(store))
    # The kept run's cache still serves; the dropped run's work is redone.
    assert all(s.cached for s in flow.run(n=5, store=str(store)).steps.values())
    assert not flow.run(n=3, store=str(store)).steps["make"].cached


def test_young_objects_survive_gc_even_if_unreferenced(tmp_path):
    store = tmp_path / "s"
    flow.run(n=3, store=str(store))
    flow.run(n=4, store=str(store))
    report = collect(str(store), keep_last=1)  # within the grace period: nothing goes
    assert report.objects_removed == 0 and report.keys_removed == 0
    assert all(s.cached for s in flow.run(n=3, store=str(store)).steps.values())


def test_dry_run_removes_nothing(tmp_path):
    store = tmp_path / "s"
    flow.run(n=3, store=str(store))
    flow.run(n=4, store=str(store))
    _age_everything(store)
    report = collect(str(store), keep_last=1, dry_run=True)
    assert report.dry_run and report.runs_removed == 1 and report.objects_removed > 0
    assert len(runs(store=str(store))) == 2


def test_newer_than_keeps_recent_runs(tmp_path):
    store = tmp_path / "s"
    flow.run(n=3, store=str(store))
    _age_everything(store)
    cutoff = time.time() - 60
    report = collect(str(store), newer_than=cutoff)
    assert report.runs_removed == 0  # the run started just now counts as recent


def test_gc_cli(tmp_path):
    store = tmp_path / "s"
    flow.run(n=3, store=str(store))
    run = flow.run(n=4, store=str(store))
    _age_everything(store)
    out = subprocess.run(
        [sys.executable, "-m", "ductwork", "gc", "--store", str(store), "--keep-last", "1"],
        capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert "removed 1 runs" in out.stdout
    out = subprocess.run([sys.executable, "-m", "ductwork", "gc", "--store", str(store)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "--keep-last" in out.stderr
    out = subprocess.run(
        [sys.executable, "-m", "ductwork", "why", run.id, "total", "--store", str(store)],
        capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 0 and "ran:" in out.stdout


def test_a_run_whose_driver_died_is_reported_died_and_not_kept(tmp_path, monkeypatch):
    import socket

    from ductwork.runtime.records import runstore
    from ductwork.runtime.records.run import Run

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    store = str(tmp_path / "s")
    flow.run(n=3, store=store)
    monkeypatch.setattr(runstore, "_DRIVER", f"{socket.gethostname()}:{gone.pid}")
    history = runstore.open_runstore(open_store(store))
    history.begin_run(Run("20000101-000000-dead01", "flow", {}, "inline", started=1.0))
    listed = {r.id: r.status for r in runs(store=store)}
    assert listed["20000101-000000-dead01"] == "died"
    _age_everything(tmp_path / "s")
    report = collect(store, keep_last=1)
    assert report.runs_removed == 1  # a died run is not protected like a running one
