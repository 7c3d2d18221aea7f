"""``node.lookup``: a stored entry is a hit only when it records exactly the outputs the
call has (a map element: one, ``output``); any other set is a miss with a warning naming
the entry, so a damaged entry is never served."""

from __future__ import annotations

import pytest

from ductwork import step
from ductwork.runtime.engine.node import lookup
from ductwork.runtime.store.artifacts import ArtifactStore

KEY = "ab" + "c" * 62


@step(outputs=("a", "b"))
def two(x: int):
    return x, x


@step
def one(x: int) -> int:
    return x


@pytest.mark.parametrize("names, step_, whole, served", [
    (["output"], one, True, True),
    (["output"], two, True, True),  # an element stores its return value whole
    (["a"], one, True, False),
    (["output", "a"], one, True, False),
    ([], one, True, False),
    (["a", "b"], two, False, True),
    (["a"], two, False, False),
    (["output"], two, False, False),
    (["output"], one, False, True),
])
def test_an_entry_is_served_only_with_the_calls_outputs(tmp_path, names, step_, whole,
                                                         served):
    store = ArtifactStore(str(tmp_path / "s"))
    store.put_key(KEY, {name: store.put(7, inline=True) for name in names})
    if served:
        hit = lookup(store, KEY, False, step=step_, whole=whole)
        assert hit is not None and set(hit) == set(names)
    else:
        with pytest.warns(RuntimeWarning, match="records outputs"):
            assert lookup(store, KEY, False, step=step_, whole=whole) is None
    assert lookup(store, KEY, True, step=step_, whole=whole) is None  # forced: a miss
