"""The local folders a dataset reads, and the same dataset read through other paths.

A worker that sees this machine's files at other paths -- a container, with folders
mounted into it -- needs a dataset argument rewritten: ``relocate(dataset, place)``
calls ``place(folder, what)`` for each local folder the dataset reads (``what`` says
which, for messages) and returns the dataset's fields with each folder replaced by
the path ``place`` answers. Whoever calls it decides where folders go (and refuses
one that is missing); this module only knows which folders a dataset reads:

- a snapshot version: the local store holding its copies, never its original files
  (a snapshot does not read them);
- a dataset in a local ``Datastore``, or in a configured datastore whose URL is local:
  the datastore's root folder;
- a full ``file://`` URL or an absolute local path: the folder above the glob's first
  wildcard, the folder itself, or a file's folder.

Everything else is left as it is: a remote datastore or URL (the worker reaches it
through its own filesystem and credentials), and a dataset in the run store's own
datastore (``datastore=None``), which the worker resolves from the store it was given.
A dataset's fingerprint does not depend on where its local files are (a content hash
per relative name), so the relocated dataset keys and checks the same content.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from ductwork.runtime.data.datastore import Datastore
from ductwork.runtime.data.datastore import datastore as open_datastore
from ductwork.runtime.data.files import glob_base, has_magic

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["Place", "relocate"]

#: ``place(host folder, what it is)`` -> the folder's path where the dataset is read.
Place = Callable[[str, str], str]

_LOCAL = ("", "file", "local")


def _local_path(url: str) -> str | None:
    """The local path of ``url`` (a path or ``file://``), or None if it is remote."""
    protocol, _, rest = url.partition("://") if "://" in url else ("", "", url)
    return rest if protocol in _LOCAL else None


def relocate(dataset: Any, place: Place) -> dict[str, Any]:
    """``dataset``'s constructor fields with every local folder it reads put by ``place``."""
    fields = dataset._fields()
    if dataset.snapshot is not None:
        url, objects = dataset.snapshot
        root = _local_path(url)
        if root is not None:
            where = place(root, f"the store holding its snapshot copy ({root})")
            fields["snapshot"] = (where, objects)
        return fields
    if dataset.external:
        path = _local_path(dataset.path)
        if path is not None:
            folder = _folder_of(path)
            where = place(folder, f"the folder {folder}")
            fields["path"] = where + path[len(folder):]
        return fields
    store = dataset.datastore
    if isinstance(store, str):
        store = open_datastore(store)  # this machine's configuration says where it is
    if isinstance(store, Datastore) and store.is_local:
        where = place(store.root, f"the folder of {store!r}")
        fields["datastore"] = Datastore(where, name=store.name)
    return fields


def _folder_of(path: str) -> str:
    """The folder to make visible for a local path: above a glob, a folder, a file's folder."""
    if has_magic(path):
        return glob_base(path) or os.sep
    return path if os.path.isdir(path) else os.path.dirname(path)
