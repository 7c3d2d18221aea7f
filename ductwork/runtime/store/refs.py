"""References to values, and their JSON form for the run store.

A value that crossed a step boundary lives in the artifact store and is
referred to by an ``ArtifactRef`` (its digest). A ``map`` step's list is a
``GatherRef``: the refs of its elements, with a digest over theirs, so the
list is never stored twice. A pipeline's return structure is kept with refs
in place of outputs, encoded as tagged JSON.
"""

from __future__ import annotations

from ductwork.dsl.slotted import Frozen, setter
from ductwork.runtime.keys.classes import recorded, register_recorded
from ductwork.runtime.keys.hashing import register_hash
from ductwork.runtime.store.artifacts import ArtifactRef

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class GatherRef(Frozen):
    """A map step's list of results, held as the refs of its elements."""

    __slots__ = ("digest", "parts")
    digest: str
    parts: tuple[Any, ...]

    def __init__(self, digest: str, parts: tuple[Any, ...]) -> None:
        set_ = setter(self)
        set_("digest", digest)
        set_("parts", parts)

    @property
    def size(self) -> int:
        """Bytes of all elements together."""
        return sum(p.size for p in self.parts)

    @classmethod
    def of(cls, parts: list[Any]) -> GatherRef:
        """Gather element refs into one ref whose digest depends on theirs, in order."""
        from ductwork.runtime.keys.hashing import hash_tagged

        return cls(hash_tagged("Gather", [p.digest for p in parts]), tuple(parts))


Ref = ArtifactRef | GatherRef


def _gather_token(ref: GatherRef) -> list[Any]:
    return ["gather", [["artifact", p.digest, p.serializer] if isinstance(p, ArtifactRef)
                       else _gather_token(p) for p in ref.parts]]


register_hash(GatherRef, _gather_token)
# The classes of its elements' values, recorded when they were written (keys.classes).
register_recorded(GatherRef, lambda ref: tuple(sorted({c for p in ref.parts
                                                       for c in recorded(p) or ()})))


def ref_to_json(ref: Ref) -> dict[str, Any]:
    """Encode a ref as a JSON-able dict."""
    if isinstance(ref, GatherRef):
        return {"gather": ref.digest, "parts": [ref_to_json(p) for p in ref.parts]}
    return ref.to_dict()


def ref_from_json(data: dict[str, Any]) -> Ref:
    """Decode a ref from ``ref_to_json``'s form."""
    if "gather" in data:
        return GatherRef(data["gather"], tuple(ref_from_json(p) for p in data["parts"]))
    return ArtifactRef.from_dict(data)


def encode_structure(value: Any) -> Any:
    """Encode a return structure holding refs as tagged JSON."""
    if isinstance(value, ArtifactRef | GatherRef):
        return {"$ref": ref_to_json(value)}
    if isinstance(value, list):
        return [encode_structure(v) for v in value]
    if isinstance(value, tuple):
        return {"$tuple": [encode_structure(v) for v in value]}
    if isinstance(value, dict):
        return {"$dict": [[encode_structure(k), encode_structure(v)] for k, v in value.items()]}
    if value is None or isinstance(value, bool | int | float | str):
        return value
    # A constant of another type in a pipeline's return: kept as its repr, for display.
    return {"$repr": repr(value)}


def decode_structure(data: Any) -> Any:
    """Invert ``encode_structure``."""
    if isinstance(data, list):
        return [decode_structure(v) for v in data]
    if isinstance(data, dict):
        if "$ref" in data:
            return ref_from_json(data["$ref"])
        if "$tuple" in data:
            return tuple(decode_structure(v) for v in data["$tuple"])
        if "$dict" in data:
            return {decode_structure(k): decode_structure(v) for k, v in data["$dict"]}
        if "$repr" in data:
            return data["$repr"]
    return data


def map_refs(value: Any, fn: Any) -> Any:
    """Replace every ref inside a (decoded) structure by ``fn(ref)``."""
    if isinstance(value, ArtifactRef | GatherRef):
        return fn(value)
    if isinstance(value, list):
        return [map_refs(v, fn) for v in value]
    if isinstance(value, tuple):
        items = [map_refs(v, fn) for v in value]
        return type(value)._make(items) if hasattr(value, "_make") else tuple(items)
    if isinstance(value, dict):
        return {k: map_refs(v, fn) for k, v in value.items()}
    return value


def iter_digests(ref: Ref) -> list[str]:
    """Every digest a ref stands on (a gather's elements, recursively), inlined or not."""
    if isinstance(ref, GatherRef):
        return [d for p in ref.parts for d in iter_digests(p)]
    return [ref.digest]


def stored_digests(ref: Ref) -> list[str]:
    """The digests of the object files a ref needs: those of its refs not inlined."""
    if isinstance(ref, GatherRef):
        return [d for p in ref.parts for d in stored_digests(p)]
    return [] if ref.inline is not None else [ref.digest]
