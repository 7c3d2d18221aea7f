"""A run's end in its history: its row brought up to date and its step runs written.

``RunStore.begin_run`` wrote the run's row; finishing updates only the columns that
changed (status, result, finish time, git state) rather than writing the row whole
again -- an INSERT OR REPLACE deleted the old row and wrote the graph, a long chain's
largest value, a second time -- and writes every step row and drops the run's leases,
in one transaction.
"""

from __future__ import annotations

import _sqlite3 as sqlite3  # not the sqlite3 package: its dbapi2 imports datetime (~6M)

from ductwork.runtime.records import rows
from ductwork.runtime.records.run import Run

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def write_finished(db: sqlite3.Connection, run: Run, begun: tuple[Any, Any, Any] | None,
                   steps: list[tuple[Any, ...]], driver: str) -> None:
    """Write a finished run's row, its ``steps`` rows and drop its leases, in one
    transaction (the caller holds the connection's lock); ``begun``: the row begin_run
    wrote with its graph and params, or None when it wrote none."""
    # A run's graph and params are set as it begins and not changed after: the same
    # objects have the same JSON.
    same = begun is not None and begun[1] is run.graph and begun[2] is run.params
    row = rows.run_row(run, driver, *(begun[0][5:7] if same else ()))  # type: ignore[index]
    # Each step row's foreign key is the run row this transaction writes: checking it
    # per row cost a search of ``runs`` each. (A no-op inside a transaction: set first.)
    db.execute("PRAGMA foreign_keys=OFF")
    try:
        db.execute("BEGIN IMMEDIATE")
        try:
            whole = True
            if begun is not None:
                changed = [(c, v) for c, v, was in zip(rows.RUN_COLUMNS, row, begun[0],
                                                       strict=True)
                           if v != was or type(v) is not type(was)]
                whole = not changed or db.execute(
                    f"UPDATE runs SET {', '.join(f'{c} = ?' for c, _ in changed)} "
                    "WHERE id = ?", (*(v for _, v in changed), run.id)).rowcount != 1
            if whole:  # not begun here, or its row is gone: written whole
                db.execute(rows.insert("runs", rows.RUN_COLUMNS), row)
            db.executemany(rows.insert("steps", rows.STEP_COLUMNS), steps)
            db.execute("DELETE FROM leases WHERE run_id = ?", (run.id,))
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
    finally:
        db.execute("PRAGMA foreign_keys=ON")
