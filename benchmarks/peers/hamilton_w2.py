"""W2 for Hamilton: ``make`` returns ``list(range(n))``, ``inc`` runs per element, ``total`` sums.

The per-element step is Hamilton's dynamic execution: a ``Parallelizable`` node expands the
list, ``inc`` runs once per element (a task each, cached per task), ``Collect`` gathers.
"""

from hamilton.htypes import Collect, Parallelizable


def make(n: int) -> list[int]:
    return list(range(n))


def element(make: list[int]) -> Parallelizable[int]:
    yield from make


def inc(element: int) -> int:
    return element + 1


def total(inc: Collect[int]) -> int:
    return sum(inc)
