"""The runtime's module-level caches: bounded, least recently used out first, clearable."""

from __future__ import annotations

import threading

import pytest

from ductwork.runtime import caches
from ductwork.runtime.caches import Cache


def test_a_full_cache_drops_its_least_recently_used_entry():
    dropped = []
    made = Cache("t", 2, on_evict=dropped.append)
    made.put("a", 1)
    made.put("b", 2)
    assert made.get("a") == 1  # "a" is now the most recently used
    made.put("c", 3)
    assert "b" not in made and made.get("a") == 1 and made.get("c") == 3
    assert dropped == [2] and len(made) == 2


def test_setdefault_makes_a_value_once_and_clear_empties():
    made = Cache("t", 4)
    calls = []
    assert made.setdefault("k", lambda: calls.append(1) or "v") == "v"
    assert made.setdefault("k", lambda: calls.append(1) or "w") == "v"
    assert calls == [1]
    made.clear()
    assert len(made) == 0 and made.get("k") is None


def test_a_cache_needs_a_positive_bound():
    with pytest.raises(ValueError, match="maxsize must be >= 1"):
        Cache("t", 0)


def test_every_runtime_cache_is_registered_bounded_and_cleared_by_clear_all():
    import ductwork as dw
    from ductwork import pipeline, step

    @step
    def one() -> int:
        return 1

    @pipeline
    def p():
        return one()

    p.run(store="memory://caches-test")
    made = caches.all_caches()
    assert {"keys.fingerprints", "engine.return_hints"} <= set(made)
    assert any(len(c) for c in made.values())
    assert all(0 < c.maxsize <= 200_000 for c in made.values())
    caches.clear_all()
    assert all(len(c) == 0 for c in caches.all_caches().values())
    assert dw  # the public package still imports


def test_the_same_name_gives_the_same_cache_from_many_threads():
    found = []
    threads = [threading.Thread(target=lambda: found.append(caches.cache("t.shared", 3)))
               for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(c) for c in found}) == 1
