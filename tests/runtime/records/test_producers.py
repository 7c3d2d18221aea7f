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


def _json_digests(text: str) -> dict:
    import json

    return {name: ref.get("digest", ref.get("gather")) for name, ref in json.loads(text).items()}


def test_a_rows_outputs_are_read_alike_spelled_out_or_parsed():
    import pytest

    from ductwork.runtime.keys.hashing import new_hasher
    from ductwork.runtime.records.producers import _stored_digests
    from ductwork.runtime.records.rows import BAD_ROW, outputs_json
    from ductwork.runtime.store.artifacts import ArtifactRef
    from ductwork.runtime.store.refs import GatherRef

    def ref(data: bytes, inline: bool = True, classes: tuple = ()) -> ArtifactRef:
        return ArtifactRef(new_hasher(data).hexdigest(), "json", len(data), classes,
                           data if inline else None)

    for outputs in ({"output": ref(b"6")}, {"output": ref(b"7" * 900, inline=False)},
                    {"a": ref(b"1"), "b": ref(b"2")}, {"output": ref(b"6", classes=("m:C",))},
                    {"output": GatherRef.of([ref(b"1"), ref(b"2")])}, {"naïve": ref(b"3")}, {}):
        text = outputs_json(outputs)
        assert _stored_digests(text) == _json_digests(text) == {
            name: r.digest for name, r in outputs.items()}
    assert _stored_digests(None) == {}
    for damaged in ('{"output": {"digest": "' + "a" * 63 + '"', "[1]", '{"output": 3}'):
        with pytest.raises(BAD_ROW):
            _stored_digests(damaged)
