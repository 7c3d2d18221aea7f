"""The decisions the engine takes about one node, written once for every way of running.

A node (an invocation of a step; a ``map`` node has one element per item) goes

    waiting -> ready -> keyed -> hit                               -> succeeded
                             \\-> dispatched -> (retry)* -> succeeded | failed
    failed -> everything downstream skipped
    an input corrupt -> its producer is redone, then the node is ready again

Three drivers walk nodes through those states: the loop (``loop.py``: inline,
process, docker and mixed compute targets), the tasks a graph-scheduling backend
runs on its workers (``tasks.py``), and the driver's serving of cache hits before
a graph is handed over (``hits.py``). Each of them takes these decisions by calling
the functions here, so a key, a hit, a retry, a skip or a map's expansion cannot
mean different things on different backends.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Callable, Iterable, Iterator, Mapping

from ductwork.runtime import caches
from ductwork.runtime.keys.cache_key import CacheKeyError, finish_key, input_components, key_basis
from ductwork.runtime.keys.shown import shown_inputs
from ductwork.runtime.store.artifacts import ArtifactRef, warn_bad_entry
from ductwork.runtime.store.refs import GatherRef, iter_digests
from ductwork.runtime.store.secrets import is_secret, redact
from ductwork.runtime.store.serializers import SerializerError, get_serializer

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

#: A step's input-independent key components (``cache_key.key_basis``).
Basis = tuple[dict[str, str], dict[str, str]]


# -- ids ------------------------------------------------------------------------------------

def element_id(nid: str, index: int) -> str:
    """The id of element ``index`` of map node ``nid``: ``score[3]``."""
    return f"{nid}[{index}]"


def node_of(sid: str) -> str:
    """The node an id belongs to (a map element's node, or the node itself)."""
    return sid.split("[", 1)[0] if sid.endswith("]") else sid


# -- the key and the hit --------------------------------------------------------------------

def basis_of(step: Any, whole: bool, environment: str | None) -> Basis | None:
    """The input-independent part of a step's key; None for a step with ``cache=False``.

    Raises ``CacheKeyError`` naming the step when a component cannot be computed.
    """
    if not step.options.cache:
        return None
    return key_basis(step, whole=whole, environment=environment)


def key_of(basis: Basis, step: Any, arguments: Mapping[str, Any]) -> tuple[str, dict[str, str]]:
    """``(key, components)`` of a call of ``step`` with these arguments (values or refs);
    the components also show small values (``keys/shown``), which the key does not hash."""
    if type(arguments) is not dict:  # the loop's are fresh dicts; a copy per element
        arguments = dict(arguments)
    memo = _memo_key(basis, step, arguments)
    if memo is not None:
        found = _KEYED.get(memo)
        if found is not None:  # its ids are of the very objects it holds: they are these
            return found[0], dict(found[1])
    key, components = finish_key(basis, input_components(step, arguments))
    shown = shown_inputs(step, arguments, _secret)
    if shown:
        components.update(shown)
    if memo is not None:
        _KEYED.put(memo, (key, dict(components), basis, step.options, tuple(arguments.values())))
    return key, components


# (id(basis), id(options), *(argument, id(ref))) -> (key, components, basis, options, refs),
# for calls whose arguments are all refs made of no class: a hit's refs are the same objects
# from run to run (``store/entry`` keeps an entry's parsed refs while its bytes are the
# same), and ``cache_key.key_basis`` keeps a step's basis while its code and options are
# the same objects. The key of such a call is a function of those objects alone -- a ref
# with recorded classes is left out, since its key has their code, which may change -- so
# a second run in a notebook or a server keys its steps without hashing anything again.
# The objects are kept in the entry, so while it is there no other object can have their
# ids: a memo key found names these very objects.
_KEYED = caches.memo("engine.keys_of_refs", maxsize=4096)


def _memo_key(basis: Basis, step: Any, arguments: dict[str, Any]) -> tuple[Any, ...] | None:
    """The ``_KEYED`` key of a call whose arguments are all refs made of no class, or None."""
    if len(arguments) == 1:  # most calls: without a list to build
        (name, value), = arguments.items()
        if type(value) is not ArtifactRef or value.classes:
            return None
        return id(basis), id(step.options), name, id(value)
    parts: list[Any] = [id(basis), id(step.options)]
    for name, value in arguments.items():
        if type(value) is not ArtifactRef or value.classes:
            return None
        parts += (name, id(value))
    return tuple(parts)


# (argument, shown value) -> whether it is a secret: a run keys the same values again and
# again, and redact's patterns cost more than the rest of a small input's share of a key.
_SECRETS = caches.cache("engine.secret_values", maxsize=4096)


def _secret(name: str, text: str) -> bool:
    """Whether an argument's shown value would show a secret, by its name or its look."""
    if "'" not in text and '"' not in text:
        return is_secret(name)  # not a string's repr (quoted): only its name can tell
    found = _SECRETS.get((name, text))
    if found is None:
        found = _SECRETS.put((name, text), is_secret(name) or redact(text) != text)
    return bool(found)


def lookup(store: Any, key: str, forced: bool, *, step: Any, whole: bool
           ) -> dict[str, Any] | None:
    """The stored refs of ``key``, or None when the step must run (a miss, or forced).

    ``whole`` is a map element's call (one output, ``"output"``). An entry whose output
    names are not the step's (a damaged file; the store checks the rest) is a miss with a
    warning naming it: serving it would fail every step downstream, on every run.
    """
    if forced:
        return None
    hit = store.get_key(key)
    if hit is None:
        return None
    expected = ("output",) if whole else step.options.outputs
    if len(hit) == len(expected) and (expected[0] in hit if len(expected) == 1
                                      else set(hit) == set(expected)):
        return hit  # most steps have one output: checked without making two sets
    if set(hit) != set(expected):
        warn_bad_entry(store.key_path(key), key, (
            f"records outputs {_names(hit)} but step '{step.name}' has {_names(expected)}"))
        return None
    return hit


def _names(names: Iterable[str]) -> str:
    return ", ".join(repr(n) for n in sorted(names)) or "none"


FORCED_NOTE = "regenerate was asked for"


# -- retries, failures, skips ---------------------------------------------------------------

def may_retry(step: Any, attempt: int) -> bool:
    """Whether a step whose attempt ``attempt`` failed gets another one (``retries=N``)."""
    return attempt <= step.options.retries


def skipped_because(failed: str) -> str:
    """The error of a node not run because ``failed`` failed upstream."""
    return f"not run: upstream step '{failed}' failed"


def element_failed(index: int, error: str | None) -> str:
    """The error a map node takes from its first failed element."""
    return f"element {index} failed:\n{error}"


def downstream(start: str, dependents: Mapping[str, Iterable[str]],
               stop: Callable[[str], bool] = lambda nid: False) -> list[str]:
    """Every node after ``start`` (not ``start`` itself), each once, without recursion;
    a node for which ``stop`` is true is neither listed nor walked past."""
    seen: set[str] = set()
    order = []
    stack = list(dependents.get(start, ()))
    while stack:
        nid = stack.pop()
        if nid in seen or stop(nid):
            continue
        seen.add(nid)
        order.append(nid)
        stack.extend(dependents.get(nid, ()))
    return order


# -- maps -----------------------------------------------------------------------------------

class NotAList(Exception):
    """What a ``map`` iterates over is not a list; the message is the step's error."""


def map_items(step: Any, value: Any, source: str = "its input") -> list[Any]:
    """The items a map node runs over, or ``NotAList`` naming the step and the source."""
    if isinstance(value, list | tuple):
        return list(value)
    raise NotAList(not_a_list(step, source, f"a {type(value).__name__}"))


def not_a_list(step: Any, source: str, what: str) -> str:
    """The error of a map node whose ``source`` (what it iterates over) is ``what``."""
    return (f"{step.name}.map needs a list to map over, but {source} is {what}. Make the "
            "upstream step return a list.\n")


@contextlib.contextmanager
def uncollected() -> Iterator[None]:
    """Pause the cyclic garbage collector inside the block (a map's expansion).

    Keying and serving a map's elements makes a dozen lasting objects per element and no
    garbage cycles, so each pass the collector makes over the growing heap finds nothing:
    they were 5% of a warm 10,000-element map. No step's code runs inside (a miss is only
    queued), and the collector runs again as soon as the block is left.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def gathered(parts: Iterable[Any]) -> GatherRef:
    """A map node's output: its elements' refs, in order, as one ref."""
    return GatherRef.of(list(parts))


def list_length(value: Any) -> int:
    """The length a downstream map needs of an output: -1 when it is not a list."""
    return len(value) if isinstance(value, list | tuple) else -1


# -- a corrupt input ------------------------------------------------------------------------

def producers_of(digest: str, refs: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The nodes whose outputs (``refs``: node -> output -> ref) stand on ``digest``."""
    return [nid for nid, outputs in refs.items()
            if any(digest in iter_digests(ref) for ref in outputs.values() if ref is not None)]


def corrupt_message(digests: Iterable[str], store_url: str, producers: Iterable[str]) -> str:
    """The warning given when stored artifacts failed verification and are recomputed."""
    return (f"artifact {', '.join(sorted(d[:12] for d in digests))} in {store_url} failed "
            f"verification; recomputing {', '.join(sorted(set(producers))) or 'its producer'}")


RECOMPUTED_NOTE = "recomputed: a stored output failed verification"
RERUN_NOTE = "rerun: an input failed verification and was recomputed"

__all__ = [
    "FORCED_NOTE", "RECOMPUTED_NOTE", "RERUN_NOTE", "Basis", "CacheKeyError", "NotAList",
    "basis_of", "corrupt_message", "downstream", "element_failed", "element_id", "gathered",
    "key_of", "list_length", "lookup", "map_items", "may_retry", "node_of", "not_a_list",
    "producers_of", "round_trips", "skipped_because", "uncollected",
]


def round_trips(ref: Any) -> bool:
    """Whether the value a step returned is what loading ``ref`` gives: kept in memory then.

    A serializer that loads another type than it stored (a Spark DataFrame comes back as
    pandas) says ``round_trips = False``, so inline steps downstream and the run's outputs
    get what every other backend gives them, not the live object.
    """
    name = getattr(ref, "serializer", None)  # a map's GatherRef has none: kept, as before
    try:
        return name is None or getattr(get_serializer(name), "round_trips", True)
    except SerializerError:  # not registered here: keep the value, as before
        return True
