"""Writing a key-index entry's bytes by hand, as a damaged or foreign store would have it."""

from __future__ import annotations

import os


def write_entry(store, key: str, data: bytes) -> str:
    """Write ``data`` as the entry of ``key`` in ``store`` (local or fsspec); its path."""
    path = store.key_path(key)
    if store.is_local:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
    else:
        store.fs.pipe_file(path, data)
    return path
