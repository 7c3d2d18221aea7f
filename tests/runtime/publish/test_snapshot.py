"""A published version runs the code that was published, in a fresh interpreter, whatever
became of the file since; and it shares the cache with the code it came from."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ductwork.cli import load_pipeline
from ductwork.runtime.publish import publish

LOAD = """
import json, sys
from ductwork.runtime.publish import load_pipeline
pipe, record = load_pipeline("train", store=sys.argv[1])
run = pipe.run(x=3, store=sys.argv[1], progress=False)
print(json.dumps({"outputs": run.outputs, "version": record["version"],
                  "keys": {s.id: s.key for s in run.steps.values()},
                  "cached": {s.id: s.cached for s in run.steps.values()}}))
"""


def _load_and_run(store: str) -> dict:
    out = subprocess.run([sys.executable, "-c", LOAD, store], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.mark.slow
@pytest.mark.parametrize("change", ["edited", "deleted"])
def test_the_snapshot_runs_the_published_code_after_the_file_changes(
        tmp_path, flow_file, change):
    store = str(tmp_path / "store")
    path = flow_file(10)
    pipe = load_pipeline(f"{path}:flow")
    publish(pipe, "train", store=store)
    original = pipe.run(x=3, store=store, progress=False)
    assert original.outputs == {"y": 31}
    if change == "edited":
        path.write_text(path.read_text().replace("FACTOR = 10", "FACTOR = 1000")
                        .replace("return x * FACTOR", "return -x"))
    else:
        path.unlink()
    loaded = _load_and_run(store)
    assert loaded["outputs"] == {"y": 31}  # the published behaviour, not the file's
    # The same code fingerprint, so the same keys: everything is a cache hit.
    assert loaded["keys"] == {s.id: s.key for s in original.steps.values()}
    assert loaded["cached"] == {"scale": True, "add": True}


@pytest.mark.slow
def test_a_second_version_runs_its_own_code(tmp_path, flow_file):
    store = str(tmp_path / "store")
    path = flow_file(10)
    publish(load_pipeline(f"{path}:flow"), "train", store=store)
    path.write_text(path.read_text().replace("FACTOR = 10", "FACTOR = 100"))
    # A fresh interpreter, as `ductwork publish` would be: the edited file is version 2.
    out = subprocess.run([sys.executable, "-m", "ductwork", "publish", f"{path}:flow",
                          "--name", "train", "--store", store], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0 and "version 2" in out.stdout, out.stderr
    assert _load_and_run(store)["outputs"] == {"y": 31}  # version 1 is still the default
    from ductwork.runtime.publish import set_default

    set_default("train", 2, store)
    assert _load_and_run(store)["outputs"] == {"y": 301}
