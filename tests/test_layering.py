"""Dependencies flow one way: dsl <- runtime <- backends; import stays light."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "ductwork"
ORDER = {"dsl": 0, "runtime": 1, "backends": 2}


def _top_level_imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    names = []
    for node in tree.body:  # module level only: lazy imports inside functions are allowed
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
        elif isinstance(node, ast.If):  # `if TYPE_CHECKING:` blocks do not run
            continue
    return names


@pytest.mark.parametrize("layer", sorted(ORDER))
def test_layers_import_only_downward(layer):
    for path in (PACKAGE / layer).rglob("*.py"):
        for name in _top_level_imports(path):
            parts = name.split(".")
            if parts[0] == "ductwork" and len(parts) > 1 and parts[1] in ORDER:
                assert ORDER[parts[1]] <= ORDER[layer], (
                    f"{path.relative_to(PACKAGE)} imports {name}: layer '{layer}' may only "
                    f"import from layers below it"
                )


def test_dsl_imports_nothing_upward_even_lazily_except_run():
    for path in (PACKAGE / "dsl").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                ("ductwork.runtime", "ductwork.backends")
            ):
                assert path.name == "pipeline.py" and node.module == "ductwork.runtime.runner", (
                    f"{path.name} imports {node.module}"
                )


def test_runtime_never_imports_a_backend_even_lazily():
    # The registry names backends by dotted path; nothing else in runtime may reach up.
    for path in (PACKAGE / "runtime").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom | ast.Import):
                names = [node.module or ""] if isinstance(node, ast.ImportFrom) else [
                    a.name for a in node.names]
                assert not any(n.startswith("ductwork.backends") for n in names), (
                    f"{path.relative_to(PACKAGE)} imports {names}")


def test_import_ductwork_loads_no_heavy_module():
    code = (
        "import sys, ductwork\n"
        "heavy = ['networkx', 'cloudpickle', 'fsspec', 'numpy', 'pandas', 'docker', 'dask',\n"
        "         'distributed', 'azure', 'adlfs', 'starlette', 'uvicorn', 'rich', 'sqlite3']\n"
        "print(','.join(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
