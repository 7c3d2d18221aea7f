"""``dw.diff`` shows a changed input's small values, and its digests when they are big."""

from __future__ import annotations

import re

import ductwork as dw
from ductwork import pipeline, step
from ductwork.runtime.records.runstore import forget_runstore
from ductwork.runtime.store.artifacts import ArtifactStore


@step
def fit(cfg: tuple, rows: list) -> float:
    dw.context().log_metric("accuracy", cfg[0])
    return cfg[0]


@pipeline
def train(c: float = 0.5, n: int = 3):
    # Neither argument is a parameter as it is: only its recorded value can show it.
    return fit((c, "adam"), rows=list(range(n)))


def test_diff_shows_small_input_values_and_digests_of_big_ones(tmp_path):
    store = str(tmp_path / "s")
    a, b = train.run(store=store), train.run(c=0.7, n=300, store=store)
    d = dw.diff(a.id, b.id, store=store)
    (step_diff,) = d.changed
    inputs = {entry["argument"]: entry for entry in step_diff.inputs}
    assert inputs["cfg"]["shown"] == ["(0.5, 'adam')", "(0.7, 'adam')"]
    assert inputs["rows"]["shown"] == ["[0, 1, 2]", None]  # too big to show: its digest
    assert step_diff.components == []  # the values are not components of their own
    text = d.render()
    assert "input 'cfg' changed ((0.5, 'adam') -> (0.7, 'adam'))" in text
    assert re.search(r"input 'rows' changed \(\[0, 1, 2\] -> [0-9a-f]{12}\)", text), text
    assert d.to_dict()["steps"]["fit"]["inputs"][0]["shown"] == ["(0.5, 'adam')",
                                                                   "(0.7, 'adam')"]
    forget_runstore(ArtifactStore(store))


def test_a_cached_step_keeps_its_producers_metrics_so_diff_sees_no_change(tmp_path):
    store = str(tmp_path / "s")
    a = train.run(store=store)
    b = train.run(store=store)
    d = dw.diff(a.id, b.id, store=store)
    assert not d.differs and b.steps["fit"].metrics == {"accuracy": 0.5}
    forget_runstore(ArtifactStore(store))
