"""Where a run came from: the git commit and dirty flag of the working directory.

One git process answers both questions (``status --porcelain=v2 --branch``
prints the commit as a header line, then a line per changed or untracked file).
It is started when a run starts and read when the run ends, so a slow ``git
status`` on a large repository overlaps with the run instead of delaying it.
No thread of ours waits for it: a probe thread contended with the run's own
thread for the GIL (each hand-over can wait out the 5 ms switch interval) while
the run imported and set up, which cost a first run in a git work tree ~9 ms;
the kernel buffers git's output in the pipe meanwhile, and a git with more to
say than the pipe holds simply waits to be read. git is started with
``os.posix_spawnp`` where there is one: importing ``subprocess`` (with
``signal``, ``selectors`` and ``locale``) would cost a run more than git itself.
``--no-optional-locks`` keeps the probe from taking the index lock that the
user's own git commands may need at that moment.
"""

from __future__ import annotations

import os
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_COMMAND = ("git", "--no-optional-locks", "status", "--porcelain=v2", "--branch")
_TIMEOUT = 30.0  # seconds the run's end waits for git; then it is killed and records nothing
_NOTHING: tuple[str | None, bool | None] = (None, None)


class GitState:
    """The commit and dirty flag of the working directory, from a git started in advance."""

    def __init__(self, cwd: str) -> None:
        self._cwd = cwd
        self._pid: int | None = None
        self._pipe: int | None = None
        self._proc: Any = None  # a subprocess.Popen where there is no posix_spawnp
        self._value = _NOTHING

    @classmethod
    def start(cls, cwd: str | None = None) -> GitState:
        """Begin probing ``cwd`` (default: the working directory); collect it with
        ``result()``, or ``close()`` it unread."""
        state = cls(cwd or os.getcwd())
        # Outside a work tree (most scratch folders) no git is started at all.
        if "GIT_DIR" in os.environ or _in_work_tree(state._cwd):
            state._spawn()
        return state

    def _spawn(self) -> None:
        if not hasattr(os, "posix_spawnp"):
            import subprocess

            try:
                self._proc = subprocess.Popen(_COMMAND, cwd=self._cwd, stdout=subprocess.PIPE,
                                              stdin=subprocess.DEVNULL,
                                              stderr=subprocess.DEVNULL)
            except OSError:
                pass  # no git: the run records none
            return
        read, write = os.pipe()
        try:
            self._pid = os.posix_spawnp(
                "git", [_COMMAND[0], "-C", self._cwd, *_COMMAND[1:]], os.environ,
                file_actions=[(os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                              (os.POSIX_SPAWN_DUP2, write, 1),
                              (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0)])
        except OSError:
            os.close(read)
            return  # no git: the run records none
        finally:
            os.close(write)
        os.set_blocking(read, False)  # our end only: git's writes still block on a full pipe
        self._pipe = read

    def result(self, timeout: float = _TIMEOUT) -> tuple[str | None, bool | None]:
        """Return ``(commit, dirty)``, or ``(None, None)`` outside a git work tree, when git
        fails, or when it has not finished ``timeout`` seconds after this call."""
        if self._proc is not None:
            return self._communicate(timeout)
        if self._pid is None:
            return self._value
        out, finished = _read_all(self._pipe, time.monotonic() + timeout)
        status = self._reap(kill=not finished)
        # status None: reaped by someone else (SIGCHLD ignored, say); then a whole output
        # is trusted, as it names the commit only when git got as far as printing it.
        if finished and (status is None or os.waitstatus_to_exitcode(status) == 0):
            self._value = parse_status(out.decode("utf-8", "replace"))
        return self._value

    def close(self) -> None:
        """Stop a probe whose result is not wanted (a run that failed before it began)."""
        if self._pid is not None:
            self._reap(kill=True)
        if self._proc is not None:
            proc, self._proc = self._proc, None
            proc.kill()
            proc.communicate()

    def _communicate(self, timeout: float) -> tuple[str | None, bool | None]:
        import subprocess

        proc, self._proc = self._proc, None
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            return self._value
        if proc.returncode == 0:
            self._value = parse_status(out.decode("utf-8", "replace"))
        return self._value

    def _reap(self, kill: bool) -> int | None:
        """Close our end of the pipe and wait for git (killed first if ``kill``): its
        wait status, or None if it was reaped elsewhere."""
        pid, self._pid = self._pid, None
        assert pid is not None and self._pipe is not None
        os.close(self._pipe)
        self._pipe = None
        if kill:
            try:
                os.kill(pid, 9)  # SIGKILL, without importing signal
            except OSError:
                pass  # gone already
        try:
            return os.waitpid(pid, 0)[1]
        except ChildProcessError:
            return None


def _read_all(fd: int | None, deadline: float) -> tuple[bytes, bool]:
    """What the non-blocking pipe ``fd`` yields until git closes it, and whether it did
    before ``deadline``."""
    assert fd is not None
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 1 << 16)
        except BlockingIOError:
            # Only when git is still at work: a run's end usually finds it long done.
            # poll, not select: a process with over 1024 files open has fds select refuses.
            import select

            left = deadline - time.monotonic()
            waiting = select.poll()
            waiting.register(fd, select.POLLIN)
            if left <= 0 or not waiting.poll(left * 1000):
                return b"".join(chunks), False
            continue
        if not chunk:
            return b"".join(chunks), True
        chunks.append(chunk)


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
