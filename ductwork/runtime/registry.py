"""Handlers by type, with those for heavy libraries registered on first sight of their types.

A ``TypeRegistry`` maps classes to handlers (serializers, say); a lookup walks a value's
MRO and takes the first class that has one. Handlers for heavy libraries (numpy, pandas)
must not be registered when ductwork is imported, since that would import the library:
a *lazy registration* names the library's top-level package instead, and runs once, the
first time a class from that package appears in a looked-up MRO -- which means the
package is imported already. This is dask's ``normalize_token.register_lazy``, and
``LazyRegistrations`` is that mechanism on its own, for a registry whose table is
elsewhere (the hasher's is ``keys/dispatch``'s ``Dispatcher``).

Registries are not caches (see ``caches``): they hold what ductwork and its users
registered and never drop an entry. Tests undo what they registered with ``snapshot()``
and ``restore()``, not by reaching into private dicts.
"""

from __future__ import annotations

import _thread  # threading's locks, without threading (~2.6M instructions and an exit hook)
from collections.abc import Callable

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Generic, TypeVar

    V = TypeVar("V")
    _Generic = Generic[V]
else:
    _Generic = object  # generic to type checkers only: typing costs a process ~12M instructions

__all__ = ["LazyRegistrations", "TypeRegistry"]


class LazyRegistrations:
    """Registrations that run once, on first sight of a class from their package."""

    def __init__(self) -> None:
        self._pending: dict[str, list[Callable[[], None]]] = {}
        self._running: set[str] = set()
        self._lock = _thread.RLock()

    def add(self, package: str, registration: Callable[[], None]) -> None:
        """Run ``registration()`` when a class from top-level ``package`` is first seen."""
        with self._lock:
            self._pending.setdefault(package, []).append(registration)

    def load(self, cls: type) -> None:
        """Run the pending registrations of every package in ``cls``'s MRO."""
        pending = self._pending
        if not pending:  # the common case once the libraries in use have been seen
            return
        for base in cls.__mro__:
            module = base.__module__
            package = module.partition(".")[0] if isinstance(module, str) else ""
            if package in pending:
                self._run(package)

    def _run(self, package: str) -> None:
        # The package stays pending until its registrations have run, and they run under
        # the lock: another thread that sees it pending waits here for the handlers.
        with self._lock:
            registrations = self._pending.get(package)
            if registrations is None or package in self._running:
                return  # done by another thread, or a registration looking up its own types
            self._running.add(package)
            try:
                for registration in list(registrations):
                    registration()
                    registrations.remove(registration)
            finally:
                self._running.discard(package)
            if not registrations:
                del self._pending[package]


class TypeRegistry(_Generic):
    """Handlers by class, found along a value's MRO, lazily registered for heavy libraries."""

    def __init__(self, name: str, handlers: dict[type, V] | None = None) -> None:
        self.name = name
        self._handlers: dict[type, V] = dict(handlers or {})
        self._lazy = LazyRegistrations()
        self._from_lazy: set[type] = set()  # kept by restore(): their registration ran once
        self._lock = _thread.allocate_lock()

    def __repr__(self) -> str:
        return f"<TypeRegistry {self.name}: {len(self._handlers)} types>"

    def register(self, type_: type, handler: V) -> V:
        """Use ``handler`` for ``type_`` (and, through lookups, its subclasses); return it."""
        with self._lock:
            self._handlers[type_] = handler
        return handler

    def register_lazy(self, package: str, registration: Callable[[], None]) -> None:
        """Run ``registration()`` (which calls ``register``) on first sight of ``package``."""

        def run() -> None:
            before = set(self._handlers)
            registration()
            self._from_lazy.update(set(self._handlers) - before)

        self._lazy.add(package, run)

    def load(self, cls: type) -> None:
        """Run the lazy registrations for the packages in ``cls``'s MRO, once each."""
        self._lazy.load(cls)

    def get(self, cls: type) -> V | None:
        """The handler registered for exactly ``cls`` (call ``load`` first), or None."""
        return self._handlers.get(cls)

    def lookup(self, cls: type) -> V | None:
        """The handler of the most specific class in ``cls``'s MRO that has one, or None."""
        self._lazy.load(cls)
        handlers = self._handlers
        for base in cls.__mro__:
            handler = handlers.get(base)
            if handler is not None:
                return handler
        return None

    def items(self) -> list[tuple[type, V]]:
        """A snapshot of the registrations, oldest first."""
        with self._lock:
            return list(self._handlers.items())

    def snapshot(self) -> dict[type, Any]:
        """The registrations now, for ``restore`` (tests undo what they registered)."""
        with self._lock:
            return dict(self._handlers)

    def restore(self, snapshot: dict[type, Any]) -> None:
        """Put back the registrations of an earlier ``snapshot``, keeping lazy ones made since."""
        with self._lock:
            # A lazy registration runs once: dropping what it registered would lose it for good.
            lazy = {t: self._handlers[t] for t in self._from_lazy if t in self._handlers}
            self._handlers.clear()
            self._handlers.update(snapshot)
            self._handlers.update(lazy)
