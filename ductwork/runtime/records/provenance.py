"""Where a run came from: the git commit and dirty flag of the working directory.

Asked for in a background thread when a run starts, so a slow ``git status``
on a large repository overlaps with the run instead of delaying it.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any


class GitState:
    """The commit and dirty flag of the working directory, found in the background."""

    def __init__(self, cwd: str) -> None:
        self._cwd = cwd
        self._value: tuple[str | None, bool | None] = (None, None)
        self._thread = threading.Thread(target=self._probe, daemon=True)

    @classmethod
    def start(cls, cwd: str | None = None) -> GitState:
        """Begin probing ``cwd`` (default: the working directory)."""
        state = cls(cwd or os.getcwd())
        state._thread.start()
        return state

    def _probe(self) -> None:
        if "GIT_DIR" not in os.environ and not _in_work_tree(self._cwd):
            return  # two git processes a run, for nothing: most scratch folders are no repo
        import subprocess

        try:
            commit = subprocess.run(
                ["git", "rev-parse", "HEAD"], cwd=self._cwd, capture_output=True, text=True,
                timeout=10,
            )
            if commit.returncode != 0:
                return
            status = subprocess.run(
                ["git", "status", "--porcelain"], cwd=self._cwd, capture_output=True, text=True,
                timeout=30,
            )
            dirty = bool(status.stdout.strip()) if status.returncode == 0 else None
            self._value = (commit.stdout.strip(), dirty)
        except (OSError, subprocess.SubprocessError):
            pass  # no git, or not a repository: the run records none

    def result(self, timeout: float = 30.0) -> tuple[str | None, bool | None]:
        """Return ``(commit, dirty)``, or ``(None, None)`` outside a git work tree."""
        self._thread.join(timeout)
        return self._value


def _in_work_tree(cwd: str) -> bool:
    """True when ``cwd`` or a parent holds ``.git`` (a folder, or a file in a worktree)."""
    here = Path(cwd).resolve()
    return any((folder / ".git").exists() for folder in (here, *here.parents))


def source_of(fn: Any) -> tuple[str | None, str | None]:
    """The module and the absolute file a pipeline's function was defined in (None if unknown).

    A run records both, so two pipelines of one name in different files are told apart.
    """
    module = getattr(fn, "__module__", None)
    code = getattr(fn, "__code__", None)
    file = getattr(code, "co_filename", None)
    if file and not file.startswith("<"):
        file = os.path.abspath(file)
    return module, file or None
