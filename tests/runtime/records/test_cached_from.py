"""A cached step shows what the run that produced its outputs recorded, and names that run.

``StepRun.cached_from`` is the id of the run whose execution made the outputs a hit
served (a run that was itself served points past it, to the original producer); the
hit's ``metrics`` and ``logs`` are that run's. When history cannot say (it was lost,
damaged, or gc removed the producer) the hit still serves: ``cached_from`` is None,
``metrics`` empty and ``note`` says why -- never a failure.
"""

from __future__ import annotations

import sqlite3
import warnings

import ductwork as dw
from ductwork import pipeline, step
from ductwork.cli import main
from ductwork.runtime.records.runstore import SCHEMA, forget_runstore, open_runstore
from ductwork.runtime.store.artifacts import ArtifactStore


@step
def fit(c: float) -> float:
    print(f"fitting with c={c}")
    dw.context().log_metric("accuracy", 0.9 + c / 100)
    return c * 2


@step
def report(score: float) -> str:
    print("reporting")
    return f"score {score}"


@pipeline
def train(c: float = 1.0):
    return report(fit(c))


def _forget(store: str) -> None:
    forget_runstore(ArtifactStore(store))


def test_a_hit_carries_the_producers_metrics_and_logs_and_names_it(tmp_path):
    store = str(tmp_path / "s")
    first = train.run(store=store)
    second = train.run(store=store)
    third = train.run(store=store)
    made = first.steps["fit"]
    assert made.cached_from is None and made.metrics == {"accuracy": 0.91}
    for later in (second, third):  # the third names the original producer, not the second
        hit = later.steps["fit"]
        assert hit.cached and hit.cached_from == first.id
        assert hit.metrics == {"accuracy": 0.91}
        assert hit.logs == made.logs and "fitting with c=1.0" in hit.logs
        assert later.steps["report"].cached_from == first.id
    # Read back from history, as `ductwork show` and the server see it.
    back = dw.get_run(third.id, store=store).steps["fit"]
    assert back.cached_from == first.id and back.metrics == {"accuracy": 0.91}
    assert f"made by run {first.id}" in back.why
    assert "fitting with c=1.0" in back.logs
    _forget(store)


def test_a_regenerated_step_is_the_producer_of_what_follows(tmp_path):
    store = str(tmp_path / "s")
    train.run(store=store)
    again = train.run(store=store, regenerate=["fit"])
    assert not again.steps["fit"].cached and again.steps["fit"].cached_from is None
    later = train.run(store=store)
    assert later.steps["fit"].cached_from == again.id
    _forget(store)


@step
def twice(x: int) -> int:
    dw.context().log_metric("x", x)
    return x + 1


@step
def three() -> int:
    return 3


@step
def two() -> int:
    return 2


@step
def inc(v: int) -> int:
    return v + 1


@pipeline
def same_call_twice():
    # Both calls get the bytes of 3, so one key; the second is keyed a step later.
    return twice(three()), twice(inc(two()))


def test_a_hit_on_an_entry_written_earlier_in_the_same_run_names_that_run(tmp_path):
    store = str(tmp_path / "s")
    run = same_call_twice.run(store=store)
    assert not run.steps["twice"].cached
    hit = run.steps["twice-2"]
    assert hit.cached and hit.cached_from == run.id and hit.metrics == {"x": 3}
    assert dw.get_run(run.id, store=store).steps["twice-2"].cached_from == run.id
    _forget(store)


def test_a_producer_gc_removed_leaves_the_hit_served_without_its_record(tmp_path):
    store = str(tmp_path / "s")
    first = train.run(store=store)
    open_runstore(ArtifactStore(store)).delete_runs([first.id])  # what gc does to a run
    later = train.run(store=store)
    hit = later.steps["fit"]
    assert hit.cached and later.outputs == "score 2.0"
    assert hit.cached_from is None and hit.metrics == {} and hit.logs == ""
    assert "not in" in hit.note and "history" in hit.note
    _forget(store)


def test_lost_or_damaged_history_never_stops_a_hit(tmp_path):
    store = tmp_path / "s"
    train.run(store=str(store))
    _forget(str(store))
    (store / "runs.sqlite").write_bytes(b"not a database at all" * 100)
    for name in ("runs.sqlite-wal", "runs.sqlite-shm"):
        (store / name).unlink(missing_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the file set aside is reported
        later = train.run(store=str(store))
    hit = later.steps["fit"]
    assert hit.cached and hit.cached_from is None and hit.metrics == {}
    assert hit.note and "history" in hit.note
    _forget(str(store))


def test_a_run_store_without_cached_from_still_reads_and_gains_the_column(tmp_path):
    store = tmp_path / "s"
    store.mkdir()
    old = SCHEMA.replace("    cached_from TEXT,\n", "")
    assert "cached_from" not in old
    db = sqlite3.connect(store / "runs.sqlite")
    db.executescript(old)
    db.execute("INSERT INTO runs (id, pipeline, status, started) VALUES ('old', 'train', "
               "'succeeded', 1.0)")
    db.execute("INSERT INTO steps (run_id, id, step, status, cached, metrics) VALUES "
               "('old', 'fit', 'fit', 'succeeded', 1, '{\"a\": 1}')")
    db.commit()
    db.close()
    record = dw.get_run("old", store=str(store)).steps["fit"]
    assert record.cached and record.cached_from is None and record.metrics == {"a": 1}
    first = train.run(store=str(store))
    assert train.run(store=str(store)).steps["fit"].cached_from == first.id
    _forget(str(store))


def test_ductwork_logs_of_a_cached_step_prints_the_producers_logs(tmp_path, capsys):
    store = str(tmp_path / "s")
    train.run(store=store)
    later = train.run(store=store)
    capsys.readouterr()
    assert main(["logs", later.id, "fit", "--store", store]) == 0
    assert "fitting with c=1.0" in capsys.readouterr().out
    _forget(store)


@step
def square(v: int) -> int:
    dw.context().log_metric("v", v)
    return v * v


@pipeline
def squares(n: int = 3):
    return square.map(list(range(n)))


def test_a_map_served_whole_names_its_producer_and_each_element_its_own(tmp_path):
    store = str(tmp_path / "s")
    first = squares.run(store=store)
    grown = squares.run(n=4, store=store)  # three elements hit, the fourth runs
    assert grown.steps["square[0]"].cached_from == first.id
    assert grown.steps["square[0]"].metrics == {"v": 0}
    assert not grown.steps["square[3]"].cached and grown.steps["square[3]"].cached_from is None
    assert grown.steps["square"].cached_from is None  # not served whole
    whole = squares.run(n=4, store=store)
    assert {whole.steps[f"square[{i}]"].cached_from for i in range(3)} == {first.id}
    assert whole.steps["square[3]"].cached_from == grown.id
    assert whole.steps["square"].cached and whole.steps["square"].cached_from is None
    again = squares.run(n=3, store=store)
    assert again.steps["square"].cached_from == first.id
    _forget(store)


def test_a_warm_map_finds_its_elements_producers_in_one_query_per_500(tmp_path, monkeypatch):
    """A query per element was a third of a warm element's cost; the answers are the same."""
    from ductwork.runtime.records.producers import forget_producers
    from ductwork.runtime.records.runstore import RunStore

    store = str(tmp_path / "s")
    first = squares.run(n=600, store=store)
    grown = squares.run(n=1203, store=store)  # elements 600.. run here
    forget_producers()  # as a new process: nothing remembered
    reads = []
    real_read = RunStore.read
    monkeypatch.setattr(RunStore, "read",
                        lambda self, sql, args=(): reads.append(sql) or real_read(self, sql, args))
    warm = squares.run(n=1204, store=store)  # not served whole: each element is looked up
    made_by = [warm.steps[f"square[{i}]"].cached_from for i in range(1204)]
    assert made_by == [first.id] * 600 + [grown.id] * 603 + [None]
    assert [warm.steps[f"square[{i}]"].metrics for i in (0, 599, 600, 1202)] == [
        {"v": 0}, {"v": 599}, {"v": 600}, {"v": 1202}]
    assert warm.steps["square[1202]"].logs == grown.steps["square[1202]"].logs
    assert len([sql for sql in reads if "cache_key IN" in sql or "cache_key =" in sql]) == 3
    _forget(store)


@step
def bump(v: int) -> int:
    dw.context().log_metric("v", v)
    return v + 1


@pipeline
def chain(n: int = 30):
    v = 0
    for _ in range(n):
        v = bump(v)
    return v


def test_a_warm_chain_names_its_producers_in_one_query_at_the_end(tmp_path, monkeypatch):
    """Each hit of a chain waits for the one before it, so hits cannot be looked up
    together as they are served; their producers are named together when the run ends."""
    from ductwork.runtime.records.producers import forget_producers
    from ductwork.runtime.records.runstore import RunStore

    store = str(tmp_path / "s")
    first = chain.run(store=store)
    forget_producers()
    reads = []
    real_read = RunStore.read
    monkeypatch.setattr(RunStore, "read",
                        lambda self, sql, args=(): reads.append(sql) or real_read(self, sql, args))
    warm = chain.run(store=store)
    hits = [s for s in warm.steps.values() if s.step == "bump"]
    assert len(hits) == 30 and all(s.cached and s.cached_from == first.id for s in hits)
    assert sorted(s.metrics["v"] for s in hits) == list(range(30))
    assert len([sql for sql in reads if "cache_key IN" in sql]) == 1
    back = dw.get_run(warm.id, store=store).steps  # as recorded in history
    assert {back[s.id].cached_from for s in hits} == {first.id}
    _forget(store)
