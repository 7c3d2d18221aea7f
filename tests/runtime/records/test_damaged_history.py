"""History never blocks a run: a damaged, read-only or full ``runs.sqlite``.

A garbage, truncated or directory ``runs.sqlite`` is moved aside (kept), a warning
names both paths, and a new one is started; read-only commands work on a read-only
store and never create one; one bad row is reported and the others listed; a disk too
full to write history still hands the run's result, step errors intact, to the user.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
import subprocess
import sys
import uuid

import pytest

import ductwork as dw
from ductwork import pipeline, step
from ductwork.runtime.records.runstore import forget_runstore
from ductwork.runtime.store.artifacts import ArtifactStore


@step
def one() -> int:
    return 1


@pipeline
def p():
    return one()


def _forget(store) -> None:
    forget_runstore(ArtifactStore(str(store)))


def _damage(path, how: str) -> None:
    if how == "garbage":
        path.write_bytes(b"this is not a database at all " * 200)
    elif how == "truncated":
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 3])
    else:
        path.unlink()
        path.mkdir()
        (path / "inside").write_text("kept")


@pytest.mark.parametrize("how", ["garbage", "truncated", "directory"])
def test_a_damaged_history_is_moved_aside_and_the_run_goes_on(tmp_path, how):
    store = tmp_path / "s"
    for _ in range(30):  # enough history that a third of the file loses real pages
        p.run(store=str(store))
    _forget(store)
    for extra in ("runs.sqlite-wal", "runs.sqlite-shm"):
        with contextlib.suppress(FileNotFoundError):
            (store / extra).unlink()
    _damage(store / "runs.sqlite", how)
    with pytest.warns(RuntimeWarning, match="runs.sqlite.damaged-") as caught:
        run = p.run(store=str(store))
    message = str(caught[0].message)
    assert str(store / "runs.sqlite") in message
    assert run.status == "succeeded" and run.outputs == 1
    kept = [f for f in os.listdir(store) if f.startswith("runs.sqlite.damaged-")]
    assert len(kept) == 1 and kept[0] in message
    assert [r.id for r in dw.runs(store=str(store))] == [run.id]
    _forget(store)


def test_one_bad_history_row_is_reported_and_the_others_listed(tmp_path):
    store = tmp_path / "s"
    good = p.run(store=str(store))
    bad = p.run(store=str(store))
    _forget(store)
    db = sqlite3.connect(store / "runs.sqlite")
    db.execute("UPDATE runs SET params = '{not json' WHERE id = ?", (bad.id,))
    db.commit()
    db.close()
    with pytest.warns(RuntimeWarning, match=bad.id):
        listed = dw.runs(store=str(store))
    assert [r.id for r in listed] == [good.id]
    _forget(store)


@pytest.fixture
def read_only_store(tmp_path):
    """A store with one run, that nobody can write: a read-only bind mount as root (a
    chmod does not stop root), the write bits taken off otherwise."""
    source = tmp_path / "s"
    run = p.run(store=str(source))
    _forget(source)
    if os.geteuid() != 0:
        modes = {path: path.stat().st_mode for path in [source, *source.rglob("*")]}
        for path, mode in modes.items():
            path.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
        yield source, run
        for path, mode in sorted(modes.items(), key=lambda kv: len(str(kv[0]))):
            path.chmod(mode)
        _forget(source)
        return
    store = tmp_path / "ro"
    store.mkdir()
    mounted = subprocess.run(["mount", "--bind", str(source), str(store)], capture_output=True,
                             text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot bind-mount a read-only store here: {mounted.stderr.strip()}")
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(store)], check=True,
                       capture_output=True)
        yield store, run
    finally:
        _forget(store)
        subprocess.run(["umount", str(store)], capture_output=True)


def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "ductwork", *args], capture_output=True,
                          text=True, timeout=60, cwd=cwd)


def test_read_only_commands_work_on_a_read_only_store(read_only_store):
    store, run = read_only_store
    assert [r.id for r in dw.runs(store=str(store))] == [run.id]
    assert dw.get_run(run.id, store=str(store)).outputs == 1
    out = _cli("runs", "--store", str(store))
    assert out.returncode == 0, out.stderr
    assert run.id in out.stdout and str(store) in out.stderr
    for args in (["show", run.id], ["logs", run.id, "one"], ["why", run.id, "one"]):
        out = _cli(*args, "--store", str(store))
        assert out.returncode == 0, (args, out.stderr)


def test_read_only_commands_work_when_the_history_cannot_be_written(tmp_path):
    """As root a chmod does not stop writes; an immutable open must still be used when the
    directory cannot be written. Here: a history file opened read-only by SQLite URI."""
    from ductwork.runtime.records.runstore import open_history

    store = tmp_path / "s"
    run = p.run(store=str(store))
    _forget(store)
    history = open_history(ArtifactStore(str(store)), writable=False)
    assert history is not None and [r.id for r in history.list_runs()] == [run.id]
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        history._db.execute("DELETE FROM runs")
    history.close()


def test_listing_a_store_that_does_not_exist_creates_nothing(tmp_path):
    out = _cli("runs", "--store", "typo", cwd=tmp_path)
    assert out.returncode != 0
    assert "no store" in out.stderr.lower() and str(tmp_path / "typo") in out.stderr
    assert not (tmp_path / "typo").exists()
    assert dw.runs(store=str(tmp_path / "typo2")) == []  # no runs there; nothing created
    with pytest.raises(LookupError, match="No store"):
        dw.get_run("20990101-000000-abcdef", store=str(tmp_path / "typo3"))
    assert sorted(os.listdir(tmp_path)) == []


@step
def fill_then_fail(where: str) -> int:
    """Fill the disk the store is on, then fail: history has no room left to say so."""
    with contextlib.suppress(OSError), open(os.path.join(where, "filler"), "wb") as f:
        while True:
            f.write(b"x" * 4096)
            f.flush()
    raise RuntimeError("the step's own error")


@pipeline
def fills(where: str = ""):
    return fill_then_fail(where)


@pytest.fixture
def small_disk(tmp_path):
    mount = tmp_path / "small"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root (CI runs this as root)")
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={512 * 1024}", "tmpfs",
                           str(mount)], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"mounting a tmpfs was refused here: {made.stderr.strip()}")
    yield mount
    forget_runstore(ArtifactStore(str(mount / "store")))
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_keeps_the_step_error_and_warns_history_was_not_written(small_disk):
    store = small_disk / "store"
    p.run(store=str(store))  # the history exists and has room for nothing more later
    with pytest.warns(RuntimeWarning, match="could not be written") as caught, \
            pytest.raises(dw.PipelineFailed) as failed:
        fills.run(where=str(small_disk), store=str(store))
    assert "the step's own error" in str(failed.value)
    assert "disk is full" not in str(failed.value).split("the step's own error")[0]
    assert failed.value.run.steps["fill_then_fail"].status == "failed"
    assert any(str(store) in str(w.message) and "full" in str(w.message) for w in caught)


def test_an_in_memory_store_lists_without_a_file(tmp_path):
    url = f"memory://damaged-{uuid.uuid4().hex}"
    assert dw.runs(store=url) == []
