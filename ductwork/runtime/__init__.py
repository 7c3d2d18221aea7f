"""The runtime: everything that happens after a pipeline is traced.

One subpackage per concept, each using only those below it (the import-linter
contracts in pyproject.toml check it):

- ``runner``: ``Pipeline.run`` -- options checked, trace, engine, record;
- ``engine``: the one engine (node decisions, the loop, the graph driver, tasks),
  executing a job, workers, code shipping, log capture, the backend Protocols;
- ``data`` | ``records``: datastores and datasets | runs, history, gc;
- ``ui``: progress displays and HTML;
- ``store``: content-addressed objects and the key index, serializers, secrets;
- ``keys``: value hashing, code fingerprints, cache keys and why they changed;
- ``config``, ``context``, ``status``, ``caches``, ``registry``: the small shared
  pieces at the bottom.
"""
