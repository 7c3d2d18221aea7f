"""A history written by ductwork at 77f658c (before leases lost their index by run and
finish_run its rewrite of the run's row) and one written now are read alike by both: the
same keys (every step a hit across versions), the same runs and step runs read back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import ductwork

BASE = "77f658c"
HERE = Path(ductwork.__file__).resolve().parent.parent

PROGRAM = '''
import json, sys
from ductwork import pipeline, step
from ductwork.runtime.records.runstore import open_history
from ductwork.runtime.store.artifacts import open_store

@step
def inc(x: int) -> int:
    return x + 1

@pipeline
def chain(n: int = 0):
    x = n
    for _ in range(5):
        x = inc(x)
    return x

store = sys.argv[1]
run = chain.run(n=0, store=store, backend="inline", progress=False)
history = open_history(open_store(store))
runs = {}
for listed in history.list_runs():
    got = history.get_run(listed.id)
    runs[got.id] = {
        "run": [str(got.status), got.graph, got.params, got.result, got.finished,
                got.module, got.git_commit],
        "steps": {s.id: [str(s.status), s.cached, s.key, s.components,
                         {k: r.to_dict() for k, r in s.output_refs.items()},
                         s.cached_from, s.metrics, s.logs, s.note, s.attempts]
                  for s in got.steps.values()},
    }
print(json.dumps({"cached": sum(s.cached for s in run.steps.values()), "runs": runs},
                 default=repr))
'''


def _base_tree(tmp_path: Path) -> Path:
    where = tmp_path / "base"
    where.mkdir()
    archive = subprocess.run(["git", "-C", str(HERE), "archive", BASE], capture_output=True)
    if archive.returncode != 0:
        pytest.skip(f"revision {BASE} is not in this checkout's git history")
    subprocess.run(["tar", "-x", "-C", str(where)], input=archive.stdout, check=True)
    return where


def _run(tree: Path, program: Path, store: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run([sys.executable, str(program), str(store)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_histories_of_both_versions_read_alike_and_keys_hit_across(tmp_path: Path) -> None:
    base = _base_tree(tmp_path)
    program = tmp_path / "chain_program.py"
    program.write_text(PROGRAM)
    store = tmp_path / "store"
    first = _run(base, program, store)  # main writes the history (and keys)
    assert first["cached"] == 0
    now = _run(HERE, program, store)  # this version upgrades it, hits every step
    assert now["cached"] == 5
    back = _run(base, program, store)  # main again: reads what this version wrote
    assert back["cached"] == 5
    again = _run(HERE, program, store)
    assert again["cached"] == 5
    # Every run, read by either version at any later point, reads back the same.
    for earlier, later in ((first, now), (now, back), (back, again)):
        for run_id, seen in earlier["runs"].items():
            assert later["runs"][run_id] == seen
    assert len(again["runs"]) == 4
