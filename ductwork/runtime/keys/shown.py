"""What a key's small inputs were, in words: ``why`` says "(0.5 -> 0.7)", not two digests.

When a key is computed, each argument whose value is small -- a number, a short
string or bytes, a short tuple or list of those -- gets a short ``repr`` beside its
digest, as the component ``value:<arg>``. It is recorded with the step run, never
hashed into the key: keys stay what they were, and a record without it (an older
one, a big value, an upstream output the key only knows by digest) shows the digest.

Keys are computed for every step of every run, so this must cost next to nothing:
the type is checked first (exact builtin types only: a subclass may have any
``repr``, and a user's ``__repr__`` may be slow or print a secret), sizes are
bounded before ``repr`` is called, and nothing is ever truncated (a cut repr
could make two different values look equal). Whether an argument is a secret is
the caller's to say (``hidden``): what a secret is lives with the store.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["MAX_SHOWN", "PREFIX", "short_repr", "shown_inputs"]

#: The longest repr recorded.
MAX_SHOWN = 80
#: The component name of an argument's shown value: ``value:<arg>``.
PREFIX = "value:"
_MAX_ITEMS = 8
_NUMBERS = frozenset({int, float, complex, bool, type(None)})
_TEXTS = frozenset({str, bytes})
_SEQUENCES = frozenset({tuple, list})
_SHOWABLE = _NUMBERS | _TEXTS | _SEQUENCES
# An int of more digits is not small, and its repr is costly (and limited in length).
_INT_BOUND = 10 ** 30


def _scalar(value: Any) -> bool:
    kind = type(value)
    if kind in _NUMBERS:
        return kind is not int or -_INT_BOUND < value < _INT_BOUND
    return kind in _TEXTS and len(value) <= MAX_SHOWN


def short_repr(value: Any) -> str | None:
    """The ``repr`` of a small value of a builtin type, or None when it is not small."""
    kind = type(value)
    if kind in _SEQUENCES:
        if len(value) > _MAX_ITEMS or not all(_scalar(item) for item in value):
            return None
    elif not _scalar(value):
        return None
    text = repr(value)
    return text if len(text) <= MAX_SHOWN else None


def shown_inputs(step: Any, arguments: Mapping[str, Any],
                 hidden: Callable[[str, str], bool]) -> dict[str, str]:
    """``{"value:<arg>": repr}`` for each keyed argument whose value is small and not
    ``hidden(arg, repr)`` (a secret)."""
    shown = {}
    ignored = step.options.ignore_inputs
    for name, value in arguments.items():
        if name in ignored or type(value) not in _SHOWABLE:  # an upstream output's ref
            continue
        text = short_repr(value)
        if text is not None and not hidden(name, text):
            shown[PREFIX + name] = text
    return shown
