"""A lab for cache-truth tests: a user project in a folder, run in fresh interpreters.

Each test writes modules, runs a pipeline in a subprocess (``python pipe.py``,
``ductwork run``, or an import), edits one file and runs again; ``report``
gives each step's status and ``why`` as the run left them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

#: Appended to a pipeline module: ``python pipe.py`` runs ``p`` and prints the report.
MAIN = """

if __name__ == "__main__":
    import _report
    _report.show(p.run())
"""

REPORT = '''
import json


def show(run):
    """Print each step's status and why, then the pipeline's outputs, as JSON."""
    steps = {sid: {"cached": s.cached, "status": str(s.status), "why": s.why}
             for sid, s in run.steps.items()}
    print("REPORT " + json.dumps({"steps": steps, "outputs": repr(run.outputs)}))
'''


class Lab:
    """A user project in ``root/src`` with its store in ``root/store``."""

    def __init__(self, root: Path) -> None:
        self.src, self.store = root / "src", root / "store"
        self.src.mkdir()
        self.write("_report", REPORT)

    def write(self, name: str, source: str, main: bool = False) -> Path:
        """Write module ``name``; with ``main``, it runs ``p`` when started as a script."""
        path = self.src / f"{name}.py"
        path.write_text(textwrap.dedent(source) + (MAIN if main else ""))
        return path

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DUCTWORK_")}
        env.update(DUCTWORK_STORE=str(self.store), PYTHONDONTWRITEBYTECODE="1", **extra)
        env.pop("PYTHONPATH", None)
        return env

    def run(self, *args: str, **env: str) -> dict[str, Any]:
        """Run ``python *args`` in the project folder; return the printed report."""
        proc = subprocess.run(
            [sys.executable, *args],
            cwd=self.src,
            env=self.env(**env),
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        lines = [x for x in proc.stdout.splitlines() if x.startswith("REPORT ")]
        assert lines, proc.stdout + proc.stderr
        return json.loads(lines[-1][7:])

    def script(self, module: str = "pipe", **env: str) -> dict[str, Any]:
        """``python pipe.py``."""
        return self.run(f"{module}.py", **env)

    def imported(self, module: str = "pipe", **env: str) -> dict[str, Any]:
        """``python -c "import pipe; pipe.p.run()"``."""
        code = f"import _report, {module}; _report.show({module}.p.run())"
        return self.run("-c", code, **env)

    def cli(self, module: str = "pipe", **env: str) -> dict[str, Any]:
        """``ductwork run pipe.py:p``, then the report read from the run's history."""
        code = (
            "import sys, _report\n"
            "from ductwork.cli import main\n"
            "from ductwork.runtime.records.history import get_run, runs\n"
            f"code = main(['run', '{module}.py:p'])\n"
            "assert not code, code\n"
            "_report.show(get_run(runs(limit=1)[0].id))\n"
        )
        return self.run("-c", code, **env)


def ran(report: dict[str, Any]) -> set[str]:
    """The steps that ran (not served from the cache)."""
    return {sid for sid, s in report["steps"].items() if not s["cached"]}


def why(report: dict[str, Any], step: str) -> str:
    """What ``why`` said of ``step``."""
    return str(report["steps"][step]["why"])
