"""``python -m ductwork.server.studio.plan_child``: the plan of a published pipeline, as JSON.

Planning traces the pipeline, which runs its body -- the user's code -- so, like a run,
it happens in a child process and never in the server. The spec comes as JSON on
stdin (``{"store", "pipeline", "version", "parameters"}``: a store URL may carry a
credential); the answer is ``{"steps": {id: [status, why]}}`` on stdout, or
``{"error": message}`` with exit status 1.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

__all__ = ["main", "plan_in_child"]


def main() -> int:
    """Plan the pipeline stdin describes; print the answer as JSON."""
    spec = json.loads(sys.stdin.read())
    try:
        from ductwork.runtime.publish import load_pipeline
        from ductwork.runtime.runner import plan_pipeline

        pipeline, _ = load_pipeline(spec["pipeline"], spec["version"], spec["store"])
        steps = plan_pipeline(pipeline, spec["parameters"], store=spec["store"])
    except Exception as exc:
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}))
        return 1
    print(json.dumps({"steps": {sid: [p[0], p[1]] for sid, p in steps.items()}}))
    return 0


def plan_in_child(store: str, pipeline: str, version: int, parameters: dict[str, Any],
                  timeout: float = 120.0) -> dict[str, Any]:
    """The plan of a published pipeline, computed in a child process."""
    spec = json.dumps({"store": store, "pipeline": pipeline, "version": version,
                       "parameters": parameters})
    try:
        done = subprocess.run([sys.executable, "-m", "ductwork.server.studio.plan_child"],
                              input=spec, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"planning took over {timeout:.0f} s"}
    lines = done.stdout.strip().splitlines()
    try:
        return json.loads(lines[-1]) if lines else {"error": done.stderr.strip()[-500:]}
    except ValueError:
        return {"error": done.stderr.strip()[-500:] or "the planner said nothing"}


if __name__ == "__main__":
    sys.exit(main())
