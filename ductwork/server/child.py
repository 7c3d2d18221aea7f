"""``python -m ductwork.server.child RUN_ID``: run one queued run, then exit.

The server starts one such process per run, so a step that crashes, leaks or
hangs cannot take the server down, and user code is unpickled here, never in the
server. The run id is the argument (so the server can tell its children apart);
the rest comes as JSON on stdin, not argv, because a store URL may carry a
credential: ``{"store", "backend", "pipeline", "version", "parameters"}``.

The published snapshot (``load_pipeline``) runs with that run id on the given
backend and store, recorded in the store's run history like any run; while it runs, its
step states and what its steps print are written where the studio reads them
(``studio.live``). SIGINT is Ctrl-C: the runner records the run ``cancelled``. Exit
status: 0 succeeded, 1 failed, 130 cancelled, 2 when the run could not start (the last
line of stderr says why).
"""

from __future__ import annotations

import json
import sys


def main(argv: list[str]) -> int:
    """Run the pipeline stdin describes under the run id ``argv[0]``."""
    if len(argv) != 1:
        print("usage: python -m ductwork.server.child RUN_ID < spec.json", file=sys.stderr)
        return 2
    run_id = argv[0]
    spec = json.loads(sys.stdin.read())
    from ductwork.dsl.core import PipelineFailed
    from ductwork.runtime.publish import load_pipeline
    from ductwork.runtime.runner import run_pipeline
    from ductwork.server.studio.live import live_progress

    try:
        pipeline, _ = load_pipeline(spec["pipeline"], spec["version"], spec["store"])
    except Exception as exc:
        print(f"{type(exc).__name__}: could not load version {spec['version']} of "
              f"{spec['pipeline']!r}: {exc}", file=sys.stderr)
        return 2
    live = live_progress(spec["store"], run_id)  # the studio's live run and step pages
    try:
        run_pipeline(pipeline, spec["parameters"], backend=spec["backend"],
                     store=spec["store"], run_id=run_id, progress=live, logs=str(live.logs))
    except PipelineFailed as exc:
        print(str(exc).splitlines()[0], file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("cancelled", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
