"""Step states and logs of a run while it runs, for the studio's live run and step pages.

A run the server started runs in a child process (``server.child``), which passes a
``runtime.ui.live.LiveProgress`` as its progress display: it writes the steps' states
to ``<server state dir>/live/<run_id>.json``, throttled, while the run runs; beside
it, ``<run_id>/`` holds each running step's output as it is printed
(``run_pipeline(logs=...)``, ``runtime.engine.livelog``). ``ductwork run`` on a local
store writes the same file into ``<store>/live/`` -- the same folder, for a local store
(``live_dir``) -- so its runs show live too. Both go when the run is recorded.

``read_live`` reads the states (None when there are none: the run ended, or it runs
where this server cannot see); ``read_log`` a running step's output from an offset.
A crashed run's file stays behind, but the run page reads it only while the run
history says the run's driver is alive (``records.rows``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ductwork.runtime.ui.live import LiveProgress, live_file

__all__ = ["LiveProgress", "live_dir", "live_progress", "log_path", "read_live", "read_log"]

LOG_TAIL = 256 * 1024  # a step page shows at most this much of a running step's log


def live_dir(state_path: Path) -> Path:
    """Where the live files of the server whose state file is ``state_path`` go."""
    return state_path.parent / "live"


def live_progress(store: Any, run_id: str) -> Any:
    """The live display of a run the server started on ``store`` (a URL or path)."""
    from ductwork.runtime.store.artifacts import open_store
    from ductwork.server.state import state_path

    return LiveProgress(live_file(live_dir(state_path(open_store(store))), run_id))


def read_live(state_path: Path, run_id: str) -> dict[str, dict[str, Any]] | None:
    """The step states the run's child last wrote, or None."""
    try:
        found = json.loads(live_file(live_dir(state_path), run_id).read_text())
    except (OSError, ValueError):
        return None
    steps = found.get("steps") if isinstance(found, dict) else None
    return steps if isinstance(steps, dict) else None


def log_path(state_path: Path, run_id: str, step_id: str) -> Path:
    """Where step run ``step_id`` of run ``run_id`` writes its output while it runs."""
    from ductwork.runtime.engine.livelog import log_file

    return Path(log_file(str(live_file(live_dir(state_path), run_id).with_suffix("")), step_id))


def read_log(path: Path, offset: int = 0, limit: int = LOG_TAIL) -> tuple[str, int] | None:
    """What was written to a running step's log from ``offset`` (at most its last ``limit``
    bytes), and the offset after it; None when there is no such file."""
    try:
        with open(path, "rb") as f:
            end = f.seek(0, os.SEEK_END)
            start = max(offset, end - limit) if end > offset else end
            f.seek(start)
            data = f.read(end - start)
    except OSError:
        return None
    cut = _whole(data)  # the next read starts with a character cut here, whole
    return data[:cut].decode("utf-8", "replace"), start + cut


def _whole(data: bytes) -> int:
    """How many of ``data``'s bytes end on a whole UTF-8 character."""
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte & 0xC0 != 0x80:  # ASCII or the first byte of a character
            need = 1 if byte < 0x80 else 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
            return len(data) if back >= need else len(data) - back
    return len(data)
