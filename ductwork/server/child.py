"""``python -m ductwork.server.child RUN_ID``: run one queued run, then exit.

The server runs each run in a process of its own -- forked from its zygote
(``zygote``), or started as this module when the zygote is not there -- so a step
that crashes, leaks or hangs cannot take the server down, and user code is
unpickled here, never in the server. The run id is the argument (so the server can
tell its children apart); the rest comes as JSON on stdin, not argv, because a
store URL may carry a credential: ``{"store", "backend", "options", "pipeline",
"version", "parameters", "state", "claim"}`` (``options``: the backend's run options
the server was started with, such as a Dask scheduler's address).

Before anything else the process registers in the server's queue: it writes its
pid on the run's row, only if the row still carries the ``claim`` the launcher
gave it. A server restarted after dying between starting a process and recording
its pid re-queues the row under a new claim, so a late process finds its claim
gone and exits without running (status 3): a run is never started twice.

The published snapshot (``load_pipeline``) runs with that run id on the given
backend and store, recorded in the store's run history like any run; while it runs, its
step states and what its steps print are written where the studio reads them
(``studio.live``). SIGINT is Ctrl-C: the runner records the run ``cancelled``. Exit
status: 0 succeeded, 1 failed, 130 cancelled, 2 when the run could not start (the last
line of stderr says why), 3 when another process owns the run.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

__all__ = ["main", "preload", "process_start", "run"]

NOT_OURS = 3


def process_start(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot, from /proc), or None if it is
    gone or this system has no /proc; with the pid, it names one process for good."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()
    if len(fields) < 20 or fields[0] == "Z":
        return None  # a zombie has ended: only its parent has not collected it yet
    return fields[19]


# What a run on the inline backend and a local store imports beyond the runner's own
# module (found with a profile of a first run): in the zygote they are imported once.
_PRELOAD = (
    "ductwork.dsl.core", "ductwork.runtime.publish.catalog", "ductwork.runtime.runner",
    "ductwork.server.queue", "ductwork.server.state", "ductwork.backends.inline",
    "ductwork.runtime.engine.loop", "ductwork.runtime.engine.shipping",
    "ductwork.runtime.records.history", "ductwork.runtime.records.runstore",
    "ductwork.runtime.records.provenance", "ductwork.runtime.store.files",
    "ductwork.runtime.ui.progress", "fsspec", "fsspec.implementations.local", "cloudpickle",
    "blake3", "asyncio",
)


def preload() -> None:
    """Import what a run needs, ahead of any run (the zygote does this once)."""
    import importlib

    for name in _PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError:
            continue  # an optional dependency this install lacks: the run says so itself


def _register(run_id: str, spec: dict[str, Any]) -> bool:
    """Write this process's pid on the run's row if the row still has our claim."""
    if "state" not in spec or "claim" not in spec:
        return True  # run by hand, outside a server
    from ductwork.server import queue
    from ductwork.server.state import ServerState

    state = ServerState(spec["state"])
    try:
        return queue.register(state, run_id, spec["claim"], os.getpid(),
                              process_start(os.getpid()))
    finally:
        state.close()


def run(run_id: str, spec: dict[str, Any]) -> int:
    """Run the pipeline ``spec`` describes under ``run_id``; answer the exit status."""
    try:
        if not _register(run_id, spec):
            print(f"run {run_id} belongs to another process of a restarted server; "
                  "not starting it twice", file=sys.stderr)
            return NOT_OURS
    except Exception as exc:
        print(f"{type(exc).__name__}: could not register run {run_id} in the server's "
              f"queue: {exc}", file=sys.stderr)
        return 2
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
                     store=spec["store"], run_id=run_id, progress=live, logs=str(live.logs),
                     **spec.get("options", {}))
    except PipelineFailed as exc:
        print(str(exc).splitlines()[0], file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("cancelled", file=sys.stderr)
        return 130
    return 0


def main(argv: list[str]) -> int:
    """Run the pipeline stdin describes under the run id ``argv[0]``."""
    if len(argv) != 1:
        print("usage: python -m ductwork.server.child RUN_ID < spec.json", file=sys.stderr)
        return 2
    try:
        spec = json.loads(sys.stdin.read())
    except ValueError:
        # The server stopped before it sent the spec: nothing was asked of this process.
        print(f"run {argv[0]}: no spec on stdin; not started", file=sys.stderr)
        return 2
    return run(argv[0], spec)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
