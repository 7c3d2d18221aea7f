"""Run history in SQLite: runs, step runs, their cache keys and key components, leases.

The database sits beside a local artifact store (``<store>/runs.sqlite``); for
a remote store it lives under ``DUCTWORK_HOME`` (default ``~/.ductwork``).
WAL mode lets several processes run pipelines on one store at once; each run
is written in two transactions (begun, finished), so the per-step cost is a
row in a batch, not a commit. While it goes, a run also writes its leases
(``leases``: what gc must not take from under it), a batch at a time.

The cache index proper (key -> output digests) lives with the artifacts
(``ArtifactStore.put_key``), so every machine that shares a store shares its
cache; this database keeps each step run's key and the components of that key,
which is what ``why`` compares.

History never stops work: a damaged file is set aside and a new one started
(``opening``); a history that cannot be written (a full disk) is warned about and
the run goes on, its result and step errors reaching the user as they are; a row
that cannot be read is reported by run id and left out of a listing. Read-only
commands open an existing file read-only (``open_history``) and create nothing.

Each process keeps one ``RunStore`` per SQLite file in a bounded cache
(``caches``). Dropping one from the cache does not close it under a caller
still using it (a run in progress, a ``Run`` whose ``why`` reads history): its
connection closes when the last reference goes (``weakref.finalize``). An
in-memory history (``memory://`` stores) is not a cache but the only copy, so
it is held until ``forget_runstore``.
"""

from __future__ import annotations

import _sqlite3 as sqlite3  # not the sqlite3 package: its dbapi2 imports datetime (~6M)
import _thread  # threading's locks, without threading (~2.6M instructions and an exit hook)
import contextlib
import itertools
import json
import os
import warnings
import weakref

from ductwork.runtime import caches
from ductwork.runtime.records import rows
from ductwork.runtime.records.finishing import write_finished
from ductwork.runtime.records.opening import connect_read_only, damage_of, is_damage, set_aside
from ductwork.runtime.records.run import Run
from ductwork.runtime.records.schema import SCHEMA, add_missing_columns
from ductwork.runtime.records.sqlite import connect, write_transaction

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

# Which process drives a run (read at write time, so a test can stand in another pid).
_DRIVER = rows.DRIVER


# Reopening a file-backed store costs a connect, so a generous bound loses nothing.
_OPEN = caches.cache("records.run_stores", maxsize=64)
_OPENINGS = itertools.count()
_IN_MEMORY: dict[str, RunStore] = {}  # by store URL; the only copy of that history
_OPEN_LOCK = _thread.allocate_lock()  # one RunStore per handle, even when threads race to open


def runstore_path(store: Any) -> str:
    """The SQLite file for an artifact store: beside it if local, in memory for ``memory://``,
    else in the ductwork home."""
    if store.is_local:
        return os.path.join(store.root, "runs.sqlite")
    if store.in_memory:
        return ":memory:"
    # A remote store's history is in the home folder (a local one's is beside the store).
    from ductwork.runtime.config import ductwork_home

    return os.path.join(ductwork_home(), "runs.sqlite")


def open_runstore(store: Any) -> RunStore:
    """Return the (per-process, shared) run store for an artifact store."""
    path = runstore_path(store)
    # An in-memory history belongs to its in-memory store, one per store URL.
    with _OPEN_LOCK:
        if path == ":memory:":
            found = _IN_MEMORY.get(store.url)
            if found is None:
                found = _IN_MEMORY[store.url] = RunStore(path)
            return found
        found = _OPEN.get(path)
        if found is None:
            found = _OPEN.put(path, RunStore(path))
        return found


def open_history(store: Any, writable: bool | None = None) -> RunStore | None:
    """The run store to read a store's history from, or None when it has none.

    Creates nothing: a history file that does not exist is None. One in a directory this
    process cannot write (or with ``writable=False``) is opened read-only; a damaged one
    that cannot be set aside is reported and read as empty (None).
    """
    path = runstore_path(store)
    if path == ":memory:":
        return open_runstore(store)
    if not os.path.exists(path):
        return None
    if writable is None:
        writable = os.access(os.path.dirname(path) or ".", os.W_OK) and (
            os.path.isdir(path) or os.access(path, os.W_OK))
    if writable:
        return open_runstore(store)
    damage = damage_of(path)
    if damage is not None:
        warnings.warn(f"run history {path} is damaged ({damage}) and cannot be set aside "
                      "here (read-only); no runs are listed from it.", RuntimeWarning,
                      stacklevel=3)
        return None
    with _OPEN_LOCK:
        found = _OPEN.get(path + "?ro")
        if found is None:
            found = _OPEN.put(path + "?ro", RunStore(path, readonly=True))
        return found


def forget_runstore(store: Any) -> None:
    """Close and drop this process's handles on a store's run history (frees ``memory://``)."""
    path = runstore_path(store)
    with _OPEN_LOCK:
        if path == ":memory:":
            opened = [_IN_MEMORY.pop(store.url, None)]
        else:
            opened = [_OPEN.pop(path), _OPEN.pop(path + "?ro")]
    for handle in opened:
        if handle is not None:
            handle.close()


class RunStore:
    """Runs and step runs in one SQLite file."""

    def __init__(self, path: str | os.PathLike[str], readonly: bool = False) -> None:
        self.path = os.fspath(path)
        self.readonly = readonly
        self._lock = _thread.allocate_lock()
        #: Which opening of a history file this is: a file set aside and started anew is
        #: another history, though at the same path (what ``producers`` remembers is per
        #: opening).
        self.opening = next(_OPENINGS)
        if readonly:
            self._db = connect_read_only(self.path)
        elif self.path == ":memory:":
            self._db = self._connect()
        else:
            os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
            if damage_of(self.path) is not None:
                set_aside(self.path)
            inode = _inode(self.path)
            try:
                self._db = self._connect()
            except sqlite3.DatabaseError as exc:
                if not is_damage(exc):
                    raise
                set_aside(self.path, f"SQLite cannot read it ({exc})", inode)
                self._db = self._connect()
        self._select = self._selects()
        #: run id -> (the row begin_run wrote, its graph and params): see finish_run.
        self._begun: dict[str, tuple[Any, Any, Any]] = {}
        # Closes the connection when this object is dropped (or on close()); it holds the
        # connection, not self, so it does not keep self alive.
        self._close = weakref.finalize(self, self._db.close)

    def _connect(self) -> sqlite3.Connection:
        return connect(self.path, SCHEMA, foreign_keys=True, upgrade=add_missing_columns)

    def _selects(self) -> dict[str, str]:
        """The column lists to select; a column an older file lacks (read-only) reads NULL."""
        tables = (("runs", rows.RUN_COLUMNS), ("steps", rows.STEP_COLUMNS))
        if not self.readonly:  # opened writable: brought up to SCHEMA, every column is there
            return {table: ", ".join(columns) for table, columns in tables}
        out = {}
        for table, columns in tables:
            have = {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}
            out[table] = ", ".join(c if c in have else "NULL" for c in columns)
        return out

    def _write(self, statements: list[tuple[str, Any]]) -> None:
        with self.transaction() as db:
            for sql, args in statements:
                db.executemany(sql, args)

    def transaction(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        """Hold the database's write lock: commit on success, roll back on an error."""
        return write_transaction(self._db, self._lock)

    def _write_softly(self, run: Run, what: str, statements: list[tuple[str, Any]]) -> bool:
        """Write, or warn that history could not be written and why: a run never stops
        for its history (a full disk, a read-only or locked file)."""
        try:
            self._write(statements)
            return True
        except (sqlite3.Error, OSError) as exc:
            self._unwritten(run, what, exc)
            return False

    def _unwritten(self, run: Run, what: str, exc: BaseException) -> None:
        warnings.warn(
            f"run {run.id}: its history could not be written to {self.path} ({exc}); "
            f"{what} Free space or fix the file; `ductwork runs` will not show this run "
            "as it ended.", RuntimeWarning, stacklevel=4)

    def begin_run(self, run: Run) -> None:
        """Record a run as started (a warning, not an error, if history cannot be written)."""
        row = rows.run_row(run, _DRIVER)
        if self._write_softly(run, "the run goes on.", [
                (rows.insert("runs", rows.RUN_COLUMNS), [row])]):
            # What finish_run compares with: it updates only what changed (the graph, a
            # 50-step chain's largest value, is neither encoded nor written again).
            self._begun[run.id] = (row, run.graph, run.params)

    def finish_run(self, run: Run) -> None:
        """Record a run's final state and all its step runs, and drop its leases, in one
        transaction (a warning, not an error, if history cannot be written)."""
        begun = self._begun.pop(run.id, None)
        steps = [rows.step_row(run.id, s) for s in run.steps.values()]
        try:
            with self._lock:
                write_finished(self._db, run, begun, steps, _DRIVER)
        except (sqlite3.Error, OSError) as exc:
            self._unwritten(run, "its result and step errors are returned as they are.", exc)

    def get_run(self, run_id: str) -> Run | None:
        """Load one run with its step runs, or None; a step row that cannot be read is
        left out with a warning."""
        with self._lock:
            row = self._db.execute(
                f"SELECT {self._select['runs']} FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None:
                return None
            steps = self._db.execute(
                f"SELECT {self._select['steps']} FROM steps WHERE run_id = ? ORDER BY rowid",
                (run_id,),
            ).fetchall()
        try:
            run = rows.run_from_row(row)
        except rows.BAD_ROW as exc:
            raise LookupError(f"run {run_id} in {self.path} cannot be read: its history row "
                              f"is damaged ({type(exc).__name__}: {exc}).") from None
        for step_row in steps:
            try:
                record = rows.step_from_row(step_row)
            except rows.BAD_ROW as exc:
                self._bad_row(f"run {run_id}, step {step_row[1]}", exc)
                continue
            run.steps[record.id] = record
        return run

    def list_runs(self, pipeline: str | None = None, limit: int | None = None) -> list[Run]:
        """Runs, newest first, without their step runs; a row that cannot be read is left
        out with a warning naming its run."""
        sql = f"SELECT {self._select['runs']} FROM runs"
        args: list[Any] = []
        if pipeline is not None:
            sql += " WHERE pipeline = ?"
            args.append(pipeline)
        sql += " ORDER BY started DESC, id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        with self._lock:
            found = self._db.execute(sql, args).fetchall()
        listed = []
        for row in found:
            try:
                listed.append(rows.run_from_row(row))
            except rows.BAD_ROW as exc:
                self._bad_row(f"run {row[0]}", exc)
        return listed

    def _bad_row(self, what: str, exc: BaseException) -> None:
        warnings.warn(f"{what} in {self.path}: its history row cannot be read "
                      f"({type(exc).__name__}: {exc}); it is left out, and the file is kept "
                      "as it is.", RuntimeWarning, stacklevel=3)

    def previous_step(self, pipeline: str, step_id: str, before: float, exclude_run: str
                      ) -> tuple[str, str | None, dict[str, str] | None] | None:
        """The latest earlier run of this step that has a key: (run id, key, components)."""
        with self._lock:
            row = self._db.execute(
                "SELECT s.run_id, s.cache_key, s.components FROM steps s JOIN runs r "
                "ON r.id = s.run_id WHERE r.pipeline = ? AND s.id = ? AND s.run_id != ? "
                "AND s.cache_key IS NOT NULL AND r.started <= ? "
                "ORDER BY r.started DESC LIMIT 1",
                (pipeline, step_id, exclude_run, before),
            ).fetchone()
        if row is None:
            return None
        try:
            return row[0], row[1], json.loads(row[2]) if row[2] else None
        except ValueError:
            return row[0], row[1], None

    def read(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """The rows a query selects (for readers kept in their own modules: ``producers``)."""
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    # -- what gc reads and writes ----------------------------------------------------------

    def finished_ids(self, db: sqlite3.Connection | None = None) -> set[str]:
        """The ids of runs no longer running (``db``: inside a ``transaction``)."""
        sql = "SELECT id FROM runs WHERE status != 'running'"
        if db is not None:
            return {r for (r,) in db.execute(sql)}
        with self._lock:
            return {r for (r,) in self._db.execute(sql)}

    def references(self, run_ids: set[str], db: sqlite3.Connection | None = None
                   ) -> tuple[set[str], set[str]]:
        """Every artifact digest and cache key the given runs' steps and results refer to
        (``db``: inside a ``transaction``); an unreadable row refers to nothing."""
        from ductwork.runtime.records.references import references_of  # gc's: not a run's

        if db is None:
            with self._lock:
                return references_of(self._db, run_ids)
        return references_of(db, run_ids)

    def delete_runs(self, run_ids: list[str]) -> None:
        """Forget runs, their step runs and their leases, in one transaction."""
        ids = [(r,) for r in run_ids]
        # Leases have no index by run: one pass over the table per chunk of runs.
        chunks = [run_ids[i:i + 500] for i in range(0, len(run_ids), 500)]
        self._write([("DELETE FROM steps WHERE run_id = ?", ids),
                     *((f"DELETE FROM leases WHERE run_id IN ({', '.join('?' * len(c))})",
                        [c]) for c in chunks),
                     ("DELETE FROM runs WHERE id = ?", ids)])
        from ductwork.runtime.records.producers import forget_producers  # gc's: not a run's

        forget_producers()  # a removed run must not be named as a hit's producer again

    def take_leases(self, run_id: str, leased: list[tuple[str, str]]) -> int | None:
        """Write a run's leases; return gc's sweep generation as of that write, or None
        when they could not be written."""
        try:
            with self.transaction() as db:
                db.executemany("INSERT OR IGNORE INTO leases (kind, ref, run_id) "
                               "VALUES (?, ?, ?)", [(k, r, run_id) for k, r in leased])
                return _generation(db)
        except (sqlite3.Error, OSError):
            return None

    def sweep_generation(self) -> int | None:
        """gc's sweep generation: odd while a sweep goes; None if it cannot be read."""
        try:
            with self._lock:
                return _generation(self._db)
        except sqlite3.Error:
            return None

    def mark_sweep(self, going: bool) -> None:
        """Say a sweep starts (the generation becomes the next odd number) or ended (even)."""
        with self.transaction() as db:
            now = _generation(db)
            after = (now + 1 if now % 2 == 0 else now + 2) if going else now + (now % 2)
            db.execute("INSERT OR REPLACE INTO sweeps (id, generation) VALUES (0, ?)", (after,))

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._close()


def _inode(path: str) -> int | None:
    try:
        return os.stat(path).st_ino
    except FileNotFoundError:
        return None


def _generation(db: sqlite3.Connection) -> int:
    row = db.execute("SELECT generation FROM sweeps WHERE id = 0").fetchone()
    return int(row[0]) if row else 0
