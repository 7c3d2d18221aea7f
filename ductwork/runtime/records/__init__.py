"""What a run leaves behind, and reading it back.

- ``run``: ``Run`` and ``StepRun``, outputs held by reference;
- ``runstore``: run history in SQLite, one ``RunStore`` per file per process;
- ``history``: ``runs()`` and ``get_run()``, wiring a run read back to its stores;
- ``gc``: garbage collection of runs, objects and keys no run needs;
- ``provenance``: the git state a run records.

Above ``ui`` (a ``Run`` renders itself in a notebook) and ``store``; below
``engine``, which fills the records in; independent of ``data``. Import from the
modules; nothing is re-exported.
"""
