"""The engine: taking a traced plan's nodes to results, wherever they run.

- ``node``: every decision about a node -- its key, a hit, a retry, a skip, a
  map's expansion, the producers of a corrupt input -- for all the drivers below;
- ``state``: the books a driver keeps (step records, progress, skipped nodes,
  values read, the result);
- ``loop``: the iterative ready queue for backends that take single jobs
  (inline, process, docker, mixed compute targets);
- ``driver``, ``tasks``, ``hits``: a graph handed to a backend that schedules it
  (Dask) -- the driver, a node as a self-contained task, and the hits the driver
  serves before handing the graph over;
- ``backend``: the ``Backend`` and ``GraphBackend`` Protocols and the registry of
  backends by name;
- ``futures``: ``Done``, the future of a job run inside ``submit``, and a ``wait``
  that takes it without importing ``concurrent.futures``;
- ``job``: executing one job where it runs (call, check, store, index);
- ``worker``, ``shipping``, ``capture``, ``annotations``: the worker process,
  step code by value, captured output, the return-annotation check.

Import from the modules; nothing is re-exported.
"""
