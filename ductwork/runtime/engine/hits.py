"""Keying on the driver what can be keyed before anything runs: served hits, and plans.

A rerun whose steps are all cached should cost what it costs inline -- a key and
an index lookup per step -- not a round of tasks on a cluster. So before the
graph is handed over, the driver computes, in call order, the key of every node
whose inputs it already knows (constants, and outputs of nodes it has just
served) and looks it up; the hits are finished here and the rest go to the
cluster, where each task computes its key again (the same functions on the same
inputs: the same key). It stops at a node's first miss, so a cold run pays one
lookup per chain, not one per node; a ``map`` is served only when every
element hits, and its first miss ends the attempt.

``key_known`` is that walk; ``Pipeline.plan`` (``plan.py``) takes the same walk
with every element of a map keyed, so what a plan says is cached is what a run
serves.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping

from ductwork.dsl.slotted import Frozen, setter
from ductwork.dsl.trace import Invocation, Plan, substitute
from ductwork.runtime.engine.node import (
    RECOMPUTED_NOTE,
    CacheKeyError,
    NotAList,
    element_id,
    gathered,
    key_of,
    list_length,
    lookup,
    map_items,
)
from ductwork.runtime.engine.tasks import NodeResult
from ductwork.runtime.status import Status
from ductwork.runtime.store.refs import GatherRef

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class Call(Frozen):
    """One call keyed on the driver: its key, a hit's stored refs, or why it has no key.

    ``lengths``: of the hit's outputs a downstream map iterates over (-1: not a list).
    """

    __slots__ = ("sid", "key", "components", "hit", "lengths", "error")
    sid: str
    key: str | None
    components: dict[str, str] | None
    hit: dict[str, Any] | None
    lengths: dict[str, int]
    error: str | None

    def __init__(self, sid: str, key: str | None = None,
                 components: dict[str, str] | None = None, hit: dict[str, Any] | None = None,
                 lengths: dict[str, int] | None = None, error: str | None = None) -> None:
        set_ = setter(self)
        set_("sid", sid)
        set_("key", key)
        set_("components", components)
        set_("hit", hit)
        set_("lengths", {} if lengths is None else lengths)
        set_("error", error)


#: A node keyed: its call, or a map's element calls (a map whose items are not known
#: is one ``Call`` with an error).
Keyed = Call | list[Call]


def is_hit(keyed: Keyed) -> bool:
    """Whether a keyed node is served from the cache (a map: every element hits)."""
    if isinstance(keyed, list):
        return all(call.hit is not None for call in keyed)
    return keyed.hit is not None


def refs_of(keyed: Keyed) -> dict[str, Any]:
    """A served node's output refs; a map's are its elements', gathered."""
    if isinstance(keyed, list):
        return {"output": gathered(call.hit["output"] for call in keyed)}  # type: ignore[index]
    assert keyed.hit is not None
    return keyed.hit


def key_known(plan: Plan, store: Any, bases: Mapping[str, Any], skip: Collection[str],
              load: Callable[[Any], Any], *, lengths: Mapping[str, set[str]] | None = None,
              forced: Collection[str] = frozenset(), every: bool = False
              ) -> dict[str, Keyed]:
    """Key and look up, in call order, each node whose inputs are known: constants and
    the outputs of nodes served before it.

    ``bases`` holds each cached node's ``key_basis``; nodes in ``skip``, and those after
    them, are not keyed. A ``forced`` node is keyed but never a hit. A map stops at its
    first miss unless ``every`` element is wanted (a plan). ``lengths`` names the outputs
    a downstream map iterates over, whose lengths a hit reads.
    """
    from ductwork.runtime.store.artifacts import CorruptArtifact

    served: dict[str, dict[str, Any]] = {}
    keyed: dict[str, Keyed] = {}
    for nid, inv in plan.invocations.items():  # call order: inputs come first
        if nid in skip or nid not in bases or not all(dep in served for dep in inv.deps):
            continue
        arguments = substitute(inv.arguments, lambda out: served[out.node][out.name])
        wanted = (lengths or {}).get(nid, set())
        try:
            if inv.is_map:
                result: Keyed = _key_map(nid, inv, arguments, store, bases[nid], load,
                                         nid in forced, every)
            else:
                result = _key_call(nid, inv, arguments, store, bases[nid], load, nid in forced,
                                   wanted)
        except CorruptArtifact:
            result = Call(nid, error=RECOMPUTED_NOTE)  # the store dropped it: it is redone
        keyed[nid] = result
        if is_hit(result):
            served[nid] = refs_of(result)
    return keyed


def serve_hits(plan: Plan, store: Any, bases: dict[str, Any], lengths: dict[str, set[str]],
               skip: set[str], load: Callable[[Any], Any]) -> dict[str, Any]:
    """The nodes served from the cache: a ``NodeResult``, or a map's list of them.

    ``bases`` holds each cached node's ``cache.key_basis``; nodes in ``skip`` (forced,
    not cached, or broken) and everything after them are left to the cluster.
    """
    done: dict[str, Any] = {}
    for nid, keyed in key_known(plan, store, bases, skip, load, lengths=lengths).items():
        if is_hit(keyed):
            done[nid] = ([_result(call) for call in keyed] if isinstance(keyed, list)
                         else _result(keyed))
    return done


def _result(call: Call) -> NodeResult:
    now = time.time()
    return NodeResult(call.sid, Status.SUCCEEDED, refs=call.hit, cached=True, key=call.key,
                      components=call.components, started=now, finished=now,
                      lengths=call.lengths)


def _key_call(sid: str, inv: Invocation, arguments: dict[str, Any], store: Any, basis: Any,
              load: Callable[[Any], Any], forced: bool, wanted: set[str]) -> Call:
    try:
        key, components = key_of(basis, inv.step, arguments)
    except CacheKeyError as exc:
        return Call(sid, error=f"{exc}")  # the run reports it, where the step's error belongs
    hit = lookup(store, key, forced, step=inv.step, whole=inv.is_map)
    if hit is None:
        return Call(sid, key, components)
    sizes = {name: list_length(load(hit[name])) for name in wanted}  # a map over it
    return Call(sid, key, components, hit, sizes)


def _key_map(nid: str, inv: Invocation, arguments: dict[str, Any], store: Any, basis: Any,
             load: Callable[[Any], Any], forced: bool, every: bool) -> Keyed:
    source = arguments[inv.map_over]
    if isinstance(source, GatherRef):
        items = [load(part) for part in source.parts]
    elif isinstance(source, list | tuple):
        items = [load(item) for item in source]
    else:
        try:
            items = map_items(inv.step, load(source))
        except NotAList as exc:
            return Call(nid, error=str(exc))  # the run says what is wrong
    calls = []
    for i, item in enumerate(items):
        call = _key_call(element_id(nid, i), inv, {**arguments, inv.map_over: item}, store,
                         basis, load, forced, set())
        calls.append(call)
        if call.hit is None and not every:
            break
    return calls
