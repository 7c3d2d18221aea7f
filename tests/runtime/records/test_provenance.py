"""A run's git provenance: the commit and dirty flag, from one real git process."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path

import pytest

from ductwork.runtime.records.provenance import GitState, parse_status

GIT_ENV = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, env=GIT_ENV, check=True,
                          capture_output=True, text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("GIT_DIR", raising=False)
    folder = tmp_path / "repo"
    folder.mkdir()
    git(folder, "init", "-q")
    (folder / "pipe.py").write_text("x = 1\n")
    git(folder, "add", "pipe.py")
    git(folder, "commit", "-q", "-m", "first")
    return folder


def test_a_clean_work_tree_gives_its_commit_and_not_dirty(repo: Path) -> None:
    assert GitState.start(str(repo)).result() == (git(repo, "rev-parse", "HEAD"), False)


def test_a_changed_or_new_file_makes_the_tree_dirty(repo: Path) -> None:
    head = git(repo, "rev-parse", "HEAD")
    (repo / "pipe.py").write_text("x = 2\n")
    assert GitState.start(str(repo)).result() == (head, True)
    git(repo, "checkout", "--", "pipe.py")
    (repo / "new.py").write_text("")
    assert GitState.start(str(repo / ".")).result() == (head, True)


def test_a_sub_folder_of_the_work_tree_names_the_same_commit(repo: Path) -> None:
    (repo / "sub").mkdir()
    assert GitState.start(str(repo / "sub")).result() == (git(repo, "rev-parse", "HEAD"), False)


def test_no_repository_or_no_commit_records_nothing(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GIT_DIR", raising=False)
    if not any((p / ".git").exists() for p in (tmp_path, *tmp_path.parents)):
        assert GitState.start(str(tmp_path)).result() == (None, None)
    empty = tmp_path / "empty"
    empty.mkdir()
    git(empty, "init", "-q")
    assert GitState.start(str(empty)).result() == (None, None)


def test_git_missing_from_the_path_records_nothing(repo: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(repo / "no-such-bin"))
    assert GitState.start(str(repo)).result() == (None, None)


def test_parse_status_reads_the_header_and_the_entries() -> None:
    head = "# branch.oid 0123abcd\n# branch.head main\n"
    assert parse_status(head) == ("0123abcd", False)
    assert parse_status(head + "1 .M N... 100644 100644 100644 a b pipe.py\n") == (
        "0123abcd", True)
    assert parse_status(head + "? new.py\n") == ("0123abcd", True)
    assert parse_status("# branch.oid (initial)\n# branch.head main\n") == (None, None)


def test_the_probe_runs_git_without_a_thread_of_ours(repo: Path) -> None:
    """A probe thread fights the run's own thread for the GIL (switch interval: 5 ms) while
    the run imports and starts; git alone is one child process, collected at the end."""
    before = set(threading.enumerate())  # other tests' threads may end meanwhile: no new one
    state = GitState.start(str(repo))
    assert set(threading.enumerate()) <= before
    assert state.result() == (git(repo, "rev-parse", "HEAD"), False)
    assert set(threading.enumerate()) <= before


def fake_git(folder: Path, body: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Put first on PATH a ``git`` executable in ``folder`` that runs ``body`` (a shell
    script): a git that hangs or prints what a test needs."""
    folder.mkdir(exist_ok=True)
    exe = folder / "git"
    exe.write_text("#!/bin/sh\n" + body)
    exe.chmod(0o755)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    return folder


def test_a_git_that_hangs_is_killed_and_reaped_when_the_run_asks(
        repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pid_file = tmp_path / "git.pid"
    fake_git(tmp_path / "bin", f"echo $$ > {pid_file}\nexec sleep 60\n", monkeypatch)
    state = GitState.start(str(repo))
    started = time.monotonic()
    assert state.result(timeout=0.5) == (None, None)
    assert time.monotonic() - started < 10
    pid = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):  # killed, and reaped: not even a zombie
        os.kill(pid, 0)


def test_output_longer_than_a_pipe_holds_is_read_to_the_end(
        repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """git blocks on a full pipe until the probe reads: many changed files must not hang."""
    lines = "".join(f"? untracked-{i:06d}.txt\n" for i in range(20_000))  # ~500 KB
    (tmp_path / "status.txt").write_text("# branch.oid abc123\n# branch.head main\n" + lines)
    fake_git(tmp_path / "bin", f"cat {tmp_path / 'status.txt'}\n", monkeypatch)
    assert GitState.start(str(repo)).result(timeout=20) == ("abc123", True)


def test_a_probe_closed_unread_leaves_no_child_behind(
        repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run that fails before it starts (a bad parameter) drops its probe: git is stopped."""
    pid_file = tmp_path / "git.pid"
    fake_git(tmp_path / "bin", f"echo $$ > {pid_file}\nexec sleep 60\n", monkeypatch)
    state = GitState.start(str(repo))
    deadline = time.monotonic() + 10
    while not pid_file.exists() or not pid_file.read_text().strip():
        assert time.monotonic() < deadline
        time.sleep(0.01)
    state.close()
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid_file.read_text()), 0)
    assert state.result() == (None, None)


def test_a_process_with_many_files_open_still_waits_for_git(
        repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A server may hold over 1024 files: waiting on git's pipe must not need a small fd."""
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 1200:
        pytest.skip(f"only {soft} files may be open here")
    fake_git(tmp_path / "bin", "sleep 0.3\necho '# branch.oid abc123'\n", monkeypatch)
    held = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    try:
        assert GitState.start(str(repo)).result(timeout=20) == ("abc123", False)
    finally:
        for fd in held:
            os.close(fd)


def test_without_posix_spawnp_git_runs_through_subprocess_alike(
        repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where there is no posix_spawnp, git still starts with the run and is read at its end."""
    monkeypatch.delattr(os, "posix_spawnp")
    head = git(repo, "rev-parse", "HEAD")
    assert GitState.start(str(repo)).result() == (head, False)
    pid_file = tmp_path / "git.pid"
    fake_git(tmp_path / "bin", f"echo $$ > {pid_file}\nexec sleep 60\n", monkeypatch)
    assert GitState.start(str(repo)).result(timeout=0.5) == (None, None)
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid_file.read_text()), 0)
