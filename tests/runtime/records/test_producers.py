"""Naming the producers of many hits at once: a map's elements made by one run share one
``Producer`` (the run's metrics and logs read once), and each still gets its own copy of
the metrics, so changing one hit's metrics changes no other's."""

from __future__ import annotations

from ductwork import pipeline, step
from ductwork.runtime.records.producers import find_producers, forget_producers
from ductwork.runtime.records.runstore import open_runstore
from ductwork.runtime.store.artifacts import ArtifactStore


@step
def double(x: int) -> int:
    return x * 2


@step
def noted(x: int) -> int:
    from ductwork import context

    context().log_metric("x", x)
    return x


@pipeline
def doubled(n: int = 4):
    return double.map(list(range(n))), noted.map([1, 1, 2])


def test_one_runs_elements_share_one_producer_and_hits_get_their_own_metrics(tmp_path):
    store = str(tmp_path / "s")
    first = doubled.run(store=store)
    elements = [first.steps[f"double[{i}]"] for i in range(4)]
    forget_producers()  # found from history, not remembered from the run
    history = open_runstore(ArtifactStore(store))
    found = find_producers(history, ArtifactStore(store).url,
                           [(e.key, e.output_refs) for e in elements])
    assert all(p is not None and p.run_id == first.id for p in found)
    assert all(p is found[0] for p in found)  # one record for the run's rows
    second = doubled.run(store=store)
    hits = [second.steps[f"double[{i}]"] for i in range(4)]
    assert all(h.cached and h.cached_from == first.id and h.metrics == {} for h in hits)
    hits[0].metrics["changed"] = 1
    assert hits[1].metrics == {}
    noted_hits = [second.steps[f"noted[{i}]"] for i in range(3)]
    assert [h.metrics for h in noted_hits] == [{"x": 1}, {"x": 1}, {"x": 2}]
