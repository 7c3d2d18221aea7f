"""Published pipelines, kept in the artifact store where every machine sharing it sees them.

Layout under the store's root::

    published/<name>/<N>.json   version N: name, version, digest, description,
                                created, the pipeline's qualified name and file,
                                ductwork and Python versions, ``parameters`` (the
                                JSON Schema) and the refs of its snapshot objects
    published/<name>/state.json the default version and whether runs are enabled
    objects/...                 the snapshot: the pickled pipeline and its source
                                texts, content-addressed like any artifact

Versions are numbered 1, 2, 3... per name and created exclusively
(``store/versions``), so concurrent publishers never lose or share a number.
Publishing a snapshot whose digest a version of the name already has returns that
version; two publishers of one snapshot racing for a number agree on one version.

With no ``state.json`` (nothing changed since publishing) the default is the
first version and the pipeline is enabled, so publishing never writes state and
the first version is the default however publishers race.
"""

from __future__ import annotations

import datetime as dt
import platform
import threading

from ductwork.dsl.slotted import Frozen, fill
from ductwork.runtime.publish.errors import PublishedNotFound, PublishError
from ductwork.runtime.publish.parameters import parameters_schema
from ductwork.runtime.publish.snapshot import ductwork_version, load_snapshot, take_snapshot
from ductwork.runtime.store.artifacts import ArtifactRef, open_store
from ductwork.runtime.store.versions import (
    NAME,
    create_version,
    folder,
    names,
    read_state,
    read_versions,
    update_state,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "PublishedPipeline", "disable", "enable", "get_pipeline", "list_pipelines",
    "load_pipeline", "publish", "set_default",
]

_NAME = NAME
_FORMAT = 1
# Pickling registers the user's modules by value for the whole process: one at a time.
_SNAPSHOT_LOCK = threading.Lock()


class PublishedPipeline(Frozen):
    """One published version of a pipeline."""

    __slots__ = ("name", "version", "description", "parameters", "digest", "created", "default")
    _no_repr = ("parameters",)
    name: str
    version: int
    description: str
    parameters: dict[str, Any]
    digest: str
    created: str
    default: bool

    def __init__(self, name: str, version: int, description: str, parameters: dict[str, Any],
                 digest: str, created: str, default: bool) -> None:
        fill(self, name, version, description, parameters, digest, created, default)


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise PublishError(
            f"A published pipeline's name is 1-128 letters, digits, '.', '_' or '-' (starting "
            f"with a letter or digit), got {name!r}."
        )
    return name


def _where(store: Any, name: str) -> str:
    return folder(store, "published", name)


def publish(pipeline: Any, name: str | None = None, *, description: str = "",
            store: Any = None) -> PublishedPipeline:
    """Snapshot ``pipeline``'s code into the store and record it as the next version of
    ``name`` (default: the pipeline's name); identical code returns its existing version."""
    name = _check_name(pipeline.name if name is None else name)
    if not isinstance(description, str):
        raise PublishError(f"description= is a string, got {type(description).__name__}.")
    artifacts = open_store(store)
    parameters = parameters_schema(pipeline)
    with _SNAPSHOT_LOCK:
        snapshot = take_snapshot(pipeline)
    where = _where(artifacts, name)
    existing = read_versions(artifacts, where)
    record = next((r for _, r in sorted(existing.items())
                   if r.get("digest") == snapshot.digest), None)
    if record is None:
        fn = pipeline.fn
        record = create_version(artifacts, where, {
            "format": _FORMAT, "name": name, "digest": snapshot.digest,
            "description": description,
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
            "pipeline": f"{fn.__module__}.{fn.__qualname__}",
            "source_file": fn.__code__.co_filename,
            "ductwork_version": ductwork_version(),
            "python_version": platform.python_version(),
            "parameters": parameters,
            # Objects first, then the record that names them: a reader never finds a
            # version whose snapshot has not landed.
            "snapshot": artifacts.put(snapshot.payload).to_dict(),
            "sources": artifacts.put(snapshot.sources).to_dict(),
        }, max(existing, default=0) + 1, same=lambda r: r.get("digest") == snapshot.digest)
    return _published(record, _default(artifacts, name))


def _published(record: dict[str, Any], default: int | None) -> PublishedPipeline:
    return PublishedPipeline(
        name=record["name"], version=int(record["version"]),
        description=record.get("description", ""), parameters=record.get("parameters", {}),
        digest=record["digest"], created=record.get("created", ""),
        default=default == int(record["version"]),
    )


def _default(store: Any, name: str, versions: Any = None, state: Any = None) -> int | None:
    """The default version: the one set, or the first."""
    where = _where(store, name)
    versions = sorted(read_versions(store, where) if versions is None else versions)
    state = read_state(store, where) if state is None else state
    chosen = state.get("default")
    return chosen if chosen in versions else (versions[0] if versions else None)


def _summary(store: Any, name: str, records: dict[int, dict[str, Any]]) -> dict[str, Any]:
    state = read_state(store, _where(store, name))
    default = _default(store, name, records, state)
    return {
        "name": name,
        "description": records[default].get("description", "") if default else "",
        "default_version": default,
        "versions": sorted(records),
        "enabled": bool(state.get("enabled", True)),
    }


def list_pipelines(store: Any = None) -> list[dict[str, Any]]:
    """Every published pipeline: name, description, default_version, versions, enabled."""
    artifacts = open_store(store)
    found = []
    for name in names(artifacts, "published"):
        records = read_versions(artifacts, _where(artifacts, name))
        if records:
            found.append(_summary(artifacts, name, records))
    return found


def _records(store: Any, name: str) -> dict[int, dict[str, Any]]:
    """The versions of ``name``; ``PublishedNotFound`` naming those that exist if none."""
    records = read_versions(store, _where(store, _check_name(name)))
    if not records:
        known = ", ".join(names(store, "published")) or "none yet"
        raise PublishedNotFound(name, None, (
            f"No pipeline is published as {name!r} in the store {store.url}; published "
            f"pipelines: {known}. Publish one with `ductwork publish FILE.py:PIPELINE --name "
            f"{name}`, or pass the store it was published to."
        ))
    return records


def _version(store: Any, name: str, records: dict[int, dict[str, Any]], version: Any) -> int:
    if isinstance(version, bool) or not isinstance(version, int) or version not in records:
        raise PublishedNotFound(name, version, (
            f"Pipeline {name!r} has no version {version!r}; its versions: "
            f"{', '.join(map(str, sorted(records)))}."
        ))
    return version


def get_pipeline(name: str, store: Any = None) -> dict[str, Any]:
    """One published pipeline: its summary and ``records``, each version's record (with its
    ``parameters`` schema), oldest first."""
    artifacts = open_store(store)
    records = _records(artifacts, name)
    return {**_summary(artifacts, name, records),
            "records": [records[v] for v in sorted(records)]}


def set_default(name: str, version: int, store: Any = None) -> None:
    """Make ``version`` the version of ``name`` that runs when none is asked for."""
    artifacts = open_store(store)
    version = _version(artifacts, name, _records(artifacts, name), version)
    update_state(artifacts, _where(artifacts, name), lambda s: {**s, "default": version})


def disable(name: str, store: Any = None) -> None:
    """Stop ``name`` from being triggered (its versions stay)."""
    _set_enabled(name, False, store)


def enable(name: str, store: Any = None) -> None:
    """Let ``name`` be triggered again."""
    _set_enabled(name, True, store)


def _set_enabled(name: str, enabled: bool, store: Any) -> None:
    artifacts = open_store(store)
    _records(artifacts, name)
    update_state(artifacts, _where(artifacts, name), lambda s: {**s, "enabled": enabled})


def load_pipeline(name: str, version: int | None = None, store: Any = None
                  ) -> tuple[Any, dict[str, Any]]:
    """Load the published code of ``name`` (``version``, or the default) and its record.

    This unpickles the snapshot, so it runs code from the store: call it only where
    the run will execute (a child process), never in a server.
    """
    artifacts = open_store(store)
    records = _records(artifacts, name)
    if version is None:
        version = _default(artifacts, name, records)
    record = records[_version(artifacts, name, records, version)]
    payload = artifacts.get(ArtifactRef.from_dict(record["snapshot"]))
    sources = artifacts.get(ArtifactRef.from_dict(record["sources"]))
    return load_snapshot(payload, sources), record
