"""``examples/iris/run.py`` on every backend, as a user runs it: a real script, a real
``ductwork serve``, real containers and a real Dask cluster.

Each test runs the script in a subprocess on a fresh store, then reads that store's history
to check what the scenario promises: the dataset is registered, the second run reruns only
what ``c`` reaches, the metrics are recorded, and the run triggered over REST ran the
published version and reused the cached prep step.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import ductwork as dw

pytest.importorskip("sklearn", reason="the iris example needs scikit-learn: pip install "
                    "'ductwork[examples]'")

pytestmark = pytest.mark.slow

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "iris" / "run.py"
STEPS = {"prep", "train_logreg", "train_tree", "evaluate_logreg", "evaluate_tree", "compare"}


def run_script(tmp_path: Path, *args: str, timeout: float = 600) -> str:
    """Run the example on a store under ``tmp_path``; return its stdout (fail with its output)."""
    store = tmp_path / "store"
    env = {**os.environ, "DUCTWORK_HOME": str(tmp_path / "home"), "PYTHONUNBUFFERED": "1"}
    env.pop("DUCTWORK_TOKEN", None)
    root = str(Path(dw.__file__).resolve().parents[1])  # this checkout's ductwork, everywhere
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    done = subprocess.run([sys.executable, str(SCRIPT), "--store", str(store), *args],
                          cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, f"run.py {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def check_store(store: Path, backend: str) -> None:
    """What the scenario leaves in the store, whatever the backend."""
    versions = dw.Dataset.versions("iris", store=str(store))
    assert [v["version"] for v in versions] == [1] and versions[0]["files"] == 1

    history = [dw.get_run(r.id, store=str(store)) for r in dw.runs(store=str(store))]
    assert len(history) == 3 and all(r.status == "succeeded" for r in history)
    triggered, second, first = history  # newest first
    assert {r.backend for r in history} == {backend}

    assert set(first.steps) == STEPS and not any(s.cached for s in first.steps.values())
    assert first.outputs["best"] in ("logreg", "tree")
    assert 0.8 <= first.outputs["accuracy"] <= 1.0
    for kind in ("logreg", "tree"):
        metrics = first.steps[f"evaluate_{kind}"].metrics
        assert set(metrics) == {"accuracy", "f1_macro"} and 0.8 <= metrics["accuracy"] <= 1.0
    assert first.steps["compare"].metrics["best_accuracy"] == first.outputs["accuracy"]

    # c reaches the logistic regression only: the tree and the prep step stay cached.
    assert second.params["c"] == 0.3
    rerun = {s.id for s in second.steps.values() if not s.cached}
    why = "\n".join(f"{step_id}: {second.steps[step_id].why}" for step_id in sorted(rerun))
    assert {"train_logreg", "evaluate_logreg"} <= rerun, why
    # Everything else is served, on every backend: on Dask the driver (which never imported
    # scikit-learn) and any worker key the tree's classes alike (keys/classes.py).
    assert not rerun - {"train_logreg", "evaluate_logreg", "compare"}, why

    # The REST trigger ran the published snapshot with its parameters, on the same cache.
    assert triggered.params["c"] == 0.5 and triggered.params["max_depth"] == 2
    assert triggered.steps["prep"].cached
    assert not triggered.steps["train_tree"].cached  # max_depth changed


def test_iris_inline(tmp_path):
    out = run_script(tmp_path, "--backend", "inline")
    assert "published iris version 1" in out and "succeeded" in out.splitlines()[-1]
    check_store(tmp_path / "store", "inline")


def test_iris_process(tmp_path):
    run_script(tmp_path, "--backend", "process")
    check_store(tmp_path / "store", "process")


@pytest.mark.dask
def test_iris_dask(tmp_path, dask_cluster):
    # The script's runs go to the loopback cluster; `ductwork serve --backend dask` has no
    # scheduler option yet, so the triggered run starts a local cluster of its own.
    run_script(tmp_path, "--backend", "dask", "--address", dask_cluster)
    check_store(tmp_path / "store", "dask")


@pytest.mark.docker
def test_iris_docker(tmp_path, docker_engine):
    # The first run builds the scikit-learn image (tagged by the environment's hash, so
    # later runs, and later test sessions, reuse it).
    run_script(tmp_path, "--backend", "docker", timeout=900)
    check_store(tmp_path / "store", "docker")
