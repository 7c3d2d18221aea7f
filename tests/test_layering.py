"""Dependencies flow one way (dsl <- runtime <- backends, and the runtime's subpackages in
their order), with no import cycles: the import-linter contracts in pyproject.toml, which
read every import, those inside functions included. And `import ductwork` stays light."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT = Path(sys.executable).with_name("lint-imports")


def _lint(cwd: Path) -> subprocess.CompletedProcess[str]:
    if not LINT.exists():
        pytest.skip(f"import-linter is not installed beside {sys.executable}")
    return subprocess.run([str(LINT), "--no-cache"], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env={"PYTHONPATH": str(cwd), "PATH": "/usr/bin:/bin"})


def test_the_import_contracts_hold():
    out = _lint(ROOT)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]


@pytest.mark.parametrize(("module", "line", "broken"), [
    # an upward import between layers, even inside a function
    ("ductwork/dsl/graph.py", "def _up():\n    from ductwork.runtime import runner\n",
     "Layers: dsl <- runtime"),
    # a subpackage reaching above its place in the runtime
    ("ductwork/runtime/keys/hashing.py",
     "def _up():\n    from ductwork.runtime.engine import node\n", "runtime's subpackages"),
    # a cycle between two modules of one subpackage
    ("ductwork/runtime/engine/node.py",
     "def _cycle():\n    from ductwork.runtime.engine import loop\n", "No import cycles"),
])
def test_the_contracts_catch_an_upward_import_or_a_cycle(tmp_path, module, line, broken):
    shutil.copytree(ROOT / "ductwork", tmp_path / "ductwork")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    with open(tmp_path / module, "a") as f:
        f.write("\n\n" + line)
    out = _lint(tmp_path)
    assert out.returncode != 0
    assert f"{broken}" in out.stdout and "BROKEN" in out.stdout


def test_import_ductwork_loads_no_heavy_module():
    code = (
        "import sys, ductwork\n"
        "heavy = ['networkx', 'cloudpickle', 'fsspec', 'numpy', 'pandas', 'docker', 'dask',\n"
        "         'distributed', 'azure', 'adlfs', 'starlette', 'uvicorn', 'rich', 'sqlite3',\n"
        "         'pydantic', 'jsonschema']\n"
        "print(','.join(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
