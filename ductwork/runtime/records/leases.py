"""Leases: what a running run uses, written down before gc could take it away.

A run *leases* each cache key and artifact digest it serves or writes, in the run
store (table ``leases``: kind, ref, run id). gc keeps whatever a *live* lease names:
a lease of a run still ``running`` whose driver (host:pid) is alive. A finished run
drops its leases in the transaction that records its outputs, which protect the
same things from then on; a dead run's leases protect nothing.

Writing one lease per hit would cost a transaction per step, so a run buffers its
leases (``Leases.add``) and writes them in one transaction: before it reads a value
from the store, before it is finished, and otherwise at most every ``FLUSH_EVERY``
seconds (``Leases.flush``) -- a transaction per engine turn made a cold inline
chain a third slower.
Between being used and being written a lease is not yet visible, so gc could
remove what it names. That is caught, not prevented: gc marks its sweep in a
counter (``sweeps.generation``: odd while a sweep runs, bumped at its start and its
end), and a flush reads the counter in the same transaction that writes its
leases. gc deletes files only while it holds the run store's write lock, having
read the live leases under that same lock; a flush waits for that lock. So when a
flush commits, every deletion decided without its leases is already done, and
every later one sees them. If the counter moved since the run's previous flush, or
a sweep is under way (odd), the run checks that each digest of this flush is still
in the store; a missing one is ``lost``, and the engine recomputes its producer
(as for a corrupt artifact). When no gc ran -- nearly always -- a flush costs one
small transaction and no file checks.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterable, Mapping

from ductwork.runtime.store.refs import stored_digests

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

#: Seconds a lease may wait in the buffer when nothing is about to be read from the store.
FLUSH_EVERY = 0.25

LEASE_SCHEMA = """
CREATE TABLE IF NOT EXISTS leases (
    kind TEXT NOT NULL,
    ref TEXT NOT NULL,
    run_id TEXT NOT NULL,
    PRIMARY KEY (kind, ref, run_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sweeps (
    id INTEGER PRIMARY KEY,
    generation INTEGER NOT NULL
);
"""

KEY, DIGEST = "key", "digest"

#: Indexes an older ductwork made that this one drops (``schema.add_missing_columns``):
#: ``leases_by_run`` was a second b-tree written per lease (a third of a lease's cost) for
#: the delete of a run's leases as it finishes, which now reads the table through, as
#: small as the runs running now (and the leases of killed ones, until gc forgets them).
DROPPED_INDEXES = ("leases_by_run",)


class Leases:
    """One run's leases on the keys and digests it uses, buffered and written in batches."""

    def __init__(self, history: Any, run_id: str, store: Any) -> None:
        self._history, self._run_id, self._store = history, run_id, store
        self._pending: list[tuple[str, str]] = []
        self._held: set[tuple[str, str]] = set()
        self._generation = history.sweep_generation()
        self._flushed = time.monotonic()
        self._warned = False
        #: Digests this run used that gc removed before their lease was written.
        self.lost: list[str] = []

    def add(self, refs: Mapping[str, Any], key: str | None = None) -> None:
        """Lease ``key`` and every digest of ``refs`` (written at the next ``flush``)."""
        pending = self._pending
        if key is not None:
            pending.append((KEY, key))
        for ref in refs.values():
            if ref is not None:
                # An inlined value has no file for gc to take: nothing to lease.
                for digest in stored_digests(ref):  # no generator: most refs have none
                    pending.append((DIGEST, digest))

    @property
    def pending(self) -> bool:
        """Whether leases wait in the buffer."""
        return bool(self._pending)

    def flush(self, force: bool = True) -> None:
        """Write the buffered leases; record in ``lost`` what gc removed before they were.

        Without ``force``, only when the buffer is older than ``FLUSH_EVERY``.
        """
        if not self._pending or (not force and time.monotonic() - self._flushed < FLUSH_EVERY):
            return
        self._flushed = time.monotonic()
        rows = [r for r in dict.fromkeys(self._pending) if r not in self._held]
        self._pending.clear()
        if not rows:
            return
        generation = self._history.take_leases(self._run_id, rows)
        self._held.update(rows)
        if generation is None and not self._warned:
            self._warned = True
            warnings.warn(
                f"run {self._run_id}: its leases could not be written to "
                f"{self._history.path}, so a gc running now may remove what this run uses; "
                "each such artifact is checked and recomputed if it is gone.",
                RuntimeWarning, stacklevel=3)
        if generation is None or generation != self._generation or generation % 2:
            self.lost.extend(ref for kind, ref in rows
                             if kind == DIGEST and not self._store.has(ref))
        self._generation = generation


def live_refs(db: Any, kind: str, refs: Iterable[str], alive: Any) -> set[str]:
    """Those of ``refs`` that a live lease names (``alive(driver)`` says whose runs are)."""
    found: set[str] = set()
    refs = list(refs)
    for start in range(0, len(refs), 500):  # under SQLite's bound on parameters
        chunk = refs[start:start + 500]
        marks = ", ".join("?" for _ in chunk)
        for ref, driver in db.execute(
            "SELECT l.ref, r.driver FROM leases l JOIN runs r ON r.id = l.run_id "
            f"WHERE l.kind = ? AND l.ref IN ({marks}) AND r.status = 'running'",
            (kind, *chunk),
        ):
            if ref not in found and alive(driver):
                found.add(ref)
    return found
