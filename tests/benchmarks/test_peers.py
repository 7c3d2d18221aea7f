"""The peer programs of benchmarks/peers/ still run and agree, at tiny sizes (not their speed).

Each framework's W1-W3 program runs once cold and once warm over the same directory, in the
venv ``benchmarks/peers/run.py`` made for it; a peer whose venv is not there is skipped (make
them with ``python benchmarks/peers/run.py --quick``). ductwork's program runs with this
interpreter and this checkout.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PEERS_DIR = ROOT / "benchmarks" / "peers"
TINY = {"w1": 3, "w2": 3, "w3": 4096}


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"peers_{name}", PEERS_DIR / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


run = load("run")


def test_hamilton_chain_module_is_generated():
    assert (PEERS_DIR / "hamilton_w1_nodes.py").read_text() == load("hamilton_w1").source()


def framework(name: str) -> run.Framework:
    if name == "ductwork":
        python = Path(sys.executable)
        env = run.framework_env(python)
        env["PYTHONPATH"] = str(ROOT)  # this checkout's ductwork
    elif name == "floor":
        python = Path(sys.executable)
        env = run.base_env()
    else:
        venv = run.peer_venv_path(name)
        if not run.peer_ready(venv, name):
            pytest.skip(f"no {name} venv at {venv}: run `python benchmarks/peers/run.py "
                        "--quick` once to install the peers")
        python = venv / "bin" / "python"
        env = run.framework_env(python)
    return run.Framework(name, f"{name}_prog.py", python, "", env)


@pytest.mark.slow
@pytest.mark.parametrize("workload", ["w1", "w2", "w3"])
@pytest.mark.parametrize("name", ["ductwork", "hamilton", "flytekit", "kfp"])
def test_program_runs_cold_then_warm_from_its_cache(name, workload, tmp_path):
    fw = framework(name)
    cwd = run.scratch_project(tmp_path)
    cells = tmp_path / "cells"
    cells.mkdir()
    # pair() checks the result of both runs and that the warm one was served by the cache
    programs = run.copy_programs(tmp_path / "programs")  # .pyc files go there, not here
    cold, warm = run.pair(fw, programs, cwd, workload, TINY[workload], cells)
    assert cold.info.get("cached", 0) == 0, cold.info
    assert warm is not None and warm.info["cached"] > 0, warm.info


@pytest.mark.slow
def test_floor_program(tmp_path):
    cells = tmp_path / "cells"
    cells.mkdir()
    programs = run.copy_programs(tmp_path / "programs")
    cold, warm = run.pair(framework("floor"), programs, tmp_path, "w3", TINY["w3"], cells)
    assert cold.info["result"] == TINY["w3"] and warm is None
