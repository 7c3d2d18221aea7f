"""Progress of a run as it goes: the interface the scheduler reports to.

``make_progress`` picks a display; ``NullProgress`` shows nothing.
"""

from __future__ import annotations

from typing import Any


class NullProgress:
    """Shows nothing (output is not a terminal, or ``progress=False``)."""

    def started(self, run: Any) -> None:
        """The run has begun; ``run.steps`` holds every node, pending."""

    def changed(self, record: Any) -> None:
        """A step run changed state (running, succeeded, failed, skipped, cached)."""

    def finished(self, run: Any) -> None:
        """The run is over; ``run.status`` is final."""


def make_progress(progress: bool | None) -> Any:
    """Return the display for this run: None means 'when output is a terminal'."""
    return NullProgress()
