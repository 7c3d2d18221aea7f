"""The states of runs and steps, one ``Enum`` whose values are the strings records keep.

A ``StrEnum``: a status compares equal to its string and is written as it into
SQLite and JSON, so records from before the enum read back unchanged.
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    """Where a run or a step is."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"
    #: A run recorded as running whose driver process is gone (killed, machine rebooted).
    DIED = "died"
