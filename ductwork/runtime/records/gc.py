"""``ductwork gc``: remove artifacts and cache entries that no kept run refers to.

Kept runs are chosen by count (the newest N) and/or age (newer than a date);
runs still going are always kept. An object or key written within the grace
period is never removed, whoever refers to it: a run in progress has not
recorded its refs yet, and this is what makes gc safe beside it.
"""

from __future__ import annotations

import datetime as _dt
import time
from typing import Any

import attrs

from ductwork.runtime.records.runstore import open_runstore
from ductwork.runtime.status import Status
from ductwork.runtime.store.artifacts import open_store
from ductwork.runtime.store.refs import iter_digests

GRACE_SECONDS = 3600.0


@attrs.frozen
class GcReport:
    """What a collection removed (or would remove, for a dry run)."""

    runs_removed: int
    objects_removed: int
    keys_removed: int
    bytes_freed: int
    dry_run: bool


def collect(
    store: Any = None,
    keep_last: int | None = None,
    newer_than: _dt.datetime | float | None = None,
    dry_run: bool = False,
    grace: float = GRACE_SECONDS,
) -> GcReport:
    """Forget runs outside the kept set, then remove what no kept run refers to."""
    artifacts = open_store(store)
    history = open_runstore(artifacts)
    cutoff = newer_than.timestamp() if isinstance(newer_than, _dt.datetime) else newer_than
    runs = history.list_runs()
    kept, dropped = [], []
    for i, run in enumerate(runs):  # newest first
        keep = run.status == Status.RUNNING
        if keep_last is None and cutoff is None:
            keep = True
        if keep_last is not None and i < keep_last:
            keep = True
        if cutoff is not None and (run.started or 0) >= cutoff:
            keep = True
        (kept if keep else dropped).append(run.id)

    live = history.referenced_digests(kept)
    live_keys = history.referenced_keys(kept)
    young = time.time() - grace
    objects = keys = freed = 0
    for key in list(artifacts.iter_keys()):
        if key in live_keys or _modified(artifacts, artifacts.key_path(key)) > young:
            continue
        entry = artifacts.get_key(key)
        if entry is not None and all(d in live for r in entry.values() for d in iter_digests(r)):
            continue
        keys += 1
        if not dry_run:
            artifacts.delete_key(key)
    for digest in list(artifacts.iter_objects()):
        path = artifacts.object_path(digest)
        if digest in live or _modified(artifacts, path) > young:
            continue
        objects += 1
        freed += _size(artifacts, path)
        if not dry_run:
            artifacts.delete_object(digest)
    if dropped and not dry_run:
        history.delete_runs(dropped)
    if not dry_run:
        artifacts.clean_tmp(older_than=grace)
    return GcReport(len(dropped), objects, keys, freed, dry_run)


def _modified(artifacts: Any, path: str) -> float:
    try:
        info = artifacts.fs.info(path)
    except FileNotFoundError:
        return 0.0
    stamp = info.get("mtime") or info.get("last_modified") or info.get("created") or 0.0
    if isinstance(stamp, _dt.datetime):
        return stamp.timestamp()
    return float(stamp)


def _size(artifacts: Any, path: str) -> int:
    try:
        return int(artifacts.fs.info(path).get("size") or 0)
    except FileNotFoundError:
        return 0
