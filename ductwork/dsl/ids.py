"""Call ids: the name each step call in a traced pipeline is known by.

A plain call's id is the first free one of ``name``, ``name-2``, ``name-3``, ...
(prefixed by the enclosing pipelines' ids, ``prep/clean``); a nested pipeline's
own call takes an id the same way, and its id becomes the prefix. Ids are never
freed, so the search for a name resumes after the last suffix it handed out: the
k-th call of one step costs O(1), not k set lookups.

A call made through ``step.named("id")`` has the id it was given (prefixed
likewise). Positional ids count plain calls only -- named ids are not in the
search -- so naming, adding or moving a named call never renumbers another
call, and a call's id depends only on its own name or on its rank among the
plain calls of its step. A named id equal to any other call's id is therefore a
clash, refused whichever of the two calls comes first, naming both.
"""

from __future__ import annotations

import re

from ductwork.dsl.core import DefinitionError, TraceError, format_location

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NoReturn

Where = tuple[str, int] | None
Who = tuple[int, str, str]

# '/' joins a nested pipeline's id to its steps' ids and '[i]' marks a map element, so a
# call id has neither; ids also go into Dask keys, URLs and command lines.
# A pattern, not a compiled one: compiled (and cached by re) at the first .named(), not
# by `import ductwork`.
_CALL_ID = r"[A-Za-z_][A-Za-z0-9_-]{0,99}"
CALL_ID_RULE = ("letters, digits, '_' and '-' (ASCII), starting with a letter or '_', "
                "at most 100 characters")


def check_call_id(step: str, call_id: object) -> str:
    """Return ``call_id`` if ``step.named(call_id)`` can use it; else say what an id is."""
    if not isinstance(call_id, str):
        raise DefinitionError(
            f"step '{step}': .named({call_id!r}) takes the call's id as a string, "
            f"like {step}.named('{step}_tree')."
        )
    if not re.fullmatch(_CALL_ID, call_id):
        raise DefinitionError(
            f"step '{step}': .named({call_id!r}) is not a usable call id. A call id "
            f"is {CALL_ID_RULE}, like {step}.named('{step}_tree')."
        )
    return call_id


class CallIds:
    """The ids handed out in one trace, and who has each (to name both sides of a clash)."""

    def __init__(self) -> None:
        self.prefix: list[str] = []
        # Positional id -> (kind, base, name, where) of its call: the ids the search skips,
        # and who has each. Who is spelled out (the n-th plain call of a step) only for an
        # error, from this dict's order: a call pays one entry, not a tally of its own.
        self._taken: dict[str, tuple[str, str, str, Where]] = {}
        # base -> the suffix to try first. Ids are never given back, so every suffix below
        # it is taken and the search resumes there.
        self._next: dict[str, int] = {}
        self._named: dict[str, tuple[str, str, Where]] = {}  # named id -> (step, name, where)

    def _full(self, name: str) -> str:
        return "/".join([*self.prefix, name]) if self.prefix else name

    def positional(self, name: str, location: Where = None, kind: str = "step") -> str:
        """Return the first free id of ``name``, ``name-2``, ... (prefixed inside a scope)."""
        base = "/".join([*self.prefix, name]) if self.prefix else name  # _full, once per call
        n = self._next.get(base, 1)
        candidate = base if n == 1 else f"{base}-{n}"
        taken = self._taken
        while candidate in taken:  # another base's id: only if names were not identifiers
            n += 1
            candidate = f"{base}-{n}"
        self._next[base] = n + 1
        if candidate in self._named:
            step, named, where = self._named[candidate]
            _refuse_clash(candidate, ((0, step, named), where),
                          ((self._rank(kind, base), kind, name), location), step)
        taken[candidate] = (kind, base, name, location)
        return candidate

    def named(self, name: str, step: str, location: Where) -> str:
        """Return the id a ``step.named(name)`` call asked for, refusing one already given."""
        full = self._full(name)
        who = (0, step, name)
        if full in self._taken:
            kind, base, plain, where = self._taken[full]
            _refuse_clash(full, ((self._rank(kind, base, full), kind, plain), where),
                          (who, location), step)
        if full in self._named:
            other, named, where = self._named[full]
            _refuse_clash(full, ((0, other, named), where), (who, location), step)
        self._named[full] = (step, name, location)
        return full

    def _rank(self, kind: str, base: str, upto: str | None = None) -> int:
        """How many plain calls of ``kind`` ``base`` came up to ``upto`` (or the next one)."""
        rank = 0
        for call_id, (k, b, _, _) in self._taken.items():
            rank += k == kind and b == base
            if call_id == upto:
                return rank
        return rank + 1


def _ordinal(n: int) -> str:
    """``first``, ``second``, ``third``, then ``4th``, ... ``21st``, ``22nd``, ``111th``."""
    if n <= 3:
        return ("first", "second", "third")[n - 1]
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _refuse_clash(call_id: str, first: tuple[Who, Where], second: tuple[Who, Where],
                  step: str) -> NoReturn:
    """Refuse a second call with the id ``call_id``, naming both calls and their lines."""

    def said(owner: tuple[Who, Where]) -> str:
        (count, kind, name), where = owner
        who = (f"the {_ordinal(count)} plain call of {kind} '{name}'" if count
               else f"the call of step '{kind}' named '{name}'")
        return f"{who} (at {format_location(where)})" if where else who

    raise TraceError(
        f"Two calls in this pipeline have the id '{call_id}': {said(first)} and "
        f"{said(second)}. Plain calls of a step are numbered in call order ({step}, "
        f"{step}-2, ...) without counting named calls, and a named call keeps the id it was "
        f"given, so the two cannot share it. Give the named call another name: "
        f"{step}.named('<an id no other call has>')."
    )
