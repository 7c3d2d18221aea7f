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

TYPE_CHECKING = False
if TYPE_CHECKING:
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


#: A job's fields but its step, in this order (``unpickle_job`` puts the step back in).
_FIELDS = ("step_id", "args", "kwargs", "attempt", "key", "whole", "run_id", "log_to")


def pickle_job(job: Any) -> bytes:
    """Pickle a job's fields but its step (``unpickle_job`` rebuilds the job).

    Arguments that are plain data (numbers, strings, artifact refs, and lists,
    tuples and dicts of them) go by plain pickle, several times faster than
    cloudpickle; anything else (a class or function of ``__main__``, a lambda, a
    subclass of ``str``) by cloudpickle, which carries those by value.
    """
    import io
    import pickle

    fields = (job.step_id, job.args, job.kwargs, job.attempt, job.key, job.whole,
              job.run_id, job.log_to)
    buffer = io.BytesIO()
    try:
        _plain_pickler()(buffer, pickle.HIGHEST_PROTOCOL).dump(fields)
    except _NotPlain:
        import cloudpickle

        return cloudpickle.dumps(fields, protocol=pickle.HIGHEST_PROTOCOL)
    return buffer.getvalue()


def unpickle_job(step: Any, payload: bytes) -> Any:
    """The job ``pickle_job`` wrote, with ``step`` put back in."""
    import pickle

    from ductwork.runtime.engine.job import Job

    step_id, *rest = pickle.loads(payload)
    return Job(step_id, step, *rest)


class _NotPlain(Exception):
    """A job holds something plain pickle would carry by reference only."""


_PLAIN_PICKLER: Any = None


def _plain_pickler() -> Any:
    """A ``pickle.Pickler`` that refuses anything but plain data and ductwork's refs.

    The C pickler writes exact ints, floats, strings, bytes, lists, tuples and dicts
    itself and asks ``reducer_override`` about every other object: refs (and what
    their pickles name: their classes, ``copyreg``'s constructor) pass, anything else
    stops it. No Python walks the arguments.
    """
    global _PLAIN_PICKLER
    if _PLAIN_PICKLER is None:
        import copyreg
        import pickle

        from ductwork.runtime.store.artifacts import ArtifactRef
        from ductwork.runtime.store.refs import GatherRef

        instances = frozenset({ArtifactRef, GatherRef, complex, bool, type(None)})
        named = frozenset({id(ArtifactRef), id(GatherRef), id(copyreg.__newobj__),
                           id(copyreg._reconstructor), id(complex)})

        class PlainPickler(pickle.Pickler):
            def reducer_override(self, obj: Any) -> Any:
                if type(obj) in instances or id(obj) in named:
                    return NotImplemented  # pickled as usual
                raise _NotPlain

        _PLAIN_PICKLER = PlainPickler
    return _PLAIN_PICKLER
