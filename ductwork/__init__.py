"""ductwork: machine-learning pipelines from plain decorated Python functions.

The DSL is imported eagerly (it is small); the runtime -- and with it
networkx, cloudpickle and fsspec -- loads on first use.
"""

from ductwork.dsl.core import (
    DefinitionError,
    DuctworkError,
    Output,
    Outputs,
    ParameterError,
    PipelineFailed,
    TraceError,
)
from ductwork.dsl.options import Environment
from ductwork.dsl.pipeline import Pipeline, pipeline
from ductwork.dsl.step import Step, step

__version__ = "0.1.0"

__all__ = [
    "ArtifactStore",
    "Client",
    "Dataset",
    "Datastore",
    "DefinitionError",
    "DuctworkError",
    "Environment",
    "Output",
    "Outputs",
    "ParameterError",
    "Pipeline",
    "PipelineFailed",
    "PublishedPipeline",
    "Run",
    "Step",
    "StepRun",
    "TraceError",
    "__version__",
    "context",
    "datastore",
    "diff",
    "get_run",
    "pipeline",
    "register_hash",
    "register_serializer",
    "runs",
    "step",
]

_LAZY = {
    "Client": "ductwork.client",
    "Run": "ductwork.runtime.records.run",
    "StepRun": "ductwork.runtime.records.run",
    "runs": "ductwork.runtime.records.history",
    "context": "ductwork.runtime.context",
    "Dataset": "ductwork.runtime.data.dataset",
    "ArtifactStore": "ductwork.runtime.store.artifacts",
    "Datastore": "ductwork.runtime.data.datastore",
    "datastore": "ductwork.runtime.data.datastore",
    "get_run": "ductwork.runtime.records.history",
    "diff": "ductwork.runtime.records.diff",
    "PublishedPipeline": "ductwork.runtime.publish.catalog",
    "register_serializer": "ductwork.runtime.store.serializers",
    "register_hash": "ductwork.runtime.keys.hashing",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ductwork' has no attribute '{name}'")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
