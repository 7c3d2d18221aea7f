"""What runs' history refers to: the artifact digests and cache keys gc must keep."""

from __future__ import annotations

import contextlib
import json
import sqlite3

from ductwork.runtime.records import rows


def references_of(db: sqlite3.Connection, run_ids: set[str]) -> tuple[set[str], set[str]]:
    """Every artifact digest and cache key the given runs' steps and results refer to; an
    unreadable row refers to nothing."""
    from ductwork.runtime.store.refs import (
        decode_structure,
        iter_digests,
        map_refs,
        ref_from_json,
    )

    digests: set[str] = set()
    keys: set[str] = set()
    for run_id in run_ids:
        for outputs, key in db.execute(
                "SELECT outputs, cache_key FROM steps WHERE run_id = ?", (run_id,)):
            if key:
                keys.add(key)
            with contextlib.suppress(*rows.BAD_ROW):
                for ref in json.loads(outputs or "{}").values():
                    digests.update(iter_digests(ref_from_json(ref)))
        (result,) = db.execute("SELECT result FROM runs WHERE id = ?",
                               (run_id,)).fetchone() or (None,)
        if result:
            with contextlib.suppress(*rows.BAD_ROW):
                map_refs(decode_structure(json.loads(result)),
                         lambda r: digests.update(iter_digests(r)))
    return digests, keys
