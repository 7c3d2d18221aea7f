"""gc keeps what published versions hold: their snapshot and sources are roots."""

from __future__ import annotations

from ductwork.runtime.publish import load_pipeline, publish
from ductwork.runtime.records.gc import collect


def test_gc_never_removes_a_published_snapshot(make_flow, tmp_path):
    store = str(tmp_path / "store")
    flow = make_flow(3)
    flow.run(store=store, progress=False)  # a run, so gc has history to sweep
    published = publish(flow, "train", store=store)
    report = collect(store, keep_last=0, grace=0.0)
    assert report.runs_removed == 1
    loaded, _ = load_pipeline("train", store=store)  # the snapshot object must still be there
    assert loaded.run(store=store, progress=False).outputs == {"y": 7}
    assert published.version == 1
