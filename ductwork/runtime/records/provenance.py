"""Where a run came from: the git commit and dirty flag of the working directory.

Asked for in a background thread when a run starts, so a slow ``git status``
on a large repository overlaps with the run instead of delaying it. One git
process answers both questions (``status --porcelain=v2 --branch`` prints the
commit as a header line, then a line per changed or untracked file), and it is
started with ``os.posix_spawnp`` where there is one: importing ``subprocess``
(with ``signal``, ``selectors`` and ``locale``) would cost a run more than git
itself. ``--no-optional-locks`` keeps the probe from taking the index lock that
the user's own git commands may need at that moment.
"""

from __future__ import annotations

import os
import threading
from typing import Any

_COMMAND = ("git", "--no-optional-locks", "status", "--porcelain=v2", "--branch")
_TIMEOUT = 30.0  # seconds: a git that takes longer is killed and the run records nothing


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
            return  # a git process a run, for nothing: most scratch folders are no repo
        out = _git_output(self._cwd)
        if out is not None:
            self._value = parse_status(out)

    def result(self, timeout: float = 30.0) -> tuple[str | None, bool | None]:
        """Return ``(commit, dirty)``, or ``(None, None)`` outside a git work tree."""
        self._thread.join(timeout)
        return self._value


def parse_status(out: str) -> tuple[str | None, bool | None]:
    """``(commit, dirty)`` from ``git status --porcelain=v2 --branch``; no commit yet: None."""
    commit = None
    dirty = False
    for line in out.splitlines():
        if line.startswith("# branch.oid "):
            commit = line[len("# branch.oid "):].strip()
        elif line and not line.startswith("#"):
            dirty = True
    if commit is None or commit == "(initial)":
        return None, None  # a repository without a commit: nothing to name
    return commit, dirty


def _git_output(cwd: str) -> str | None:
    """What ``_COMMAND`` prints in ``cwd``, or None when git is missing or fails."""
    if not hasattr(os, "posix_spawnp"):
        import subprocess

        try:
            done = subprocess.run(_COMMAND, cwd=cwd, capture_output=True, text=True,
                                  timeout=_TIMEOUT)
        except (OSError, subprocess.SubprocessError):
            return None  # no git: the run records none
        return done.stdout if done.returncode == 0 else None
    read, write = os.pipe()
    try:
        pid = os.posix_spawnp("git", [_COMMAND[0], "-C", cwd, *_COMMAND[1:]], os.environ,
                              file_actions=[(os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                                            (os.POSIX_SPAWN_DUP2, write, 1),
                                            (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0)])
    except OSError:
        os.close(read)
        return None  # no git: the run records none
    finally:
        os.close(write)
    # A hung git (a network file system, say) is killed, as subprocess's timeout would.
    watchdog = threading.Timer(_TIMEOUT, _kill, (pid,))
    watchdog.daemon = True
    watchdog.start()
    try:
        with open(read, "rb") as pipe:
            out = pipe.read()
    finally:
        watchdog.cancel()  # before the wait: the pid cannot have been reused yet
        _, status = os.waitpid(pid, 0)
    return out.decode("utf-8", "replace") if os.waitstatus_to_exitcode(status) == 0 else None


def _kill(pid: int) -> None:
    try:
        os.kill(pid, 9)  # SIGKILL, without importing signal
    except OSError:
        pass  # gone already


def _in_work_tree(cwd: str) -> bool:
    """True when ``cwd`` or a parent holds ``.git`` (a folder, or a file in a worktree)."""
    folder = os.path.realpath(cwd)
    while True:
        if os.path.exists(os.path.join(folder, ".git")):
            return True
        parent = os.path.dirname(folder)
        if parent == folder:
            return False
        folder = parent


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
