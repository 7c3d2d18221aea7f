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
