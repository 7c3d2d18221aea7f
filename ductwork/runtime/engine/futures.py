"""Finished futures, and waiting on futures, without importing ``concurrent.futures``.

A backend that runs a job inside ``submit`` (inline) has its result before it
returns. Wrapping that in a ``concurrent.futures.Future`` would import that package
-- and with it ``logging``, ``traceback`` and ``string``, about a tenth of a first
run's fixed cost -- in every process, just to hand a value back. ``Done`` is a
future that is born finished; ``wait`` returns the ``Done`` ones at once and hands
any others to ``concurrent.futures.wait``, which is imported only then (a backend
with real futures, a process pool or a cluster, has imported it already).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Generic, TypeVar

    T = TypeVar("T")
    _Generic = Generic[T]
else:
    _Generic = object  # generic to type checkers only: typing costs a process ~12M instructions

__all__ = ["FIRST_COMPLETED", "Done", "wait"]

#: The value of ``concurrent.futures.FIRST_COMPLETED``, which ``wait`` passes on.
FIRST_COMPLETED = "FIRST_COMPLETED"


class Done(_Generic):
    """A future that holds its result from the start: the methods of a finished ``Future``."""

    __slots__ = ("_result",)

    def __init__(self, result: T) -> None:
        self._result = result

    def __repr__(self) -> str:
        return f"<Done result={type(self._result).__name__}>"

    def result(self, timeout: float | None = None) -> T:
        """The result, at once."""
        return self._result

    def exception(self, timeout: float | None = None) -> BaseException | None:
        """None: a ``Done`` never holds an exception."""
        return None

    def done(self) -> bool:
        """True."""
        return True

    def running(self) -> bool:
        """False."""
        return False

    def cancelled(self) -> bool:
        """False."""
        return False

    def cancel(self) -> bool:
        """False: a finished future cannot be cancelled."""
        return False

    def add_done_callback(self, fn: Callable[[Any], object]) -> None:
        """Call ``fn(self)`` now, as a finished ``Future`` does."""
        fn(self)


def wait(futures: Iterable[Any], timeout: float | None = None,
         return_when: str = FIRST_COMPLETED) -> tuple[set[Any], set[Any]]:
    """``concurrent.futures.wait`` over futures that may include ``Done`` ones."""
    pending = set(futures)
    done = {f for f in pending if type(f) is Done}
    others = pending - done
    if not others or (done and return_when == FIRST_COMPLETED):
        return done, others
    from concurrent.futures import wait as wait_for

    finished, not_done = wait_for(others, timeout, return_when)
    return done | finished, not_done
