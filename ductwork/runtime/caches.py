"""Every module-level cache of the runtime, in one place: bounded, named, clearable.

A module that memoizes something per process (fingerprints, parsed sources,
opened stores, unpickled step specs, ...) asks here for a ``Cache`` by name and
a bound, instead of keeping a bare dict. Each cache evicts its oldest entry when
full, so a long-lived process (a notebook, a server, a Dask worker) never grows
without limit, and ``clear_all()`` empties every one of them -- the tests call
it between tests instead of reaching into private dicts. A ``Memo`` is the same
promise for a hot path's pure results (a warm hit's parsed entry, key, basis):
read as a plain dict, without a lock or recency, and emptied whole when full.

Registries (serializers, hash handlers) are not caches: they hold what users
registered and are never evicted; they live with their concept.
"""

from __future__ import annotations

import _thread  # threading's locks, without threading (~2.6M instructions and an exit hook)
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Generic, TypeVar

    K = TypeVar("K", bound=Hashable)
    V = TypeVar("V")
    _Generic = Generic[K, V]
else:
    _Generic = object  # generic to type checkers only: typing costs a process ~12M instructions


_MISSING: Any = object()


class Cache(_Generic):
    """A thread-safe mapping that keeps at most ``maxsize`` entries, evicting the least
    recently used; ``on_evict(value)`` runs for each value it drops or clears."""

    def __init__(self, name: str, maxsize: int,
                 on_evict: Callable[[V], None] | None = None) -> None:
        if maxsize < 1:
            raise ValueError(f"cache {name!r}: maxsize must be >= 1, got {maxsize}")
        self.name = name
        self.maxsize = maxsize
        self._on_evict = on_evict
        self._data: OrderedDict[K, V] = OrderedDict()
        self._lock = _thread.allocate_lock()

    def __repr__(self) -> str:
        return f"<Cache {self.name}: {len(self._data)}/{self.maxsize}>"

    def get(self, key: K, default: Any = None) -> Any:
        """The value under ``key`` (now the most recently used), or ``default``."""
        with self._lock:
            value = self._data.get(key, _MISSING)
            if value is _MISSING:
                return default
            self._data.move_to_end(key)
            return value

    def put(self, key: K, value: V) -> V:
        """Keep ``value`` under ``key``, dropping the oldest entry when full; return it."""
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            dropped = [self._data.popitem(last=False)[1]
                       for _ in range(len(self._data) - self.maxsize)]
        self._evicted(dropped)
        return value

    def setdefault(self, key: K, make: Callable[[], V]) -> V:
        """The value under ``key``; made by ``make()`` and kept when there is none."""
        value = self.get(key, _MISSING)
        if value is _MISSING:
            value = self.put(key, make())
        return value

    def pop(self, key: K, default: Any = None) -> Any:
        """Remove and return the value under ``key`` (not counted as an eviction)."""
        with self._lock:
            return self._data.pop(key, default)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __len__(self) -> int:
        return len(self._data)

    def __iter__(self) -> Iterator[K]:
        with self._lock:
            return iter(list(self._data))

    def values(self) -> list[V]:
        """A snapshot of the values, oldest first."""
        with self._lock:
            return list(self._data.values())

    def clear(self) -> None:
        """Drop every entry."""
        with self._lock:
            dropped = list(self._data.values())
            self._data.clear()
        self._evicted(dropped)

    def _evicted(self, values: list[V]) -> None:
        if self._on_evict is not None:
            for value in values:
                self._on_evict(value)


class Memo(dict):  # type: ignore[type-arg]
    """A bounded memo of pure results on a hot path: reads are a plain dict's ``get`` (no
    lock, no recency: a ``Cache.get`` costs a microsecond), and it is emptied whole when
    full, as what it holds is re-made in a few microseconds."""

    __slots__ = ("name", "maxsize")

    def __init__(self, name: str, maxsize: int) -> None:
        super().__init__()
        self.name, self.maxsize = name, maxsize

    def put(self, key: Any, value: Any) -> Any:
        """Keep ``value`` under ``key`` (emptying the memo first when full); return it."""
        if len(self) >= self.maxsize:
            self.clear()
        self[key] = value
        return value


_ALL: dict[str, Any] = {}  # name -> Cache or Memo
_ALL_LOCK = _thread.allocate_lock()


def memo(name: str, maxsize: int) -> Memo:
    """The process-wide memo called ``name``, made on first use (one per name)."""
    with _ALL_LOCK:
        found = _ALL.get(name)
        if found is None:
            found = _ALL[name] = Memo(name, maxsize)
        return found


def cache(name: str, maxsize: int, on_evict: Callable[[Any], None] | None = None
          ) -> Cache[Any, Any]:
    """The process-wide cache called ``name``, made on first use (one per name)."""
    with _ALL_LOCK:
        found = _ALL.get(name)
        if found is None:
            found = _ALL[name] = Cache(name, maxsize, on_evict)
        return found


def all_caches() -> dict[str, Cache[Any, Any] | Memo]:
    """Every cache made so far, by name."""
    with _ALL_LOCK:
        return dict(_ALL)


def clear_all() -> None:
    """Empty every cache (the tests do, between tests)."""
    for made in all_caches().values():
        made.clear()
