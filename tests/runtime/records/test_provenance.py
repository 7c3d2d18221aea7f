"""A run's git provenance: the commit and dirty flag, from one real git process."""

from __future__ import annotations

import os
import subprocess
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
