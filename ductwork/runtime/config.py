"""Project configuration: ``[tool.ductwork]`` in pyproject.toml, or ``ductwork.toml``.

Read on first need, never at import. The nearest ``ductwork.toml`` (top-level
tables) or ``pyproject.toml`` with a ``[tool.ductwork]`` table, from the working
directory upward, is the project's configuration.

``[tool.ductwork.compute.<name>]`` defines a compute target: ``backend`` plus
that backend's settings (``image``, ``cpus``, ``memory``, ``gpus``,
``max_workers``, ``address``, ...). ``@step(compute="<name>")`` runs a step
there, whatever backend the run uses for the others.

``[tool.ductwork.datastores.<name>]`` defines a datastore: ``url`` plus the
fsspec storage options of its filesystem; ``dw.datastore("<name>")`` opens it.

Per-user state (downloaded datasets, a remote store's run history, image
records) lives under ``ductwork_home()``: ``$DUCTWORK_HOME`` or ``~/.ductwork``.
"""

from __future__ import annotations

import os
import re

from ductwork.dsl.core import DuctworkError

TYPE_CHECKING = False
if TYPE_CHECKING:  # pathlib is imported where a Path is made: a run needs none
    from pathlib import Path
    from typing import Any

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class ConfigError(DuctworkError):
    """The project's configuration is missing something or has a wrong value."""


def ductwork_home() -> Path:
    """Where ductwork keeps per-user state: ``$DUCTWORK_HOME`` or ``~/.ductwork``."""
    from pathlib import Path

    return Path(os.environ.get("DUCTWORK_HOME") or Path.home() / ".ductwork")


def find_config(start: str | os.PathLike[str] | None = None) -> tuple[Path | None, dict[str, Any]]:
    """Return ``(file, ductwork table)`` of the nearest configuration, or ``(None, {})``."""
    from pathlib import Path

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
    import tomllib  # only when a config file exists: most runs read none

    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None


def _entry(section: str, kind: str, name: str, start: str | os.PathLike[str] | None,
           example: str) -> tuple[Path | None, dict[str, Any]]:
    """The file and a copy of table ``[tool.ductwork.<section>.<name>]``, or a ConfigError."""
    path, table = find_config(start)
    entries = table.get(section, {})
    if name not in entries:
        where = f"in {path}" if path else "(no ductwork.toml or [tool.ductwork] in pyproject.toml)"
        known = ", ".join(sorted(entries)) or "none"
        raise ConfigError(
            f"{kind} '{name}' is not defined {where}; defined: {known}. Add a table "
            f"[tool.ductwork.{section}.{name}] with {example}."
        )
    return path, dict(entries[name])


def compute_target(name: str, start: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """The settings of compute target ``name``, with its ``backend``."""
    path, settings = _entry("compute", "Compute target", name, start,
                            'backend = "docker" (or "process", ...)')
    backend = settings.pop("backend", None)
    if not isinstance(backend, str):
        raise ConfigError(
            f"Compute target '{name}' in {path} needs backend = \"...\" (inline, process, "
            "docker, dask, or a third-party backend)."
        )
    return {"backend": backend, **settings}


def datastore_settings(name: str,
                       start: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """The ``url`` and storage options of datastore ``name``, with ``${VAR}`` expanded.

    A relative local ``url`` is taken from the configuration file's folder.

    Secrets belong in the environment, not in the file: a value written
    ``"${AZURE_STORAGE_CONNECTION_STRING}"`` is read from the environment of the
    process that opens the datastore (the worker's, when a step opens it).
    """
    path, entry = _entry("datastores", "Datastore", name, start,
                         'url = "az://container/prefix" (any fsspec URL or local path) and '
                         "its storage options")
    settings = {key: _expand(name, key, value) for key, value in entry.items()}
    if not isinstance(settings.get("url"), str) or not settings["url"]:
        raise ConfigError(
            f"Datastore '{name}' in {path} needs url = \"...\" (an fsspec URL such as "
            "az://container/prefix, or a local path)."
        )
    url = os.path.expanduser(settings["url"])
    if "://" not in url and not os.path.isabs(url) and path is not None:
        settings["url"] = str(path.parent / url)  # relative to the file, not the cwd
    return settings


def _expand(store: str, key: str, value: Any) -> Any:
    if not isinstance(value, str) or "${" not in value:
        return value
    missing = [m for m in _ENV_REF.findall(value) if m not in os.environ]
    if missing:
        raise ConfigError(
            f"Datastore '{store}': {key} refers to ${{{missing[0]}}}, which is not set in this "
            f"process's environment. Set {missing[0]} (where the step runs, too)."
        )
    return _ENV_REF.sub(lambda m: os.environ[m.group(1)], value)
