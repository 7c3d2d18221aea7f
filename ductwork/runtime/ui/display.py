"""What every progress display shares: the interface, a drawing clock, and failing safe.

``NullProgress`` is the interface the engine reports to, showing nothing.
``_Display`` implements the progress interface (``started``, ``changed``,
``finished``) by moving counters in a ``progress.Tally`` -- O(1) per event --
and leaves drawing to a subclass's ``_open`` and ``_close``. A display passed
to a second run starts over with a fresh tally. An error while opening or
closing turns the display off: progress never fails a run.

``_Ticker`` is the clock of the displays that redraw on their own: it calls
``tick`` every ``interval`` seconds on a daemon thread (named
``ductwork-progress``) and stops when the tick raises or when it is stopped.

The displays (``terminal``, ``jupyter``) import this module and ``tally``,
never ``progress``, which picks among them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["NullProgress", "isatty"]


class NullProgress:
    """Shows nothing (output is not a terminal, or ``progress=False``)."""

    def started(self, run: Any) -> None:
        """The run has begun; ``run.steps`` holds every node, pending."""

    def changed(self, record: Any) -> None:
        """A step run changed state (running, succeeded, failed, skipped, cached)."""

    def finished(self, run: Any) -> None:
        """The run is over; ``run.status`` is final."""


def isatty(stream: Any) -> bool:
    """Whether ``stream`` is a terminal (False when it cannot say)."""
    try:
        return bool(stream is not None and stream.isatty())
    except Exception:
        return False


class _Ticker:
    """Call ``tick`` every ``interval`` seconds on a daemon thread until stopped."""

    def __init__(self, interval: float, tick: Callable[[], None]) -> None:
        # Here: a run that shows nothing (NullProgress) never loads threading.
        import threading

        self._interval = interval
        self._tick = tick
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="ductwork-progress",
                                        daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._tick()
            except Exception:
                return

    def stop(self) -> None:
        import threading  # loaded by __init__

        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=2)


class _Display(NullProgress):
    """Counts into a ``Tally``; subclasses draw it. Errors in drawing turn the display off."""

    def __init__(self, max_listed: int = 8) -> None:
        # Here, not at the top: a run that shows nothing (NullProgress) never counts.
        from ductwork.runtime.ui.tally import Tally

        self.tally = Tally(max_listed)
        self._on = False

    def started(self, run: Any) -> None:
        # A display passed to a second run starts over.
        self.tally = type(self.tally)(self.tally.max_listed)
        self.tally.start(run)
        try:
            self._open()
            self._on = True
        except Exception:
            self._on = False

    def changed(self, record: Any) -> None:
        self.tally.change(record)

    def finished(self, run: Any) -> None:
        self.tally.finish(run)
        if self._on:
            self._on = False
            with contextlib.suppress(Exception):
                self._close()

    def _open(self) -> None:
        raise NotImplementedError

    def _close(self) -> None:
        raise NotImplementedError
