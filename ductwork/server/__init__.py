"""The HTTP server: published pipelines behind a versioned, authenticated REST API.

Owns what ``ductwork serve`` and ``ductwork token`` do, on top of the runtime's
publishing (``runtime.publish``) and run history (``runtime.records``):

- ``state``: the server's own SQLite file (tokens, the run queue), beside the
  store's run history;
- ``tokens``: bearer tokens and roles, stored only as hashes;
- ``queue``: the durable FIFO of runs triggered over HTTP;
- ``launcher``: starts each queued run in its own child process (``child``), at most
  ``--max-runs`` at once, and cancels them;
- ``child``: ``python -m ductwork.server.child``, the process that loads the
  published snapshot and runs it (user code is imported there, never in the server);
- ``schedules``: schedules and their firings, kept in the store (cron by croniter,
  data triggers by dataset fingerprints); ``scheduler``: the thread ``serve`` runs
  that fires them into the queue, each time claimed once in the store;
- ``views``: runs as the API shows them (run history merged with the queue);
- ``models``, ``errors``, ``limits``, ``auth``, ``service``, ``app``, ``routes_*``: the
  FastAPI application -- pydantic models, the one error body, JSON-only bodies capped at
  1 MiB, bearer-token roles, what routes work on, the app, the routes (``routes_schedules``
  for ``/api/v1/schedules``);
- ``commands``: the ``serve`` and ``token`` subcommands; ``schedule_commands``:
  ``schedule``;
- ``studio``: the pages a browser sees at ``/`` (its own ``__init__`` says what it owns).

Above the backends and the runtime, below the command line. Nothing here is imported
by ``import ductwork``; FastAPI, Starlette, uvicorn and pydantic load only when serving.
"""
