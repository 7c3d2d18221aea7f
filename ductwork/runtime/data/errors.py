"""The errors every part of ``data`` raises, below all of them."""

from __future__ import annotations

from ductwork.dsl.core import DuctworkError
from ductwork.runtime.keys.cache_key import CacheKeyError

__all__ = ["DatasetError", "DatastoreAccessError", "DatastoreError"]


class DatasetError(CacheKeyError):
    """A dataset cannot be fingerprinted or read: nothing matches, a pinned version changed."""


class DatastoreError(DuctworkError):
    """A datastore operation cannot be done as asked (a target exists, a source is missing)."""


class DatastoreAccessError(DatastoreError):
    """A datastore's filesystem failed an operation (refused credentials, a missing container,
    the network); the message names the datastore, its URL and the path, and the
    filesystem's own error is chained."""
