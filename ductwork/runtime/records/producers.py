"""Which run made the outputs a cache hit serves, and what that run recorded.

A hit does not run its step, so what the step recorded -- its metrics, its logs --
is the producing run's. The key index (``store``) maps a key to output digests
only; the run history keeps, per step run, the key it ran under and the outputs it
made. So the producer of a hit is the newest step run in this store's history that
*ran* (was not served) under that key and made exactly the outputs served.
Matching the digests matters: a regenerated step that is not deterministic
replaces the key's entry, and the run that wrote the entry served is the one named.
Only runs that ran count, so a producer is always the original one, never a run
that was itself served from the cache.

When history cannot say -- empty, set aside as damaged, unreadable, or gc removed
the producer -- the answer is None, and the hit is served all the same.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping

from ductwork.dsl.slotted import Frozen, fill
from ductwork.runtime import caches
from ductwork.runtime.records.rows import BAD_ROW

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["KEYS_PER_QUERY", "NO_PRODUCER_NOTE", "Producer", "find_producer", "find_producers",
           "forget_producers"]

#: The note of a hit whose producing run history no longer has.
NO_PRODUCER_NOTE = ("cached: the run that made these outputs is not in this store's run "
                    "history (removed by gc, or the history was lost), so its metrics and "
                    "logs are not shown")

# The partial index ``steps_made_by_key`` (cache_key, where cached = 0) serves this query,
# newest first; only the newest ``_ROWS_PER_KEY`` rows of a key are looked at.
_MADE = ("SELECT s.cache_key, s.run_id, s.outputs, s.metrics, s.logs FROM steps s JOIN runs r "
         "ON r.id = s.run_id WHERE s.cache_key IN ({keys}) AND s.cached = 0 "
         "AND s.status = 'succeeded' AND r.store = ? ORDER BY s.finished DESC")
_ROWS_PER_KEY = 8
KEYS_PER_QUERY = 500  # below SQLite's oldest limit on bound variables (999)


# (history opening, store, key, output digests) -> Producer: a run serves the same keys
# again and again (a notebook's reruns, a warm rerun), and a found producer stays the
# producer -- a later run that ran the key and made the same digests made them too.
# Only finds are kept: "not found" may change as runs finish. Deleting runs clears it.
_FOUND = caches.cache("records.producers", maxsize=4096)


class Producer(Frozen):
    """The run whose execution made a hit's outputs, with what its step recorded."""

    __slots__ = ("run_id", "metrics", "logs")
    run_id: str
    metrics: dict[str, Any]
    logs: str

    def __init__(self, run_id: str, metrics: dict[str, Any], logs: str) -> None:
        fill(self, run_id, metrics, logs)


def digests(refs: Mapping[str, Any]) -> dict[str, str | None]:
    """Each output's digest (a gathered map output's too), by output name."""
    return {name: getattr(ref, "digest", None) for name, ref in refs.items()}


def _stored_digests(outputs: str | None) -> dict[str, Any]:
    return {name: ref.get("digest", ref.get("gather"))
            for name, ref in json.loads(outputs or "{}").items()}


def find_producer(history: Any, store_url: str, key: str | None,
                  refs: Mapping[str, Any]) -> Producer | None:
    """The run in ``history`` that ran ``key`` and made ``refs``, or None when it cannot
    be found (no history, gc removed it, a damaged file or row): never an error."""
    return find_producers(history, store_url, [(key, refs)])[0]


def find_producers(history: Any, store_url: str,
                   hits: list[tuple[str | None, Mapping[str, Any]]]) -> list[Producer | None]:
    """``find_producer`` for each ``(key, refs)`` of ``hits``, in one query per
    ``KEYS_PER_QUERY`` keys: a warm map serves thousands of elements, and a query each was a
    third of an element's cost."""
    found: list[Producer | None] = [None] * len(hits)
    if history is None:
        return found
    opening = getattr(history, "opening", id(history))
    waiting: dict[str, list[tuple[int, dict[str, str | None], tuple[Any, ...]]]] = {}
    for i, (key, refs) in enumerate(hits):
        if key is None:
            continue
        if len(refs) == 1:  # most steps: no dict, no sort, no call
            (name, ref), = refs.items()
            outputs: tuple[tuple[str, str | None], ...] = ((name, getattr(ref, "digest", None)),)
        else:
            outputs = tuple(sorted(digests(refs).items()))
        memo = (opening, store_url, key, outputs)
        known = _FOUND.get(memo)
        if known is not None:
            found[i] = known
        else:
            waiting.setdefault(key, []).append((i, dict(outputs), memo))
    keys = list(waiting)
    # One producer per (run, metrics, logs): a map's elements, made by one run with the
    # same (mostly no) metrics, share one record instead of parsing and building each.
    made: dict[tuple[Any, Any, Any], Producer] = {}
    for start in range(0, len(keys), KEYS_PER_QUERY):
        chunk = keys[start:start + KEYS_PER_QUERY]
        try:
            rows = history.read(_MADE.format(keys=", ".join("?" * len(chunk))),
                                (*chunk, store_url))
        except (sqlite3.Error, OSError):
            return found  # a history that cannot be read costs the hits their record
        rows_of: dict[str, int] = {}
        for key, run_id, outputs, metrics, logs in rows:
            rows_of[key] = seen = rows_of.get(key, 0) + 1
            pending = waiting[key]
            if seen > _ROWS_PER_KEY or not pending:
                continue
            try:
                stored = _stored_digests(outputs)
                matched = [w for w in pending if w[1] == stored]
                if not matched:
                    continue
                producer = made.get((run_id, metrics, logs))
                if producer is None:
                    producer = made[run_id, metrics, logs] = Producer(
                        run_id, dict(json.loads(metrics or "{}")), logs or "")
            except BAD_ROW:
                continue  # a damaged row: another may still name the producer
            for w in matched:
                found[w[0]] = _FOUND.put(w[2], producer)
                pending.remove(w)
    return found


def forget_producers() -> None:
    """Drop this process's remembered producers (deleting runs does: a removed run is no
    producer)."""
    _FOUND.clear()
