"""A function dispatched on its first argument's class: ``functools.singledispatch``'s answers.

The hasher (``tokens.normalize``) is extended by type, as STYLE.md asks, but not through
``functools.singledispatch`` itself: on Python 3.11 its ``register`` imports ``typing`` on
every call (to test for a ``Union``), and registering the builtins when ``tokens`` is
imported made every first run load ``typing``, ~12M instructions that nothing else in a
run needs. ``Dispatcher`` keeps singledispatch's interface as the hasher uses it --
``register(cls, fn)`` or ``@register(cls)``, ``dispatch(cls)``, a live ``registry`` --
and its answers: a class is looked up along its MRO, the most specific registered class
winning. Only an abstract class can claim a class outside its MRO (``ABC.register``, a
``__subclasshook__``); when one of those is registered and claims the class looked up,
the answer comes from a real ``singledispatch`` function holding the same registrations
(made then, and ``typing`` with it), whose rules for placing abstract classes in an MRO
are not worth copying. There is no cache: a walk along an MRO is a few dict lookups,
cheaper than singledispatch's weak-keyed cache, and holds no class alive.
"""

from __future__ import annotations

from abc import ABCMeta
from types import MappingProxyType

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

__all__ = ["Dispatcher"]


class Dispatcher:
    """``default`` called through the handler registered for its argument's class."""

    def __init__(self, default: Callable[..., Any]) -> None:
        self._handlers: dict[type, Callable[..., Any]] = {object: default}
        #: The registrations, class -> handler: a live, read-only view.
        self.registry = MappingProxyType(self._handlers)
        self._abstract: list[type] = []  # registered classes that may claim any class
        self._twin: Any = None  # the singledispatch function that places them, once needed
        self.__wrapped__ = default
        self.__name__ = getattr(default, "__name__", "dispatcher")
        self.__qualname__ = getattr(default, "__qualname__", self.__name__)
        self.__doc__ = default.__doc__
        self.__module__ = default.__module__

    def __repr__(self) -> str:
        return f"<Dispatcher {self.__qualname__}: {len(self._handlers)} types>"

    def register(self, cls: type, fn: Callable[..., Any] | None = None) -> Any:
        """Use ``fn`` for ``cls`` and its subclasses; without ``fn``, a decorator that does."""
        if not isinstance(cls, type):
            raise TypeError(f"Invalid first argument to `register()`: {cls!r} is not a class.")
        if fn is None:
            return lambda f: self.register(cls, f)
        self._handlers[cls] = fn
        if isinstance(cls, ABCMeta) and cls not in self._abstract:
            self._abstract.append(cls)
        self._twin = None
        return fn

    def dispatch(self, cls: type) -> Callable[..., Any]:
        """The handler ``functools.singledispatch`` would pick for an instance of ``cls``."""
        mro = cls.__mro__
        for abstract in self._abstract:
            if abstract not in mro and issubclass(cls, abstract):
                return self._singledispatch().dispatch(cls)  # type: ignore[no-any-return]
        handlers = self._handlers
        for base in mro:
            handler = handlers.get(base)
            if handler is not None:
                return handler
        return handlers[object]

    def __call__(self, value: Any, /, *args: Any, **kwargs: Any) -> Any:
        """Call the handler of ``value``'s class."""
        return self.dispatch(value.__class__)(value, *args, **kwargs)

    def _singledispatch(self) -> Any:
        twin = self._twin
        if twin is None:
            import functools  # its register imports typing: only for an abstract class's claim

            twin = functools.singledispatch(self._handlers[object])
            for cls, fn in self._handlers.items():
                if cls is not object:
                    twin.register(cls, fn)
            self._twin = twin
        return twin
