"""Serving cache hits on the driver before a graph goes to a cluster.

A rerun whose steps are all cached should cost what it costs inline -- a key and
an index lookup per step -- not a round of tasks on a cluster. So before the
graph is handed over, the driver computes, in call order, the key of every node
whose inputs it already knows (constants, and outputs of nodes it has just
served) and looks it up; the hits are finished here and the rest go to the
cluster, where each task computes its key again (the same functions on the same
inputs: the same key). It stops at a node's first miss, so a cold run pays one
lookup per chain, not one per node; a ``map`` is served only when every
element hits, and its first miss ends the attempt.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ductwork.dsl.trace import Invocation, Plan, substitute
from ductwork.runtime.engine.node import (
    CacheKeyError,
    NotAList,
    element_id,
    key_of,
    list_length,
    lookup,
    map_items,
)
from ductwork.runtime.engine.tasks import NodeResult, upstream_refs
from ductwork.runtime.status import Status
from ductwork.runtime.store.refs import GatherRef


def serve_hits(plan: Plan, store: Any, bases: dict[str, Any], lengths: dict[str, set[str]],
               skip: set[str], load: Callable[[Any], Any]) -> dict[str, Any]:
    """The nodes served from the cache: a ``NodeResult``, or a map's list of them.

    ``bases`` holds each cached node's ``cache.key_basis``; nodes in ``skip`` (forced,
    not cached, or broken) and everything after them are left to the cluster.
    """
    from ductwork.runtime.store.artifacts import CorruptArtifact

    done: dict[str, Any] = {}
    for nid, inv in plan.invocations.items():  # call order: inputs come first
        if nid in skip or nid not in bases or not all(dep in done for dep in inv.deps):
            continue
        refs = upstream_refs({dep: done[dep] for dep in inv.deps})
        arguments = substitute(inv.arguments, lambda out, r=refs: r[out.node][out.name])
        try:
            served = (_serve_map if inv.is_map else _serve_node)(
                nid, inv, arguments, store, bases[nid], lengths.get(nid, set()), load)
        except CorruptArtifact:
            served = None  # the store dropped it; the cluster's tasks recompute it
        if served is not None:
            done[nid] = served
    return done


def _serve_node(nid: str, inv: Invocation, arguments: dict[str, Any], store: Any, basis: Any,
                wanted: set[str], load: Callable[[Any], Any]) -> NodeResult | None:
    try:
        key, components = key_of(basis, inv.step, arguments)
    except CacheKeyError:
        return None  # the task reports it, where the step's error belongs
    hit = lookup(store, key, forced=False, step=inv.step, whole=inv.is_map)  # never forced
    if hit is None:
        return None
    sizes = {name: list_length(load(hit[name])) for name in wanted}  # a map over it
    now = time.time()
    return NodeResult(nid, Status.SUCCEEDED, refs=hit, cached=True, key=key, components=components,
                      started=now, finished=now, lengths=sizes)


def _serve_map(nid: str, inv: Invocation, arguments: dict[str, Any], store: Any, basis: Any,
               wanted: set[str], load: Callable[[Any], Any]) -> list[NodeResult] | None:
    source = arguments[inv.map_over]
    if isinstance(source, GatherRef):
        items = [load(part) for part in source.parts]
    elif isinstance(source, list | tuple):
        items = [load(item) for item in source]
    else:
        try:
            items = map_items(inv.step, load(source))
        except NotAList:
            return None  # the cluster's run says what is wrong
    results = []
    for i, item in enumerate(items):
        served = _serve_node(element_id(nid, i), inv, {**arguments, inv.map_over: item}, store,
                             basis, set(), load)
        if served is None:
            return None
        results.append(served)
    return results
