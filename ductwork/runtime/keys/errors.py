"""The errors of computing a key, at the bottom of ``keys`` so that every module can raise them.

``UnhashableValue`` is raised by the value hasher (no handler for a type, a cycle, a
``__ductwork_hash__`` that fails); ``CacheKeyError`` is what a step's key computation
raises, naming the step -- the engine fails that step with it.
"""

from __future__ import annotations

from ductwork.dsl.core import DuctworkError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["CacheKeyError", "HashHookError", "UnhashableValue"]


class CacheKeyError(DuctworkError):
    """A step's cache key cannot be computed (an input cannot be hashed, a path is missing)."""


class UnhashableValue(DuctworkError, TypeError):
    """A value has no deterministic hash: no handler for its type, or a reference cycle.

    ``path`` locates the value inside the one that was hashed (``"[3]['a']"``; ``""`` for
    the value itself); ``describe(step, argument)`` prefixes it with the argument's name.
    """

    def __init__(self, type_name: str, path: str = "", reason: str = "") -> None:
        super().__init__(type_name, path, reason)
        self.type_name = type_name
        self.path = path
        self.reason = reason or f"ductwork has no hash handler for type {type_name!r}"

    def __reduce__(self) -> tuple[Any, ...]:
        # The error may travel from a worker back to the scheduler; keep its fields.
        return (type(self), (self.type_name, self.path, self.reason))

    def __str__(self) -> str:
        where = f"at {self.path}" if self.path else "(the value itself)"
        return self._message(f"the {self.type_name!r} {where}", "")

    def describe(self, step: str, argument: str) -> str:
        """Return the full message, naming the step and the argument that hold the value."""
        what = f"argument {argument!r} of step {step!r}: the {self.type_name!r} at {argument}"
        hint = ", or keep the argument out of the key with @step(ignore_inputs=[...])"
        return self._message(what + self.path, hint)

    def _message(self, what: str, hint: str) -> str:
        return (
            f"cannot hash {what} deterministically: {self.reason}. Ductwork keys its cache by "
            "content and does not guess from pickle bytes, repr or id, which change between "
            "runs. To fix it, pass a supported type (builtins, dataclasses, attrs classes, "
            "numpy, pandas), give the class a __ductwork_hash__(self) method returning such a "
            f"value, or register a handler with ductwork.register_hash(Type, fn){hint}."
        )


class HashHookError(UnhashableValue):
    """A value's ``__ductwork_hash__()`` raised: it has no key until the hook is fixed.

    Unlike a type without a handler, this is never passed over (a module constant is
    otherwise counted by its source or type name): the value *has* a hash, which is unknown.
    """

    def _message(self, what: str, hint: str) -> str:
        return (
            f"cannot hash {what}: {self.reason}. Fix the method so that it returns a value of a "
            f"supported type (builtins, dataclasses, attrs classes, numpy, pandas){hint}."
        )
