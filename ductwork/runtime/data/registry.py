"""Registered dataset versions, kept in the artifact store where every machine sees them.

Layout under the store's root::

    datasets/<name>/<version>.json   one version: the dataset's definition (kind,
                                     path, datastore reference, read options), its
                                     content fingerprint and file list, description

A version is created exclusively (``store/versions``: a local file is linked into
place, a blob is uploaded conditionally) so two machines registering at once both
get a version: the loser of a race takes the next number. Registering the latest
version's definition (kind, path, datastore, read options) with the same content
returns that version instead of adding one; the same bytes at another path or in
another datastore are a new version, since a version is read from where it was
registered.

A dataset with no datastore is scanned, and later read, in the datastore of the
store that holds the registry (``store=``), not the default store's.

A version is pinned to its fingerprint: reading a version whose files have
changed since raises ``DatasetError`` (naming the version and what changed)
rather than returning other data. ``register(..., snapshot=True)`` also copies
the files into the store's objects (``data.snapshot``) and records their digests
under ``snapshot``, so that version reads the same bytes whatever happens to its
files. Registering content whose latest version is a snapshot returns it; asking
for a snapshot of content whose latest version is not one adds a version.

``list_datasets`` and ``summaries`` describe what is registered, for
``Dataset.list()`` and ``ductwork datasets``.

``register`` and ``get`` return a ``Dataset``'s constructor fields, not a
``Dataset``: ``dataset.py`` is the public face that builds one, so this module
works on what it is given (anything with ``kind``, ``path``, ``datastore``,
``read_options``, ``mode`` and ``_scan()``) and never imports it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time

from ductwork.runtime.data import snapshot as snapshots
from ductwork.runtime.data.datastore import Datastore, current_store, redact_url, run_store
from ductwork.runtime.data.datastore import datastore as open_datastore
from ductwork.runtime.data.errors import DatasetError
from ductwork.runtime.store.artifacts import open_store
from ductwork.runtime.store.versions import NAME, create_version, folder, names, read_versions

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["get", "list_datasets", "register", "summaries", "versions"]

_NAME = NAME
_FORMAT = 1


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise DatasetError(
            f"A dataset name is 1-128 letters, digits, '.', '_' or '-' (starting with a letter "
            f"or digit), got {name!r}."
        )
    return name


def _store(store: Any) -> Any:
    return current_store() if store is None else open_store(store)


def _folder(store: Any, name: str) -> str:
    return folder(store, "datasets", name)


def _read_all(store: Any, name: str) -> dict[int, dict[str, Any]]:
    return read_versions(store, _folder(store, name))


def versions(name: str, store: Any = None) -> list[dict[str, Any]]:
    """Every version of dataset ``name``, oldest first, as recorded."""
    records = _read_all(_store(store), _check_name(name))
    return [records[v] for v in sorted(records)]


def _own_datastore(store: Any) -> Datastore:
    """The registry's store's own datastore, where a dataset without one reads."""
    with run_store(store):
        return open_datastore()


def _datastore_ref(dataset: Any, store: Any) -> dict[str, Any] | None:
    """How a version names its datastore: None for the registry store's own one."""
    ds = dataset.datastore
    if dataset.external or ds is None:
        return None
    if isinstance(ds, str):
        return {"name": ds}
    if ds.name is None and ds.url == _own_datastore(store).url:
        return None  # a dataset from get(): the store's datastore, wherever it is opened
    return _plain({"name": ds.name, "url": ds.url, "options": ds.public_options})


def _plain(value: Any) -> Any:
    """``value`` as it reads back from a version's JSON."""
    return json.loads(json.dumps(value, sort_keys=True, default=repr))


def register(dataset: Any, name: str, description: str = "", store: Any = None,
             snapshot: bool = False) -> dict[str, Any]:
    """Record ``dataset``'s content as the next version of ``name`` (with ``snapshot``, a
    copy of its bytes too); return the fields of the registered version (see the module
    doc)."""
    _check_name(name)
    if "://" in dataset.path and "?" in dataset.path:
        raise DatasetError(
            f"Dataset {dataset!r}: a URL with a query string (a SAS token?) cannot be "
            "registered, since versions are readable by everyone sharing the store. Configure "
            "a datastore with the credential in the environment and register a path inside it."
        )
    artifacts = _store(store)
    # Scanned where get() will read it: a dataset without a datastore is in the
    # registry's store's datastore, not in the default store's.
    with run_store(artifacts):
        scanned = dataset._scan()
    fingerprint, entries = scanned[3], scanned[4]
    definition = {
        "kind": dataset.kind, "path": redact_url(dataset.path),
        "datastore": _datastore_ref(dataset, artifacts),
        "read_options": _plain(dataset.read_options),
    }
    existing = _read_all(artifacts, name)
    if existing:
        latest = existing[max(existing)]
        if latest.get("fingerprint") == fingerprint and all(
                latest.get(k) == v for k, v in definition.items()) and (
                not snapshot or latest.get("snapshot")):
            return _fields(latest, artifacts)
    record = {
        "format": _FORMAT, "name": name, "description": description, **definition,
        "mode": dataset.mode, "fingerprint": fingerprint,
        "files": [list(e) for e in entries], "created": time.time(),
    }
    if snapshot:
        # Objects first, then the version that names them: a version never names bytes
        # that are not stored.
        record["snapshot"] = snapshots.take(artifacts, dataset, scanned)
    record = create_version(artifacts, _folder(artifacts, name), record,
                            max(existing, default=0) + 1)
    return _fields(record, artifacts)


def get(name: str, version: int | None = None, store: Any = None) -> dict[str, Any]:
    """The fields of the dataset registered as ``name`` (latest, or ``version``), pinned to
    its content."""
    artifacts = _store(store)
    records = _read_all(artifacts, _check_name(name))
    if not records:
        raise DatasetError(
            f"No dataset is registered as {name!r} in the store {artifacts.url}. Register one "
            "with dw.Dataset.files(...).register(name), or pass store= where it was registered."
        )
    if version is None:
        version = max(records)
    if version not in records:
        raise DatasetError(
            f"Dataset {name!r} has no version {version!r} in {artifacts.url}; its versions: "
            f"{', '.join(map(str, sorted(records)))}."
        )
    return _fields(records[version], artifacts)


def _fields(record: dict[str, Any], store: Any) -> dict[str, Any]:
    """A ``Dataset``'s constructor fields from a version's record."""
    ref = record.get("datastore")
    datastore: str | Datastore | None
    if ref is None and "://" not in record["path"] and not os.path.isabs(record["path"]):
        datastore = _own_datastore(store)  # wherever that store is opened from
    elif ref is None:
        datastore = None
    elif ref.get("url") is None:
        datastore = ref["name"]
    else:
        datastore = Datastore(ref["url"], name=ref.get("name"), **ref.get("options", {}))
    entries = tuple((str(r), int(s), str(i)) for r, s, i in record["files"])
    held = record.get("snapshot")
    snapshot = None
    if isinstance(held, dict):
        snapshot = (redact_url(store.url), tuple(sorted((str(r), str(d)) for r, d in held.items())))
    return {"kind": record["kind"], "path": record["path"], "datastore": datastore,
            "mode": record.get("mode", "download"),
            "read_options": record.get("read_options") or {}, "name": record["name"],
            "version": int(record["version"]), "pinned": (record["fingerprint"], entries),
            "snapshot": snapshot}


def _summary(record: dict[str, Any]) -> dict[str, Any]:
    """What a listing shows of one version."""
    ref = record.get("datastore")
    where = None if ref is None else ref.get("name") or ref.get("url")
    files = record.get("files") or []
    created = record.get("created")
    return {
        "name": record.get("name"), "version": record.get("version"),
        "created": (dt.datetime.fromtimestamp(created, dt.UTC).isoformat(timespec="seconds")
                    if isinstance(created, int | float) else None),
        "description": record.get("description", ""), "kind": record.get("kind"),
        "path": record.get("path"), "datastore": where, "files": len(files),
        "bytes": sum(int(f[1]) for f in files), "fingerprint": record.get("fingerprint"),
        "snapshot": isinstance(record.get("snapshot"), dict),
    }


def summaries(name: str, store: Any = None) -> list[dict[str, Any]]:
    """The versions of dataset ``name``, newest first: when, what, and whether a snapshot."""
    artifacts = _store(store)
    records = _read_all(artifacts, _check_name(name))
    if not records:
        known = ", ".join(names(artifacts, "datasets")) or "none yet"
        raise DatasetError(
            f"No dataset is registered as {name!r} in the store {artifacts.url}; registered "
            f"datasets: {known}. Register one with dw.Dataset.files(...).register(name), or "
            "pass the store it was registered in."
        )
    return [_summary(records[v]) for v in sorted(records, reverse=True)]


def list_datasets(store: Any = None) -> list[dict[str, Any]]:
    """Every registered dataset, by name, with its versions newest first."""
    artifacts = _store(store)
    found = []
    for name in names(artifacts, "datasets"):
        records = _read_all(artifacts, name)
        if records:
            found.append({"name": name, "versions": [
                _summary(records[v]) for v in sorted(records, reverse=True)]})
    return found
