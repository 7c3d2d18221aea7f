"""What a job's datasets need mounted in its container, and the job as the container sees it.

A container sees the host's files only where they are mounted. A dataset argument
on a local folder -- a ``Datastore`` on this machine, an absolute path, or the
store holding a snapshot version's copies -- names host paths, so before a job is
shipped ``mount_datasets`` walks its arguments (also inside lists, tuples and dicts,
with ``dsl.lazy``'s walker) and rewrites each dataset (``Dataset.relocated``) so
that every local folder it reads is seen where it is mounted:

- inside the run's own store, which is already mounted at ``/ductwork/store``: the
  same place below that mount (a version of the store's own datastore, a snapshot
  held by the run's store), so nothing more is mounted;
- anywhere else: ``/ductwork/data/<n>``, bound read-only (a step reads its data, it
  never changes it), one mount per distinct folder.

A folder that does not exist fails the step before any container starts, naming the
step, the argument and the folder: bound as it is, the engine would create an empty,
root-owned folder in its place. Datasets on remote filesystems (``az://``, other
fsspec URLs) and in the run store's datastore are shipped as they are: the worker
reaches them itself. Only arguments are walked: a dataset a step's code holds as a
module constant names host paths inside the container.
"""

from __future__ import annotations

import os
import posixpath

from ductwork.dsl.lazy import holds_lazy, materialize
from ductwork.dsl.slotted import as_dict
from ductwork.runtime.engine.backend import BackendError
from ductwork.runtime.engine.job import Job

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

STORE_MOUNT = "/ductwork/store"
DATA_MOUNT = "/ductwork/data"

__all__ = ["DATA_MOUNT", "STORE_MOUNT", "mount_datasets"]


class _Missing(Exception):
    """A folder a dataset reads is not on this machine."""

    def __init__(self, folder: str, what: str) -> None:
        super().__init__(folder)
        self.folder, self.what = folder, what


def mount_datasets(job: Job, store_root: str | None) -> tuple[Job, dict[str, str]]:
    """The job with its datasets at container paths, and the host folders it needs mounted
    read-only (host -> container); ``store_root`` is the run store's folder, if mounted."""
    if not holds_lazy(job.args) and not holds_lazy(job.kwargs):  # the usual case: one pass
        return job, {}
    from ductwork.runtime.data.dataset import Dataset

    mounts: dict[str, str] = {}
    store = os.path.realpath(store_root) if store_root is not None else None

    def place(folder: str, what: str) -> str:
        real = os.path.realpath(folder)
        if store is not None and (real == store or real.startswith(store + os.sep)):
            rel = os.path.relpath(real, store)
            return STORE_MOUNT if rel == "." else posixpath.join(STORE_MOUNT, *rel.split(os.sep))
        if not os.path.isdir(real):
            raise _Missing(folder, what)
        return mounts.setdefault(real, f"{DATA_MOUNT}/{len(mounts)}")

    def move(value: Any) -> Any:
        return value.relocated(place) if isinstance(value, Dataset) else value

    bound = job.step.signature.bind(*job.args, **job.kwargs)
    for name, value in bound.arguments.items():
        try:
            bound.arguments[name] = materialize(value, move)
        except _Missing as exc:
            raise BackendError(
                f"Step '{job.step_id}': argument '{name}' is a dataset that reads {exc.what}, "
                f"which does not exist on this machine ({exc.folder}), so it cannot be mounted "
                "into the step's container. Check the datastore's URL or the dataset's path "
                "(upload the data first); for a registered version, get it from the store it "
                "is in now (Dataset.get(name, store=...)) or register the files again."
            ) from None
        except Exception as exc:
            raise BackendError(
                f"Step '{job.step_id}': argument '{name}' (a dataset) could not be prepared for "
                f"the step's container: {type(exc).__name__}: {exc}"
            ) from None
    fields = as_dict(job)
    return Job(**{**fields, "args": bound.args, "kwargs": bound.kwargs}), mounts
