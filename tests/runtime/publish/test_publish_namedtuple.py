"""A published pipeline keys its steps as the project it came from does, classes included.

The project's modules are imported; the published snapshot is unpickled, its user
modules by value and not imported at all. A class -- a ``NamedTuple`` a step returns, a
``NamedTuple`` or ``dataclass`` passed between steps, a class whose statement names
its base -- must fingerprint the same either way, or every triggered run misses the
cache the user's own runs filled. A triggered run is the server's child process
(``python -m ductwork.server.child``), run here by hand with the spec on stdin.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

import ductwork as dw
from ductwork.cli import load_pipeline, main
from ductwork.runtime.publish import publish
from ductwork.runtime.records.run import new_run_id

SHAPES = '''
from dataclasses import dataclass
from typing import NamedTuple


class Point(NamedTuple):
    """Only classes here: no function of this module travels in the snapshot."""
    x: int
    y: int = 0


class Base:
    scale = 2


@dataclass
class Box:
    w: int
'''

FLOW = '''
from typing import NamedTuple

from ductwork import pipeline, step
from {shapes} import Base, Box, Point


class Split(NamedTuple):
    train: list
    test: list


class Model(Base):
    def predict(self, v):
        return v * self.scale


@step
def split(n: int) -> Split:
    rows = list(range(n))
    return Split(rows[: n // 2], rows[n // 2 :])


@step
def total(part: list) -> int:
    return sum(part)


@step
def shapes(n: int) -> dict:
    return {{"points": [Point(i, i) for i in range(n)], "box": Box(n), "model": Model()}}


@step
def measure(found: dict) -> int:
    points = sum(p.x + p.y for p in found["points"])
    return points + found["box"].w + found["model"].predict(1)


@pipeline
def flow(n: int = 6):
    s = split(n)
    return {{"a": total(s.train), "b": total(s.test), "m": measure(shapes(n))}}
'''

STEPS = ("split", "total", "total-2", "shapes", "measure")


def _write(folder: Path) -> tuple[Path, Path]:
    tag = uuid.uuid4().hex[:8]
    shapes = folder / f"shapes_{tag}.py"
    shapes.write_text(textwrap.dedent(SHAPES))
    flow = folder / f"ntflow_{tag}.py"
    flow.write_text(textwrap.dedent(FLOW.format(shapes=shapes.stem)))
    return flow, shapes


def _trigger(store: str, name: str, folder: Path, n: int = 6) -> str:
    """Run the published default version as the server's child process does."""
    run_id = new_run_id()
    spec = {"store": store, "backend": "inline", "pipeline": name, "version": None,
            "parameters": {"n": n}}
    # Not in the project's folder: the snapshot must not need the project's files.
    out = subprocess.run([sys.executable, "-m", "ductwork.server.child", run_id],
                         input=json.dumps(spec), capture_output=True, text=True, timeout=180,
                         cwd=folder)
    assert out.returncode == 0, out.stderr
    return run_id


def _why(capsys, store: str, run_id: str, step: str) -> str:
    capsys.readouterr()
    assert main(["why", run_id, step, "--store", store]) == 0
    return capsys.readouterr().out


@pytest.mark.slow
def test_a_triggered_run_hits_the_cache_the_project_filled(tmp_path, capsys):
    store = str(tmp_path / "store")
    project = tmp_path / "project"
    project.mkdir()
    flow, _ = _write(project)
    pipe = load_pipeline(f"{flow}:flow")
    first = pipe.run(store=store, progress=False)
    assert first.outputs == {"a": 3, "b": 12, "m": 30 + 6 + 2}
    publish(pipe, "nt", store=store)

    run_id = _trigger(store, "nt", tmp_path)
    run = dw.get_run(run_id, store=store)
    assert run.outputs == first.outputs
    whys = {s: _why(capsys, store, run_id, s) for s in STEPS}
    assert {s: run.steps[s].cached for s in STEPS} == dict.fromkeys(STEPS, True), whys
    assert all("cache hit" in text for text in whys.values()), whys
    assert {s: run.steps[s].key for s in STEPS} == {s: first.steps[s].key for s in STEPS}

    # And the other way round: the project's next run reuses what a triggered run made.
    second = pipe.run(n=7, store=store, progress=False)
    assert not second.steps["split"].cached
    again = _trigger(store, "nt", tmp_path, n=7)
    assert dw.get_run(again, store=store).steps["split"].cached


def _publish_edited(store: str, flow: Path) -> int:
    """Publish the file as it is now from a fresh interpreter, make it the default."""
    out = subprocess.run([sys.executable, "-m", "ductwork", "publish", f"{flow}:flow",
                          "--name", "nt", "--store", store, "--json"],
                         capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr
    version = json.loads(out.stdout)["version"]
    from ductwork.runtime.publish import set_default

    set_default("nt", version, store)
    return version


@pytest.mark.slow
@pytest.mark.parametrize(("edit", "missed", "said"), [
    # A NamedTuple field's annotation: the step returning it reruns (its outputs do not
    # change, so the steps after it stay cached).
    ("test: list", "split", "class {flow}.Split changed"),
    # A field default of a NamedTuple in a module of classes only, whose values pass between
    # steps: the step making them and the step receiving them rerun.
    ("y: int = 0", "shapes,measure", "class {shapes}.Point"),
    # The body of a step returning a NamedTuple.
    ("rows = list(range(n))", "split", "{flow}.split changed"),
])
def test_an_edit_published_again_still_misses(tmp_path, capsys, edit, missed, said):
    store = str(tmp_path / "store")
    project = tmp_path / "project"
    project.mkdir()
    flow, shapes = _write(project)
    pipe = load_pipeline(f"{flow}:flow")
    pipe.run(store=store, progress=False)
    publish(pipe, "nt", store=store)
    assert all(dw.get_run(_trigger(store, "nt", tmp_path), store=store).steps[s].cached
               for s in STEPS)

    edited = {"test: list": "test: list[int]", "y: int = 0": "y: int = 5",
              "rows = list(range(n))": "rows = [i for i in range(n)]"}[edit]
    for path in (flow, shapes):
        path.write_text(path.read_text().replace(edit, edited))
    assert _publish_edited(store, flow) == 2
    run_id = _trigger(store, "nt", tmp_path)
    run = dw.get_run(run_id, store=store)
    ran = {s for s in STEPS if not run.steps[s].cached}
    assert ran == set(missed.split(",")), {s: _why(capsys, store, run_id, s) for s in ran}
    for step in ran:
        assert said.format(flow=flow.stem, shapes=shapes.stem) in _why(capsys, store, run_id,
                                                                        step)
