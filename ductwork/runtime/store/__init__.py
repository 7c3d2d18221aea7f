"""The artifact store: content-addressed objects and the cache-key index.

Owns where values live and how they get there, over one file transport with
three implementations -- a local directory, any fsspec URL, and Azure Blob
Storage (``az://``, through the SDK):

- ``artifacts``: the two levels (``objects/`` by digest, ``keys/`` from a cache
  key to output refs), ``ArtifactStore`` and ``open_store``;
- ``entry``: ``ArtifactRef`` and the key index's entry format (small outputs
  inlined), and what makes an entry damaged;
- ``files``: where a store lives and the few file operations it is built on;
- ``hashio``, ``spool``: streams that hash as they write and read; the one
  spool that buffers an object on its way to and from a blob;
- ``azure``, ``blobs``, ``blob_reader``: Azure credentials; blob I/O for ``az://``, and
  its ranged, ETag-pinned reader;
- ``serializers``, ``builtin_serializers``: the serializer registry and the
  built-in formats;
- ``refs``: references to stored values and their JSON form;
- ``secrets``: the one place that knows what a secret is and redacts it.

Above ``keys`` (a store hashes with it) and below everything that records or
reads runs. Import from the modules; this package re-exports nothing, so
importing it costs nothing.
"""
