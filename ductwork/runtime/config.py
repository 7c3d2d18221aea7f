"""Project configuration: ``[tool.ductwork]`` in pyproject.toml, or ``ductwork.toml``.

Read on first need, never at import. The nearest ``ductwork.toml`` (top-level
tables) or ``pyproject.toml`` with a ``[tool.ductwork]`` table, from the working
directory upward, is the project's configuration.

``[tool.ductwork.compute.<name>]`` defines a compute target: ``backend`` plus
that backend's settings (``image``, ``cpus``, ``memory``, ``gpus``,
``max_workers``, ``address``, ...). ``@step(compute="<name>")`` runs a step
there, whatever backend the run uses for the others.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from ductwork.dsl.core import DuctworkError


class ConfigError(DuctworkError):
    """The project's configuration is missing something or has a wrong value."""


def find_config(start: str | os.PathLike[str] | None = None) -> tuple[Path | None, dict[str, Any]]:
    """Return ``(file, ductwork table)`` of the nearest configuration, or ``(None, {})``."""
    here = Path(start or os.getcwd()).resolve()
    for folder in (here, *here.parents):
        own = folder / "ductwork.toml"
        if own.is_file():
            return own, _read(own)
        project = folder / "pyproject.toml"
        if project.is_file():
            table = _read(project).get("tool", {}).get("ductwork")
            if table is not None:
                return project, table
    return None, {}


def _read(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None


def compute_target(name: str, start: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """The settings of compute target ``name``, with its ``backend``."""
    path, table = find_config(start)
    targets = table.get("compute", {})
    if name not in targets:
        where = f"in {path}" if path else "(no ductwork.toml or [tool.ductwork] in pyproject.toml)"
        known = ", ".join(sorted(targets)) or "none"
        raise ConfigError(
            f"Compute target '{name}' is not defined {where}; defined: {known}. Add a table "
            f"[tool.ductwork.compute.{name}] with backend = \"docker\" (or \"process\", ...)."
        )
    settings = dict(targets[name])
    backend = settings.pop("backend", None)
    if not isinstance(backend, str):
        raise ConfigError(
            f"Compute target '{name}' in {path} needs backend = \"...\" (inline, process, "
            "docker, dask, or a third-party backend)."
        )
    return {"backend": backend, **settings}
