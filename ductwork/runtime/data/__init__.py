"""Data a pipeline reads from outside: datastores, datasets and their registry.

- ``datastore``: ``Datastore`` (a root folder on a local path or fsspec URL),
  ``datastore(name)`` from the configuration, and ``run_store``, which makes
  ``datastore()`` mean the running step's store;
- ``dataset``: ``Dataset``, a lazy step input keyed by its content -- the
  public face, and the only module that makes one;
- ``reading``: reading a dataset where its step runs (the download cache,
  mounted files, tables) and ``reading_for_key``, which the engine wraps around
  materializing the inputs of a job stored under a cache key;
- ``registry``: registered dataset versions, kept in the artifact store, and
  their listings;
- ``snapshot``: a version's files copied into the store's objects
  (``register(snapshot=True)``) and read back from there;
- ``locations``: the local folders a dataset reads, and the same dataset read
  through other paths (``Dataset.relocated``: a container's mounts);
- ``commands``: ``ductwork datasets``, added to the command line's parser;
- ``files``: listing, fetching and atomic copies on any fsspec filesystem;
- ``errors``: ``DatasetError``, ``DatastoreError``, ``DatastoreAccessError``.

Above ``store`` (datasets read the run's store) and ``keys`` (a dataset's
fingerprint is a hash); below ``engine``, which materializes datasets, and
independent of ``records``. Import from the modules; nothing is re-exported.
"""
