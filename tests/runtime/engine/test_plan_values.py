"""``plan`` says what changed in values when they are small, and which run stored a hit."""

from __future__ import annotations

import re

import ductwork as dw
from ductwork.runtime.records.runstore import forget_runstore, open_runstore
from ductwork.runtime.store.artifacts import ArtifactStore


@dw.step
def fit(c: float, optimizer: str = "adam", rows: list | None = None) -> float:
    return c


@dw.pipeline
def train(c: float = 0.5, optimizer: str = "adam", n: int = 3):
    return fit(c, optimizer=optimizer, rows=list(range(n)))


def test_plan_reasons_show_small_values_and_digests_for_big_ones(tmp_path):
    store = str(tmp_path / "s")
    train.run(store=store)
    status, why = train.plan(c=0.7, optimizer="sgd", n=300, store=store)["fit"]
    assert status == "run"
    assert "input 'c' changed (0.5 -> 0.7)" in why
    assert "input 'optimizer' changed ('adam' -> 'sgd')" in why
    assert re.search(r"input 'rows' changed \(\[0, 1, 2\] -> [0-9a-f]{12}\)", why), why
    forget_runstore(ArtifactStore(store))


def test_a_planned_hit_names_the_run_that_made_it_even_past_many_later_runs(tmp_path):
    store = str(tmp_path / "s")
    first = train.run(store=store)
    assert train.plan(store=store)["fit"] == ("cached", f"cache hit: stored by run {first.id}")
    history = open_runstore(ArtifactStore(store))
    history.delete_runs([first.id])  # gc took the producer: the hit is still a hit
    assert train.plan(store=store)["fit"] == ("cached", "cache hit")
    forget_runstore(ArtifactStore(store))
