"""``node.uncollected``: the garbage collector is paused for a map's expansion and is
running again after it -- also when the block raises -- unless it was off before."""

from __future__ import annotations

import gc

import pytest

from ductwork import pipeline, step
from ductwork.runtime.engine.node import uncollected


@pytest.fixture
def collector_state():
    was = gc.isenabled()
    yield
    (gc.enable if was else gc.disable)()


def test_paused_inside_and_running_after(collector_state):
    gc.enable()
    with uncollected():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(KeyError), uncollected():
        raise KeyError("x")
    assert gc.isenabled()


def test_left_off_when_it_was_off(collector_state):
    gc.disable()
    with uncollected():
        assert not gc.isenabled()
    assert not gc.isenabled()


seen: list[bool] = []


@step
def record_collector(x: int) -> int:
    seen.append(gc.isenabled())
    return x


@pipeline
def mapped(n: int = 3):
    return record_collector.map(list(range(n)))


def test_a_maps_steps_run_with_the_collector_on(tmp_path, collector_state):
    gc.enable()
    seen.clear()
    run = mapped.run(store=str(tmp_path / "s"))
    assert run.outputs == [0, 1, 2] and seen == [True, True, True] and gc.isenabled()
    assert mapped.run(store=str(tmp_path / "s")).outputs == [0, 1, 2] and gc.isenabled()
