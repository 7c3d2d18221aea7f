"""A process's first run imports only what a run needs (issue 16: the fixed cost of a run).

Each test starts a fresh interpreter, because what matters is what the first ``run()`` of a
process loads; in this test process everything is imported long ago.
"""

from __future__ import annotations

import json
import os
import site
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import ductwork

# Modules a one-step inline run on a local store has no use for: each is imported where it
# is used (a process pool, a pickled value, a step's scratch dir, a
# failing step's traceback, a locked database, a damaged one, a module under sys.prefix,
# a dataclass value, a misspelt parameter's suggestion; attrs is not used by a run at all);
# a log file's name is quoted without urllib.parse (and the ipaddress module it loads);
# paths are joined as strings (pathlib costs ~17M instructions with what it imports);
# the run's store is set for datasets without the datastore module (no dataset read here),
# a value is hashed on a second thread through a queue only when it is large, and the
# project's configuration is read only when a step names a compute target, and
# importlib.util only to find a module not imported yet. A step's parameters are read from
# its code object and its job's arguments split by them, and the bytecode scan reads
# opcode's tables: inspect (with what it imports, ~35M instructions) and dis are loaded
# for an unusual callable or an error message only. (typing still comes with
# functools.singledispatch's register, and ast, linecache and tokenize with the source
# fingerprint.)
DEFERRED = (
    "concurrent.futures", "logging", "pickle", "shutil", "tempfile", "random",
    "sysconfig", "traceback", "subprocess", "struct", "dataclasses", "copy", "attr",
    "difflib", "urllib.parse", "ipaddress", "pathlib", "ductwork.runtime.data.datastore",
    "queue", "ductwork.runtime.config", "importlib.util", "inspect", "dis",
)

SCRIPT = textwrap.dedent("""
    import json, sys
    startup = set(sys.modules)  # what the interpreter's start loaded (no site: python -S)
    import ductwork as dw

    @dw.step
    def add(a: int, b: int) -> int:
        return a + b

    @dw.pipeline
    def one(a: int = 1):
        return add(a, 2)

    before = set(sys.modules)
    for n in range(RUNS):
        run = one.run(a=n, store=sys.argv[1], progress=False)
        assert run.outputs == n + 2, run
    print(json.dumps({"run": sorted(set(sys.modules) - before),
                      "deferred": [m for m in DEFERRED if m in set(sys.modules) - startup],
                      "git": [run.git_commit, run.git_dirty]}))
""")


def fresh_python(script: Path, *args: str, env: dict[str, str] | None = None,
                 ) -> subprocess.CompletedProcess[str]:
    """Run ``script`` in an interpreter that loads nothing at start but what it must.

    ``-S`` skips ``site`` and so the ``.pth`` files an editable install (or setuptools)
    leaves in site-packages, which import pathlib, urllib.parse and more before any
    line of ours: what the script then sees in ``sys.modules`` is what ductwork loaded.
    The path ``site`` would have set up is given explicitly instead.
    """
    env = dict(os.environ if env is None else env)
    root = str(Path(ductwork.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join([root, *site.getsitepackages()])
    return subprocess.run([sys.executable, "-S", str(script), *args], cwd=script.parent,
                          env=env, capture_output=True, text=True, timeout=120)


def first_run(folder: Path, runs: int = 1, future: bool = False) -> dict[str, Any]:
    """Run a one-step pipeline ``runs`` times in a fresh interpreter started in ``folder``
    (its annotations strings, with ``future``: ``from __future__ import annotations``)."""
    script = folder / "first_run.py"  # a file, so that the step has source to fingerprint
    text = SCRIPT.replace("RUNS", str(runs)).replace("DEFERRED", repr(DEFERRED))
    script.write_text("from __future__ import annotations\n" * future + text)
    env = {k: v for k, v in os.environ.items() if k not in ("GIT_DIR", "GIT_WORK_TREE")}
    out = fresh_python(script, str(folder / "store"), env=env)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    """A folder outside any git work tree (as most scratch folders are)."""
    if any((p / ".git").exists() for p in (tmp_path, *tmp_path.parents)):
        pytest.skip("the temporary folder is inside a git work tree")
    return tmp_path


@pytest.mark.parametrize("future", [False, True])
def test_first_inline_run_imports_none_of_the_deferred_modules(scratch: Path,
                                                               future: bool) -> None:
    loaded = first_run(scratch, future=future)
    assert loaded["deferred"] == [], f"a first run imported {loaded['deferred']}"


def test_a_second_run_in_the_process_imports_nothing_more(scratch: Path) -> None:
    """What the first run set up (imports, the open history) is kept for the next run."""
    (scratch / "a").mkdir()
    (scratch / "b").mkdir()
    once, twice = first_run(scratch / "a", runs=1), first_run(scratch / "b", runs=2)
    assert twice["run"] == once["run"]


def test_a_first_run_in_a_git_work_tree_records_its_commit_without_subprocess(
        tmp_path: Path) -> None:
    """The git probe spawns git itself: importing subprocess would cost more than git."""
    repo = tmp_path / "repo"
    repo.mkdir()
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    env.pop("GIT_DIR", None)
    for args in (["init", "-q"], ["commit", "-q", "--allow-empty", "-m", "first"]):
        subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, check=True,
                          capture_output=True, text=True).stdout.strip()
    loaded = first_run(repo)
    assert loaded["deferred"] == [], f"a first run imported {loaded['deferred']}"
    assert loaded["git"] == [head, True]  # the script and the store are untracked files


#: attrs costs a third of ``import ductwork`` (its own 20 modules, and platform and
#: unicodedata) and ~2.7M instructions per class created; only the server and some
#: backends use it, and they load lazily (docs/design.md). (The script's own
#: ``import dataclasses`` loads ``copy``, which attrs would load too.)
HEAVY = ("attr", "attrs", "platform", "unicodedata")

RECORDS_SCRIPT = textwrap.dedent("""
    import dataclasses, json, sys, typing
    import ductwork as dw

    @dataclasses.dataclass(frozen=True)
    class Config:
        scale: int = 2

    class Point(typing.NamedTuple):
        x: int
        y: int

    @dw.step(env=dw.Environment(pip=["numpy"]))
    def add(p: Point, config: Config) -> int:
        return (p.x + p.y) * config.scale

    @dw.pipeline
    def one(a: int = 1):
        return add(Point(a, 1), Config())

    after_import = [m for m in HEAVY if m in sys.modules]
    run = one.run(store=sys.argv[1], progress=False)
    assert run.outputs == 4, run
    print(json.dumps({"import": after_import, "run": [m for m in HEAVY if m in sys.modules]}))
""")


def test_import_and_a_first_run_load_no_attrs(scratch: Path) -> None:
    """Our own records are plain slotted classes: attrs is the server's and backends'."""
    script = scratch / "records.py"
    script.write_text(RECORDS_SCRIPT.replace("HEAVY", repr(HEAVY)))
    out = fresh_python(script, str(scratch / "store"))
    assert out.returncode == 0, out.stderr
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert loaded == {"import": [], "run": []}, loaded


#: What decorating steps and pipelines has no use for: parameters are read from the code
#: object and return annotations resolved without typing (docs: dsl/binding, dsl/hints).
INTROSPECTION = ("typing", "inspect", "ast", "dis", "tokenize", "linecache")

DECORATING_SCRIPT = textwrap.dedent("""
    FUTURE
    import json, sys
    import ductwork as dw

    @dw.step
    def split(rows: list[int], ratio: float = 0.5, /) -> tuple[list[int], list[int]]:
        cut = int(len(rows) * ratio)
        return rows[:cut], rows[cut:]

    @dw.step(cache_version=2, ignore_inputs=["log"])
    def fit(train: list[int], *extra: int, scale: int = 1, log: object = None,
            **options: int) -> "int | None":
        return sum(train) * scale

    @dw.step
    def later(x: "Missing") -> "Unknown":  # unresolvable forward references
        return x

    @dw.pipeline
    def train(n: int = 4, *, ratio: float = 0.5):
        a, b = split(list(range(n)), ratio)
        return fit(a, scale=2)

    assert split.options.outputs == ("output_0", "output_1"), split.options.outputs
    assert train.bind({}) == {"n": 4, "ratio": 0.5}
    print(json.dumps([m for m in INTROSPECTION if m in sys.modules]))
""")


@pytest.mark.parametrize("future", [False, True])
def test_decorating_steps_and_pipelines_loads_no_introspection_modules(
        tmp_path: Path, future: bool) -> None:
    """typing and inspect (with ast, dis, tokenize, linecache) cost a process ~47M
    instructions; ``import ductwork`` and decorating need none of them."""
    script = tmp_path / "decorating.py"
    future_line = "from __future__ import annotations" if future else ""
    script.write_text(DECORATING_SCRIPT.replace("FUTURE", future_line, 1)
                      .replace("INTROSPECTION", repr(INTROSPECTION)))
    out = fresh_python(script)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
