"""``Pipeline.plan``: what a run would do, and why, without running any step code.

The plan is the walk the Dask driver takes before it hands a graph over
(``hits.key_known``), with every element of a map keyed: in call order, each
node's key is computed by ``node.basis_of`` and ``node.key_of`` from what is
known -- constants, and the stored outputs of nodes that are cached -- and looked
up with ``node.lookup``. So a step is

- ``"cached"``: its key is in the store (a map: every element's);
- ``"run"``: its key is known and not stored, it is forced (``regenerate``), caching
  is off, or it cannot be keyed (the run fails it);
- ``"pending"``: an input is the output of a step that is not cached, so its key is
  known only once that step has run (it may still hit then: early cutoff).

The environment part of a key comes from the backend a run would use
(``backend.environment``), so planning for ``backend="docker"`` builds (or finds)
the step's image, and ``backend="dask"`` connects to (or starts) a cluster; the
default, inline, costs nothing. Stored values are read (a map over a cached list);
step code never runs. ``why`` is what ``ductwork why`` would say afterwards
(``cache_key.explain`` against the latest recorded run of the step).
"""

from __future__ import annotations

import time
from collections.abc import Collection

from ductwork.dsl.trace import Plan
from ductwork.runtime.engine.backend import Backend, BackendError, open_backends
from ductwork.runtime.engine.hits import Call, Keyed, is_hit, key_known
from ductwork.runtime.engine.job import resolve_refs
from ductwork.runtime.engine.node import FORCED_NOTE, CacheKeyError, basis_of

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

RUN, CACHED, PENDING = "run", "cached", "pending"


class StepPlan(tuple):
    """``(status, why)`` of one step, with ``.keys``: the key of each call plan computed
    (the node's, or its map elements'), by call id."""

    keys: dict[str, str]

    def __new__(cls, status: str, why: str, keys: dict[str, str] | None = None) -> StepPlan:
        """A plan entry; compares equal to the plain tuple ``(status, why)``."""
        made = super().__new__(cls, (status, why))
        made.keys = dict(keys or {})
        return made

    def __getnewargs__(self) -> tuple[str, str, dict[str, str]]:  # type: ignore[override]
        """What pickle and copy rebuild an entry from: its keys are kept."""
        return self.status, self.why, self.keys

    @property
    def status(self) -> str:
        """``"cached"``, ``"run"`` or ``"pending"``."""
        return str(self[0])

    @property
    def why(self) -> str:
        """What changed, or what the step waits for."""
        return str(self[1])


def plan_steps(plan: Plan, store: Any, backend: str = "inline",
               force: Collection[str] = frozenset(), options: dict[str, Any] | None = None
               ) -> dict[str, StepPlan]:
    """``{step id: StepPlan}`` for a traced plan, in call order; no step code runs."""
    from ductwork.runtime.records.runstore import open_history
    from ductwork.runtime.store.artifacts import open_store

    artifacts = open_store(store)
    backends = open_backends(plan, backend, artifacts, **(options or {}))
    try:
        bases, broken = _bases(plan, backends)
    finally:
        for made in backends.values():
            made.close()
    memo: dict[str, Any] = {}
    keyed = key_known(plan, artifacts, bases, set(broken), lambda value: resolve_refs(
        value, artifacts, memo), forced=force, every=True)
    why = _Why(plan.name, open_history(artifacts), artifacts.url)
    steps = {}
    for nid, inv in plan.invocations.items():
        inputs_known = all(dep in keyed and is_hit(keyed[dep]) for dep in inv.deps)
        if inv.step.options.cache is False:
            steps[nid] = StepPlan(RUN, why.ran(nid, None, None, None))
        elif nid in keyed:
            steps[nid] = _decided(nid, keyed[nid], why, nid in force)
        elif nid in broken and inputs_known:
            steps[nid] = StepPlan(RUN, f"it cannot be keyed, so the run fails it: {broken[nid]}")
        # A run takes a node's basis only once its inputs exist (an upstream step may write
        # a hash_paths file), so an error in it is not the node's until then: pending.
        elif nid in force:
            waiting = _waits_for(inv.deps, keyed)
            verb = "have" if "," in waiting else "has"
            steps[nid] = StepPlan(RUN, f"{FORCED_NOTE}; its key is known once {waiting} "
                                       f"{verb} run")
        else:
            steps[nid] = StepPlan(PENDING, f"waits for {_waits_for(inv.deps, keyed)} (not "
                                           "cached), so its inputs are not known yet")
    return steps


def _bases(plan: Plan, backends: dict[str | None, Backend]
           ) -> tuple[dict[str, Any], dict[str, str]]:
    """Each cached node's key basis, and why a node has none when computing it failed."""
    bases: dict[str, Any] = {}
    broken: dict[str, str] = {}
    for nid, inv in plan.invocations.items():
        compute = inv.step.options.compute
        backend = backends[compute if compute in backends else None]
        try:
            environment = backend.environment(inv.step) if inv.step.options.cache else None
            basis = basis_of(inv.step, inv.is_map, environment)
        except (CacheKeyError, BackendError) as exc:
            broken[nid] = str(exc)
            continue
        if basis is not None:
            bases[nid] = basis
    return bases, broken


def _waits_for(deps: Collection[str], keyed: dict[str, Keyed]) -> str:
    """The direct upstream steps that are not cached, named."""
    waiting = [dep for dep in deps if not (dep in keyed and is_hit(keyed[dep]))]
    return ", ".join(f"'{dep}'" for dep in waiting)


def _decided(nid: str, keyed: Keyed, why: _Why, forced: bool) -> StepPlan:
    """The plan of a node whose key (or map elements' keys) is known."""
    if isinstance(keyed, Call):
        keys = {keyed.sid: keyed.key} if keyed.key else {}
        if keyed.error is not None:
            return StepPlan(RUN, f"it cannot be keyed, so the run fails it: {keyed.error}")
        if keyed.hit is not None:
            return StepPlan(CACHED, why.hit(keyed.key, keyed.hit), keys)
        return StepPlan(RUN, why.ran(nid, keyed.key, keyed.components, forced), keys)
    keys = {call.sid: call.key for call in keyed if call.key}
    if not keyed:
        return StepPlan(RUN, "a map over an empty list: nothing to run")
    failed = next((call for call in keyed if call.error is not None), None)
    if failed is not None:
        return StepPlan(RUN, f"{failed.sid} cannot be keyed, so the run fails it: "
                             f"{failed.error}", keys)
    ran = [call for call in keyed if call.hit is None]
    summary = (f"a map of {len(keyed)} elements: {len(keyed) - len(ran)} cache hits, "
               f"{len(ran)} to run")
    if not ran:
        return StepPlan(CACHED, f"{summary}; {why.hit(keyed[0].key, keyed[0].hit)}", keys)
    first = ran[0]
    return StepPlan(RUN, f"{summary}; the first to run, {first.sid}: "
                         f"{why.ran(first.sid, first.key, first.components, forced)}", keys)


class _Why:
    """What ``ductwork why`` would say of a planned call, from the run history."""

    def __init__(self, pipeline: str, history: Any, store_url: str) -> None:
        self.pipeline, self.history, self.store_url = pipeline, history, store_url
        self.now = time.time()

    def hit(self, key: str | None, refs: dict[str, Any] | None) -> str:
        """Why a call is cached: the run that made its stored outputs, when history has it
        (the run a hit would name as ``cached_from``)."""
        from ductwork.runtime.records.producers import find_producer

        producer = find_producer(self.history, self.store_url, key, refs or {})
        return f"cache hit: stored by run {producer.run_id}" if producer else "cache hit"

    def ran(self, sid: str, key: str | None, components: dict[str, str] | None,
            forced: bool | None) -> str:
        """Why a call runs: ``cache_key.explain`` against the latest recorded run of it."""
        from ductwork.runtime.keys.cache_key import explain
        from ductwork.runtime.records.run import StepRun

        record = StepRun(sid, sid, key=key, components=components,
                         note=FORCED_NOTE if forced else None)
        previous = (self.history.previous_step(self.pipeline, sid, self.now, "")
                    if self.history is not None and key is not None else None)
        # explain speaks of a run that happened ("ran: ..."); the status says it is to come.
        return explain(record, previous).removeprefix("ran: ")


def format_plan(steps: dict[str, StepPlan]) -> str:
    """The plan as a table for a terminal: step, status, why (later lines of why indented)."""
    width = max((len(sid) for sid in steps), default=4) + 2
    lines = [f"{'step':<{width}}{'status':<9}why"]
    for sid, (status, why) in steps.items():
        first, *rest = why.splitlines() or [""]
        lines.append(f"{sid:<{width}}{status:<9}{first}")
        lines.extend(f"{'':<{width + 9}}{line.strip()}" for line in rest)
    return "\n".join(lines)
