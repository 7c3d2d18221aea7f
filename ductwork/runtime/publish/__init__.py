"""Publishing: a pipeline's code frozen into the store as numbered versions per name.

Owns what a published pipeline is and where it is kept, for ``Pipeline.publish``,
the ``ductwork publish`` and ``ductwork pipelines`` commands and the server:

- ``snapshot``: the pipeline pickled as workers receive it, with the source texts
  it came from, and the identity (digest) of that code;
- ``restore``: what loading gives that code back (file names, its classes' modules
  and globals), so it keys as the project it came from;
- ``catalog``: versions and state under ``published/<name>/`` in the store --
  ``publish``, ``list_pipelines``, ``get_pipeline``, ``set_default``, ``disable``,
  ``enable``, ``load_pipeline``;
- ``parameters``: the JSON Schema of a pipeline's parameters (pydantic) and
  ``validate_parameters`` against a recorded schema (no user code loaded);
- ``errors``: ``PublishedNotFound``, ``ParameterError``, ``PublishError``;
- ``commands``: the command-line subcommands.

Beside the runner at the top of the runtime (neither imports the other). Names are
re-exported lazily, so importing this package (as the command line does) loads
neither the store nor pydantic.
"""

from __future__ import annotations

import importlib

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "ParameterError", "PublishError", "PublishedNotFound", "PublishedPipeline", "disable",
    "enable", "get_pipeline", "list_pipelines", "load_pipeline", "publish", "set_default",
    "validate_parameters",
]

_FROM = {
    "ParameterError": "errors", "PublishError": "errors", "PublishedNotFound": "errors",
    "validate_parameters": "parameters",
    **{name: "catalog" for name in (
        "PublishedPipeline", "disable", "enable", "get_pipeline", "list_pipelines",
        "load_pipeline", "publish", "set_default")},
}


def __getattr__(name: str) -> Any:
    module = _FROM.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
