"""Run history for users: ``runs()``, ``get_run()``, and wiring runs to their stores.

A run read back from history loads its outputs from the artifact store on
first access and explains its steps against the run store, like a live run.
"""

from __future__ import annotations

import os

from ductwork.runtime.records.run import Run, StepRun
from ductwork.runtime.store.artifacts import open_store

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["attach", "existing_store", "get_run", "runs"]


def _loader(artifacts: Any) -> Any:
    from ductwork.runtime.store.refs import GatherRef

    def load(ref: Any) -> Any:
        if isinstance(ref, GatherRef):
            return [load(p) for p in ref.parts]
        return artifacts.get(ref)

    return load


def attach(run: Run, artifacts: Any, history: Any) -> Run:
    """Give a run (and its steps) a way to load outputs and explain cache decisions."""
    from ductwork.runtime.keys.cache_key import explain
    from ductwork.runtime.store.refs import map_refs

    load = _loader(artifacts)

    def why(record: StepRun) -> str:
        if record.map_index is None and f"{record.id}[0]" in run.steps:
            return _explain_map(run, record, why)
        before = record.started or run.started or 0.0
        previous = history.previous_step(run.pipeline, record.id, before, run.id)
        return explain(record, previous)

    for record in run.steps.values():
        if record._loader is None:
            record._loader = load
        record._explain = why
    if run._resolve is None:
        run._resolve = lambda result: map_refs(result, load)
    return run


def _explain_map(run: Run, record: StepRun, why: Any) -> str:
    """Summarize a map step: how many elements hit, and why the first that ran did."""
    elements = [s for s in run.steps.values()
                if s.map_index is not None and s.id.rsplit("[", 1)[0] == record.id]
    ran = [s for s in elements if not s.cached]
    if not elements:
        return "a map over an empty list: nothing to run"
    summary = (f"a map of {len(elements)} elements: {len(elements) - len(ran)} cache hits, "
               f"{len(ran)} ran")
    if not ran:
        return summary
    return f"{summary}; the first that ran, {ran[0].id}, {why(ran[0])}"


def existing_store(store: Any) -> Any:
    """The artifact store named, which must exist: a read-only command creates nothing."""
    artifacts = open_store(store)
    if artifacts.is_local and not os.path.isdir(artifacts.root):
        raise LookupError(
            f"No store exists at {artifacts.root}; nothing was read and nothing was created. "
            "Check the path given as store= / --store (or DUCTWORK_STORE; the default is "
            "./.ductwork in the current directory)."
        )
    return artifacts


def _history(store: Any) -> tuple[Any, Any]:
    """The artifact store and its history (None if it has none), creating nothing."""
    from ductwork.runtime.records.runstore import open_history

    artifacts = existing_store(store)
    return artifacts, open_history(artifacts)


def runs(store: Any = None, pipeline: str | None = None, limit: int | None = None) -> list[Run]:
    """Past runs, newest first (steps are not loaded; use ``get_run`` for those); none for a
    store that does not exist (which is not created)."""
    try:
        artifacts, history = _history(store)
    except LookupError:
        return []
    if history is None:
        return []
    return [attach(r, artifacts, history) for r in history.list_runs(pipeline, limit)]


def get_run(run_id: str, store: Any = None) -> Run:
    """Load one run with its steps; raise ``LookupError`` naming the id if unknown."""
    from ductwork.runtime.records.runstore import runstore_path

    artifacts, history = _history(store)
    run = history.get_run(run_id) if history is not None else None
    if run is None:
        raise LookupError(
            f"No run '{run_id}' in {runstore_path(artifacts)}. `ductwork runs` lists the runs "
            "there; pass store= (or set DUCTWORK_STORE) if the run used another store."
        )
    return attach(run, artifacts, history)
