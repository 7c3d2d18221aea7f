"""An entry read again is judged by its bytes as they are now: a parse kept from an earlier
read never serves an entry that was replaced or damaged since."""

from __future__ import annotations

import base64
import warnings

import pytest

from ductwork.runtime.store.artifacts import ArtifactStore


def _entry(store: ArtifactStore, key: str) -> tuple[str, bytes]:
    path = store.key_path(key)
    with open(path, "rb") as f:
        return path, f.read()


def test_an_entry_damaged_after_a_hit_is_a_miss_on_the_next_read(tmp_path):
    store = ArtifactStore(str(tmp_path / "store"))
    key = "ab" * 32
    store.put_key(key, {"output": store.put(41, inline=True)})
    assert store.get_key(key)["output"].inline is not None  # read once: its parse is kept
    path, data = _entry(store, key)
    inline = store.get_key(key)["output"].inline
    flipped = base64.b64encode(bytes([inline[0] ^ 1]) + inline[1:])
    damaged = data.replace(base64.b64encode(inline), flipped)
    assert damaged != data and len(damaged) == len(data)
    with open(path, "wb") as f:
        f.write(damaged)
    with pytest.warns(RuntimeWarning, match="inline data that hashes to"):
        assert store.get_key(key) is None
    with open(path, "wb") as f:  # the same bytes as first read: a hit again
        f.write(data)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert store.get_key(key)["output"].inline == inline


def test_an_entry_replaced_after_a_hit_gives_its_new_outputs(tmp_path):
    store = ArtifactStore(str(tmp_path / "store"))
    key = "cd" * 32
    store.put_key(key, {"output": store.put("first", inline=True)})
    first = store.get_key(key)
    store.put_key(key, {"output": store.put("second", inline=True)})
    second = store.get_key(key)
    assert first["output"].digest != second["output"].digest
    assert store.get(second["output"]) == "second"


def test_the_outputs_of_a_kept_parse_are_the_callers_own(tmp_path):
    store = ArtifactStore(str(tmp_path / "store"))
    key = "ef" * 32
    store.put_key(key, {"output": store.put(1, inline=True)})
    store.get_key(key).clear()
    assert set(store.get_key(key)) == {"output"}
