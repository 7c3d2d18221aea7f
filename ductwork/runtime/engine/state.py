"""What a run's driver knows while it goes: the step records, who follows whom, values read.

Both drivers on this machine -- the loop (``loop.py``) and the driver that hands a
graph to a scheduling backend (``driver.py``) -- keep the same books: a ``StepRun``
per node and per map element, state changes reported to the progress display,
the nodes after a failure marked skipped, values read from the store once, and
the pipeline's return structure filled in at the end. They keep them here.

They also lease (``records/leases``) every key and digest the run serves or writes,
before it counts on them: ``lease`` when a hit is served or a result recorded,
buffered; the buffer is written before a value is read from the store, before the
result is filled in, and otherwise at most every ``leases.FLUSH_EVERY`` seconds. What gc removed
before its lease was written is recomputed: the loop treats it as a corrupt artifact.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable

from ductwork.dsl.trace import Plan, substitute
from ductwork.runtime.engine.job import resolve_refs
from ductwork.runtime.engine.node import downstream, element_id, gathered, skipped_because
from ductwork.runtime.records.leases import Leases
from ductwork.runtime.records.run import Run, StepRun
from ductwork.runtime.records.runstore import open_runstore
from ductwork.runtime.status import Status
from ductwork.runtime.store.artifacts import CorruptArtifact
from ductwork.runtime.store.refs import GatherRef, iter_digests, map_refs

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


# records.producers, imported at the first hit served: a run without hits (a first run)
# never names a producer. Kept here, so that a warm step does not pay an import statement.
_PRODUCERS: Any = None


def _producers() -> Any:
    """``records.producers``, imported once."""
    global _PRODUCERS
    from ductwork.runtime.records import producers

    _PRODUCERS = producers
    return producers


class RunState:
    """The records of one run of one plan, and the values it has read or made."""

    def __init__(self, plan: Plan, run: Run, store: Any, force: frozenset[str] = frozenset(),
                 progress: Any = None) -> None:
        from ductwork.runtime.ui.display import NullProgress  # not progress: nothing picked

        self.plan, self.run, self.store, self.force = plan, run, store, force
        self.progress = progress or NullProgress()
        # A display that shows nothing is not told of each state change (two per hit).
        self._changed = None if type(self.progress) is NullProgress else self.progress.changed
        self.dependents: dict[str, list[str]] = defaultdict(list)
        #: Each node's upstream nodes (``Invocation.deps``, read once).
        self.deps: dict[str, tuple[str, ...]] = {}
        steps, load, run_id = run.steps, self.load, run.id
        for nid, inv in plan.invocations.items():
            deps = self.deps[nid] = inv.deps
            for dep in deps:
                self.dependents[dep].append(nid)
            steps[nid] = StepRun(nid, inv.step.options.name, map_index=None, run_id=run_id,
                                 loader=load)
        #: Values by digest: read once (and verified), or kept from the step that made them.
        self.memo: dict[str, Any] = {}
        self.history = open_runstore(store)
        self.leases = Leases(self.history, run.id, store)
        #: The records of steps this run executed, by key: a later hit on one names this run.
        self._made: dict[str, StepRun] = {}
        #: Hits whose producing run is still to be looked up (``name_producers``).
        self._unnamed: list[tuple[StepRun, dict[str, Any]]] = []

    # -- leases ---------------------------------------------------------------------------

    def lease(self, refs: dict[str, Any], key: str | None = None) -> None:
        """Lease a node's key and output refs before they are recorded (written in batches)."""
        self.leases.add(refs, key)

    def flush_leases(self, force: bool = True) -> None:
        """Write the buffered leases (without ``force``: only if they have waited a while)."""
        self.leases.flush(force)

    # -- records --------------------------------------------------------------------------

    def record(self, sid: str, step: str, map_index: int | None = None) -> StepRun:
        """A fresh record for a node or a map element."""
        return StepRun(sid, step, map_index=map_index, run_id=self.run.id, loader=self.load)

    def element(self, nid: str, index: int, sid: str) -> StepRun:
        """The record of element ``index`` of map node ``nid`` (made fresh)."""
        record = self.run.steps[sid] = self.record(sid, self.plan.invocations[nid].step.name,
                                                   map_index=index)
        return record

    def set(self, record: StepRun, status: Status) -> None:
        """Move a record to ``status``, telling the progress display."""
        if record.status != status:
            record.status = status
            if self._changed is not None:
                self._changed(record)

    def made(self, record: StepRun) -> None:
        """Note a step this run executed under a key: a hit on that key later in the run
        was produced by this run."""
        if record.key is not None and not record.cached:
            self._made[record.key] = record

    def served(self, hits: list[tuple[StepRun, dict[str, Any]]]) -> None:
        """Mark each record a cache hit of its refs. The producing run's metrics and logs
        (``records/producers``) are found ``KEYS_PER_QUERY`` hits at a time (one history
        query), and for the rest when the run ends (``name_producers``): a query per hit
        was a third of a warm step's cost. Until then a hit shows no metrics."""
        producers = _PRODUCERS or _producers()
        for record, refs in hits:
            record.cached = True
            here = self._made.get(record.key or "")
            if here is not None and producers.digests(here.output_refs) == producers.digests(refs):
                _name(record, producers.Producer(self.run.id, here.metrics, here.logs))
            else:
                self._unnamed.append((record, refs))
        if len(self._unnamed) >= producers.KEYS_PER_QUERY:
            self.name_producers()

    def name_producers(self) -> None:
        """Name the producing runs of the hits served so far (never an error: a hit whose
        producer cannot be found gets a note saying why)."""
        pending, self._unnamed = self._unnamed, []
        pending = [(record, refs) for record, refs in pending if record.cached]  # not rerun
        if pending:
            found = (_PRODUCERS or _producers()).find_producers(self.history, self.store.url,
                                   [(record.key, refs) for record, refs in pending])
            for (record, _), producer in zip(pending, found, strict=True):
                _name(record, producer)

    def unserved(self, record: StepRun) -> None:
        """Forget that a record was a hit: it runs again (its served output was corrupt)."""
        record.cached, record.cached_from = False, None
        record.metrics, record.logs = {}, ""

    def skip_after(self, nid: str, cause: str, stop: Callable[[str], bool]) -> list[str]:
        """Mark the nodes after ``nid`` skipped because ``cause`` failed, and return them;
        a node for which ``stop(node)`` is true is neither marked nor walked past."""
        skipped = downstream(nid, self.dependents, stop)
        for dep in skipped:
            record = self.run.steps[dep]
            record.error = skipped_because(cause)
            self.set(record, Status.SKIPPED)
        return skipped

    def finish_map(self, nid: str, parts: list[Any], cached: bool) -> GatherRef:
        """Record a map node's elements all done: its output is their refs, gathered."""
        record = self.run.steps[nid]
        ref = gathered(parts)
        record.set_output("output", ref)
        record.cached = cached
        if cached:  # a map served whole from one run names it; elements name their own
            self.name_producers()
            producers = {self.run.steps[element_id(nid, i)].cached_from
                         for i in range(len(parts))}
            record.cached_from = producers.pop() if len(producers) == 1 else None
        if record.finished is None:
            record.finished = time.time()
        self.set(record, Status.SUCCEEDED)
        return ref

    # -- values ---------------------------------------------------------------------------

    def load(self, value: Any) -> Any:
        """``value`` with every ref in it replaced by its value, read (and verified) once;
        raises ``CorruptArtifact``."""
        if self.leases.pending and not self._in_memory(value):
            self.leases.flush()  # a value read from the store is one the run counts on
        if self.leases.lost:
            self._raise_lost(value)
        return resolve_refs(value, self.store, self.memo)

    def _in_memory(self, value: Any) -> bool:
        """Whether every ref in ``value`` is of a value this run already holds."""
        memo, held = self.memo, [True]

        def check(ref: Any) -> None:
            held[0] = held[0] and all(d in memo for d in iter_digests(ref))

        map_refs(value, check)
        return held[0]

    def _raise_lost(self, value: Any) -> None:
        """Raise ``CorruptArtifact`` for a digest in ``value`` (all of them, if None) that gc
        removed before this run's lease on it was written: the loop recomputes it."""
        wanted: set[str] = set()
        if value is not None:
            map_refs(value, lambda ref: wanted.update(iter_digests(ref)))
        for digest in self.leases.lost:
            if value is None or digest in wanted:
                self.leases.lost.remove(digest)
                raise CorruptArtifact(
                    f"artifact {digest} in {self.store.url} was removed by gc before this "
                    "run's lease on it was written; its producer runs again", digest)

    def resolve_result(self, refs: dict[str, dict[str, Any]]) -> None:
        """Fill in the run's return structure (refs, then values) from the nodes' refs."""
        self.leases.flush()
        if self.leases.lost:
            self._raise_lost(None)
        result = substitute(self.plan.result, lambda out: refs.get(out.node, {}).get(out.name))
        self.run.result = result
        self.run._outputs = self.load(result)



def _name(record: StepRun, producer: Any) -> None:
    """Give a hit its producer's run id, metrics and logs (a ``producers.Producer``), or
    the note why it has none."""
    if producer is None:
        record.cached_from, record.metrics, record.logs = None, {}, ""
        record.note = record.note or (_PRODUCERS or _producers()).NO_PRODUCER_NOTE
    else:
        record.cached_from = producer.run_id
        record.metrics, record.logs = dict(producer.metrics), producer.logs
