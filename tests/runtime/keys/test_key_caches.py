"""The memos of ``keys`` are bounded caches from ``runtime.caches``; clearing them keeps keys."""

from __future__ import annotations

import json

from ductwork.runtime import caches
from ductwork.runtime.keys.cache_key import hash_path
from ductwork.runtime.keys.fingerprint import fingerprint

LIMIT = 3


def reads_a_constant(x: int) -> str:
    return json.dumps(x + LIMIT)


KEYS_CACHES = {
    "keys.fingerprints", "keys.constant_digests", "keys.source_trees", "keys.source_digests",
    "keys.code_scans", "keys.distributions", "keys.hash_path_files",
}  # fmt: skip


def test_keys_memos_are_named_bounded_caches(tmp_path) -> None:
    (tmp_path / "f.txt").write_text("x")
    fingerprint(reads_a_constant)
    hash_path("s", str(tmp_path / "f.txt"))
    made = caches.all_caches()
    assert KEYS_CACHES <= set(made)
    for name in KEYS_CACHES:
        assert len(made[name]) <= made[name].maxsize <= 10_000, made[name]
    assert reads_a_constant in [entry.root for entry in made["keys.fingerprints"].values()]


def test_clearing_every_cache_changes_no_fingerprint(tmp_path) -> None:
    (tmp_path / "f.txt").write_text("x")
    before = fingerprint(reads_a_constant), hash_path("s", str(tmp_path / "f.txt"))
    caches.clear_all()
    assert all(len(caches.all_caches()[name]) == 0 for name in KEYS_CACHES)
    assert (fingerprint(reads_a_constant), hash_path("s", str(tmp_path / "f.txt"))) == before
