"""A rerun whose inputs all come from the cache is served from it, on a fresh driver and a
fresh Dask cluster: the classes recorded with an upstream output key the same whether or
not the process that keys the consumer ever imported their module.

The first run fits in a worker (which imports the model's module, then keys the consumer);
the second run is a new script process with a new cluster, so the consumer is keyed by
processes that never imported it -- the driver serving the hits, then a fresh worker.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import ductwork as dw

pytestmark = pytest.mark.slow

ROOT = str(Path(dw.__file__).resolve().parents[1])

SCRIPT = """
import sys
import ductwork as dw

@dw.step
def fit(seed: int):
    from dkeypkg.models import Model  # imported where the step runs, as sklearn is

    return Model(seed)

@dw.step
def score(model, x: int) -> int:
    return model.predict(x)

@dw.pipeline
def p(x: int = 1):
    return score(fit(0), x)

if __name__ == "__main__":
    backend, store = sys.argv[1], sys.argv[2]
    options = {"max_workers": 1} if backend == "dask" else {}
    run = p.run(backend=backend, store=store, **options)
    print({sid: s.why for sid, s in run.steps.items()})
"""


def install(site: Path) -> None:
    """A package laid out as pip installs it (with its dist-info) under ``site``."""
    (site / "dkeypkg").mkdir(parents=True)
    (site / "dkeypkg" / "__init__.py").write_text('__version__ = "1.0"\n')
    (site / "dkeypkg" / "models.py").write_text(textwrap.dedent("""
        class Model:
            def __init__(self, seed):
                self.seed = seed

            def predict(self, x):
                return x + self.seed
    """))
    info = site / "dkeypkg-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: dkeypkg\nVersion: 1.0\n")
    (info / "top_level.txt").write_text("dkeypkg\n")


@pytest.mark.parametrize("backend", ["inline", "dask"])
def test_a_rerun_on_a_fresh_process_serves_the_consumer_of_an_installed_class(
        tmp_path, backend):
    if backend == "dask":
        pytest.importorskip("distributed")
    site = tmp_path / "lib" / "site-packages"
    install(site)
    script = tmp_path / "pipe.py"
    script.write_text(SCRIPT)
    store = str(tmp_path / "store")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join((ROOT, str(site))),
           "DUCTWORK_HOME": str(tmp_path / "home")}
    for _ in range(2):  # each run a new script process (and a new local cluster)
        done = subprocess.run([sys.executable, str(script), backend, store], cwd=tmp_path,
                              env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
    first, second = (dw.get_run(r.id, store=store) for r in reversed(dw.runs(store=store)))
    assert not any(s.cached for s in first.steps.values())
    why = "\n".join(f"{sid}: {s.why}" for sid, s in second.steps.items())
    assert all(s.cached for s in second.steps.values()), why
