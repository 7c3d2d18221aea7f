"""``ductwork gc``: remove artifacts and cache entries that no kept run and no running run uses.

Safe by construction, beside running runs and when killed at any point:

1. *Forget first.* Runs outside the kept set (the newest N and/or those newer than
   a date; runs still going are always kept; a run whose driver died is not) are
   forgotten in one transaction, with their step runs and leases. A kill after it
   leaves garbage, never a listed run without its outputs.
2. *Then sweep*, keys first, then objects, in batches. A file goes only if no
   remaining finished run refers to it, no live lease names it and it is older than
   the grace period. Each batch reads the live leases -- and the references of runs
   that finished since the sweep began -- and deletes, while holding the run store's
   write lock; runs write their leases under that lock too (``leases``). A run that
   used a file before its lease was visible finds out at its next lease write (the
   sweep generation moved) and recomputes what is gone, so it never records an
   output that is not there.

Why a grace period still: a lease is written by the run's driver, on this machine,
when it learns of refs. A step on a Dask worker writes its outputs and key before
the driver hears of them, and a run on another machine keeps its history (and
leases) in its own ``DUCTWORK_HOME`` when the store is remote. Until the driver's
lease is written, only the file's age protects it: so files younger than the grace
period (default 1 hour; ``--grace``) stay, whoever refers to them. The driver still
checks, after leasing, that what it leased exists, and recomputes it if not.
"""

from __future__ import annotations

import datetime as _dt
import time
from collections.abc import Callable, Iterable, Iterator

from ductwork.dsl.slotted import Frozen, fill
from ductwork.runtime.records.leases import DIGEST, KEY, live_refs
from ductwork.runtime.records.rows import driver_alive
from ductwork.runtime.records.runstore import open_runstore
from ductwork.runtime.status import Status
from ductwork.runtime.store.artifacts import open_store
from ductwork.runtime.store.refs import iter_digests
from ductwork.runtime.store.versions import folder, names, read_versions

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

GRACE_SECONDS = 3600.0
#: Temp files are never referenced: one that young may be a write in progress.
TMP_GRACE = 3600.0
BATCH = 256


class GcReport(Frozen):
    """What a collection removed (or would remove, for a dry run), and what it kept and why."""

    __slots__ = ("runs_removed", "objects_removed", "keys_removed", "bytes_freed", "dry_run",
                 "grace", "runs_kept", "kept_by_run", "kept_by_lease", "kept_by_grace")
    runs_removed: int
    objects_removed: int
    keys_removed: int
    bytes_freed: int
    dry_run: bool
    grace: float
    runs_kept: int
    kept_by_run: int
    kept_by_lease: int
    kept_by_grace: int

    def __init__(self, runs_removed: int, objects_removed: int, keys_removed: int,
                 bytes_freed: int, dry_run: bool, grace: float = GRACE_SECONDS,
                 runs_kept: int = 0, kept_by_run: int = 0, kept_by_lease: int = 0,
                 kept_by_grace: int = 0) -> None:
        fill(self, runs_removed, objects_removed, keys_removed, bytes_freed, dry_run, grace,
             runs_kept, kept_by_run, kept_by_lease, kept_by_grace)


def parse_duration(text: str) -> float:
    """Seconds in ``90s``, ``30m``, ``1h``, ``2d`` or a plain number of seconds."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    value = text.strip().lower()
    scale = units.get(value[-1:], None)
    number = value[:-1] if scale else value
    try:
        seconds = float(number) * (scale or 1)
    except ValueError:
        raise ValueError(f"not a duration: {text!r}; write 90s, 30m, 1h, 2d or seconds") from None
    if seconds < 0 or seconds != seconds:
        raise ValueError(f"a duration must be 0 or more, got {text!r}")
    return seconds


def format_duration(seconds: float) -> str:
    """The shortest of ``2d``, ``1h``, ``30m``, ``90s`` that says ``seconds`` exactly."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def collect(
    store: Any = None,
    keep_last: int | None = None,
    newer_than: _dt.datetime | float | None = None,
    dry_run: bool = False,
    grace: float = GRACE_SECONDS,
) -> GcReport:
    """Forget runs outside the kept set, then remove what no remaining run or live lease
    uses and the grace period does not cover."""
    artifacts = open_store(store)
    history = open_runstore(artifacts)
    cutoff = newer_than.timestamp() if isinstance(newer_than, _dt.datetime) else newer_than
    kept, dropped = [], []
    for i, run in enumerate(history.list_runs()):  # newest first
        keep = run.status == Status.RUNNING or (keep_last is None and cutoff is None)
        if keep_last is not None and i < keep_last:
            keep = True
        if cutoff is not None and (run.started or 0) >= cutoff:
            keep = True
        (kept if keep else dropped).append(run.id)
    if dropped and not dry_run:
        history.delete_runs(dropped)
    finished = history.finished_ids() - set(dropped)
    digests, keys = history.references(finished)
    digests |= snapshot_digests(artifacts)
    # A dry run did not forget the dropped runs: count them as if it had.
    sweep = _Sweep(artifacts, history, finished | set(dropped), digests, keys,
                   time.time() - grace, dry_run)
    if not dry_run:
        history.mark_sweep(going=True)
    try:
        sweep.run(KEY, artifacts.iter_keys(), artifacts.key_path, artifacts.delete_key)
        sweep.run(DIGEST, artifacts.iter_objects(), artifacts.object_path,
                  artifacts.delete_object)
    finally:
        if not dry_run:
            history.mark_sweep(going=False)
    if not dry_run:
        artifacts.clean_tmp(older_than=max(grace, TMP_GRACE))
    return GcReport(len(dropped), sweep.removed[DIGEST], sweep.removed[KEY], sweep.freed,
                    dry_run, grace, len(kept), sweep.kept["run"], sweep.kept["lease"],
                    sweep.kept["grace"])


class _Sweep:
    """One pass over the store's keys or objects, deleting in batches under the write lock."""

    def __init__(self, artifacts: Any, history: Any, finished: set[str], digests: set[str],
                 keys: set[str], young: float, dry_run: bool) -> None:
        self.artifacts, self.history, self.finished = artifacts, history, finished
        self.refs = {DIGEST: digests, KEY: keys}
        self.young, self.dry_run = young, dry_run
        self.removed = {DIGEST: 0, KEY: 0}
        self.kept = {"run": 0, "lease": 0, "grace": 0}
        self.freed = 0
        self._alive: dict[str, bool] = {}

    def run(self, kind: str, names: Iterable[str], path_of: Callable[[str], str],
            delete: Callable[[str], None]) -> None:
        """Sweep every name of ``kind``, a batch at a time."""
        batch: list[str] = []
        for name in names:
            if name in self.refs[kind]:
                self.kept["run"] += 1
            elif _modified(self.artifacts, path_of(name)) > self.young:
                self.kept["grace"] += 1
            else:
                batch.append(name)
                if len(batch) >= BATCH:
                    self._batch(kind, batch, path_of, delete)
                    batch = []
        if batch:
            self._batch(kind, batch, path_of, delete)

    def _batch(self, kind: str, names: list[str], path_of: Callable[[str], str],
               delete: Callable[[str], None]) -> None:
        with self.history.transaction() as db:
            # Under the write lock no run can write a lease: what is read here holds
            # until the deletions below are done.
            late = self.history.finished_ids(db) - self.finished
            digests, keys = self.history.references(late, db)
            self.refs[DIGEST] |= digests
            self.refs[KEY] |= keys
            self.finished |= late
            leased = live_refs(db, kind, names, self._live)
            for name in names:
                if name in self.refs[kind] or (kind == KEY and self._entry_kept(name)):
                    self.kept["run"] += 1
                elif name in leased:
                    self.kept["lease"] += 1
                else:
                    self.removed[kind] += 1
                    if kind == DIGEST:
                        self.freed += _size(self.artifacts, path_of(name))
                    if not self.dry_run:
                        delete(name)

    def _entry_kept(self, key: str) -> bool:
        """A cache entry all of whose objects a remaining run keeps stays: it still serves."""
        entry = self.artifacts.get_key(key)
        return entry is not None and all(
            d in self.refs[DIGEST] for r in entry.values() for d in iter_digests(r))

    def _live(self, driver: str | None) -> bool:
        if driver not in self._alive:
            self._alive[driver or ""] = driver_alive(driver)
        return self._alive[driver or ""]


def snapshot_digests(artifacts: Any) -> set[str]:
    """The objects that versions outside any run hold: roots, since no run refers to them
    and their bytes may exist nowhere else.

    ``datasets/<name>/<N>.json``'s ``snapshot`` (file -> digest, see ``data.snapshot``)
    and ``published/<name>/<N>.json``'s ``snapshot`` and ``sources`` refs (the pickled
    pipeline and its source texts, see ``publish.catalog``).
    """
    held: set[str] = set()
    for record in _version_records(artifacts, "datasets"):
        if isinstance(record.get("snapshot"), dict):
            held.update(str(d) for d in record["snapshot"].values())
    for record in _version_records(artifacts, "published"):
        for part in ("snapshot", "sources"):
            ref = record.get(part)
            if isinstance(ref, dict) and isinstance(ref.get("digest"), str):
                held.add(ref["digest"])
    return held


def _version_records(artifacts: Any, kind: str) -> Iterator[dict[str, Any]]:
    for name in names(artifacts, kind):
        yield from read_versions(artifacts, folder(artifacts, kind, name)).values()


def _modified(artifacts: Any, path: str) -> float:
    try:
        info = artifacts.fs.info(path)
    except FileNotFoundError:
        return 0.0
    stamp = info.get("mtime") or info.get("last_modified") or info.get("created") or 0.0
    if isinstance(stamp, _dt.datetime):
        return stamp.timestamp()
    return float(stamp)


def _size(artifacts: Any, path: str) -> int:
    try:
        return int(artifacts.fs.info(path).get("size") or 0)
    except FileNotFoundError:
        return 0
