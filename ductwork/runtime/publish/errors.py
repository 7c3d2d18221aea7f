"""What can go wrong when publishing, finding or triggering a published pipeline."""

from __future__ import annotations

from ductwork.dsl.core import DuctworkError
from ductwork.dsl.core import ParameterError as _PipelineParameterError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["ParameterError", "PublishError", "PublishedNotFound"]


class PublishError(DuctworkError, ValueError):
    """A pipeline cannot be published as asked (a bad name, say); the message says why."""


class PublishedNotFound(DuctworkError, LookupError):
    """No published pipeline has this name, or it has no such version."""

    def __init__(self, name: str, version: int | None = None, message: str = "") -> None:
        what = f"pipeline {name!r}" if version is None else f"version {version} of {name!r}"
        super().__init__(message or f"There is no published {what}.")
        self.name, self.version = name, version

    def __str__(self) -> str:
        return str(self.args[0])  # not LookupError's repr of the argument

    def __reduce__(self) -> tuple[Any, ...]:
        return (PublishedNotFound, (self.name, self.version, str(self)))


class ParameterError(_PipelineParameterError):
    """A trigger's parameters do not match the published schema; ``.parameter`` names
    the one that is wrong (unknown, missing, or of the wrong type)."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(message)
        self.parameter = parameter

    def __reduce__(self) -> tuple[Any, ...]:
        return (ParameterError, (self.parameter, str(self)))
