"""The error every part of ``data`` raises about a dataset, below all of them."""

from __future__ import annotations

from ductwork.runtime.keys.cache_key import CacheKeyError

__all__ = ["DatasetError"]


class DatasetError(CacheKeyError):
    """A dataset cannot be fingerprinted or read: nothing matches, a pinned version changed."""
