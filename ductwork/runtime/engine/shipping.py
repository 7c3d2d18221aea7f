"""How step code travels to workers: cloudpickle, with the user's own modules by value.

A worker (a process, a container, a Dask worker) must run exactly the code whose
fingerprint is in the cache key, even if a file changed on disk since, and it
may not be able to import the user's modules at all. So the user's modules (not
installed packages) are pickled by value, and the serializers the user
registered travel along and are registered again where the payload is loaded.
"""

from __future__ import annotations

import contextlib
import sys
from typing import Any


def _user_modules() -> list[Any]:
    from ductwork.runtime.keys.origin import module_kind

    return [
        module for name, module in list(sys.modules.items())
        if module is not None and name != "__main__" and module_kind(module, name) == "user"
    ]


def pickle_step(obj: Any) -> bytes:
    """Cloudpickle a step (or a job, or a spec holding one) and the user's serializers."""
    return pickle_many([obj])[0]


def pickle_many(objs: list[Any]) -> list[bytes]:
    """``pickle_step`` for several objects, finding the user's modules once for all."""
    import cloudpickle

    from ductwork.runtime.store.serializers import user_registrations

    registered = []
    for module in _user_modules():
        with contextlib.suppress(ValueError):  # already registered by the user
            cloudpickle.register_pickle_by_value(module)
            registered.append(module)
    try:
        registrations = user_registrations()
        return [cloudpickle.dumps((obj, registrations)) for obj in objs]
    finally:
        for module in registered:
            with contextlib.suppress(ValueError):
                cloudpickle.unregister_pickle_by_value(module)


def unpickle(payload: bytes) -> Any:
    """Load what ``pickle_step`` wrote, registering the user's serializers it carries."""
    import cloudpickle

    from ductwork.runtime.store.serializers import register_serializer

    obj, registrations = cloudpickle.loads(payload)
    for type_, serializer in registrations:
        register_serializer(type_, serializer)
    return obj


#: Types plain pickle carries exactly as cloudpickle does (nothing a worker must import).
_SCALARS = frozenset({int, float, complex, str, bytes, bool, type(None)})
_PLAIN_OBJECTS = 256  # beyond this many objects, cloudpickle without looking further


def pickle_job(job: Any) -> bytes:
    """Pickle a job's fields but its step (``Job(step=..., **fields)`` rebuilds it).

    Arguments that are plain data (numbers, strings, artifact refs, and lists,
    tuples and dicts of them) go by plain pickle, several times faster than
    cloudpickle; anything else (a class or function of ``__main__``, a lambda)
    by cloudpickle, which carries those by value.
    """
    import pickle

    from ductwork.dsl.slotted import as_dict

    fields = as_dict(job)
    del fields["step"]
    if _plain(fields):
        return pickle.dumps(fields, protocol=pickle.HIGHEST_PROTOCOL)
    import cloudpickle

    return cloudpickle.dumps(fields, protocol=pickle.HIGHEST_PROTOCOL)


def _plain(value: Any) -> bool:
    from ductwork.runtime.store.artifacts import ArtifactRef
    from ductwork.runtime.store.refs import GatherRef

    stack, budget = [value], _PLAIN_OBJECTS
    while stack:
        budget -= 1
        if budget < 0:
            return False
        item = stack.pop()
        kind = type(item)
        if kind in _SCALARS or kind is ArtifactRef:
            continue
        if kind is tuple or kind is list:
            stack.extend(item)
        elif kind is dict:
            stack.extend(item)
            stack.extend(item.values())
        elif kind is GatherRef:
            stack.extend(item.parts)
        else:
            return False
    return True
