"""Loading what a command line names: ``FILE.py:PIPELINE`` and ``-p name=value``.

``convert_param`` reads a parameter's text by its annotation; ``UsageError`` is
what every command raises for input it cannot use (exit code 2).
"""

from __future__ import annotations

import contextlib
import enum
import importlib.util
import inspect
import json
import math
import sys
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ductwork.dsl.core import DuctworkError
from ductwork.dsl.pipeline import Pipeline


class UsageError(DuctworkError):
    """The command line asks for something that cannot be done; exit code 2."""


def load_pipeline(target: str) -> Pipeline:
    """Import ``FILE.py:NAME`` and return the pipeline object named there."""
    file, sep, name = target.rpartition(":")
    if not sep or not file or not name:
        raise UsageError(f"Expected FILE.py:PIPELINE, got '{target}'.")
    path = Path(file).resolve()
    if not path.is_file():
        raise UsageError(f"No such file: {file}")
    module_name = path.stem if path.stem.isidentifier() else "ductwork_user_module"
    # The file's folder goes on sys.path so its own imports (helpers beside it) work.
    sys.path.insert(0, str(path.parent))
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    obj = getattr(module, name, None)
    if not isinstance(obj, Pipeline):
        found = [k for k, v in vars(module).items() if isinstance(v, Pipeline)]
        raise UsageError(
            f"{file} has no pipeline named '{name}'"
            + (f"; it defines: {', '.join(found)}." if found else " and defines none (@pipeline).")
        )
    return obj


def parse_params(pipeline: Pipeline, pairs: Sequence[str]) -> dict[str, Any]:
    """Turn ``name=value`` strings into parameters, converted by the parameter's annotation."""
    try:
        hints = typing.get_type_hints(pipeline.fn)
    except Exception:
        hints = {}
    params: dict[str, Any] = {}
    given: dict[str, str] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep:
            raise UsageError(f"-p takes name=value, got '{pair}'.")
        if name not in pipeline.parameters:
            known = ", ".join(pipeline.parameters) or "none"
            raise UsageError(
                f"Pipeline '{pipeline.name}' has no parameter '{name}' (known: {known})."
            )
        if name in given:  # keeping the last one would run with a value the user may not mean
            raise UsageError(
                f"Parameter '{name}' is given twice (-p {name}={_shown(given[name], False)}, "
                f"-p {name}={_shown(text, False)}); give it once."
            )
        given[name] = text
        default = pipeline.parameters[name]
        kind = hints.get(name)
        if kind is None and default is not inspect.Parameter.empty and default is not None:
            kind = type(default)
        params[name] = convert_param(name, text, kind)
    return params


_NONE_WORDS = ("None", "null")


def convert_param(name: str, text: str, kind: Any) -> Any:
    """Convert the text of ``-p name=text`` by the parameter's annotation (None: the text).

    ``None``/``null`` is None where the annotation allows it; a ``Literal`` takes one of
    its values, an ``Enum`` a member's name or value; a union tries its types in order.
    Anything else that is not a plain scalar, str or path is read as JSON.
    """
    origin = typing.get_origin(kind)
    if kind is None or kind is Any:
        return text
    if origin is typing.Annotated:
        return convert_param(name, text, typing.get_args(kind)[0])
    if origin is typing.Union or origin is types.UnionType:
        args = typing.get_args(kind)
        if type(None) in args and text in _NONE_WORDS:
            return None
        for arg in args:
            if arg is not type(None):
                with contextlib.suppress(UsageError):
                    return convert_param(name, text, arg)
        raise UsageError(f"Parameter '{name}' expects {_describe(kind)}, got {_shown(text)}.")
    if origin is typing.Literal:
        choices = typing.get_args(kind)
        for choice in choices:
            if text in _spellings(choice):
                return choice
        listed = ", ".join(map(repr, choices))
        raise UsageError(f"Parameter '{name}' must be one of {listed}; got {_shown(text)}.")
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        for member in kind:
            if text in (member.name, str(member.value)):
                return member
        names = ", ".join(m.name for m in kind)
        values = ", ".join(repr(m.value) for m in kind)
        raise UsageError(
            f"Parameter '{name}' must be a {kind.__name__}: {names} (or a value: {values}); "
            f"got {_shown(text)}."
        )
    target = origin or kind
    try:
        if target is bool:
            lowered = text.lower()
            if lowered not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(text)
            return lowered in ("true", "1", "yes")
        if target is int:
            return _to_int(name, text)
        if target is float:
            value = float(text)
            if math.isinf(value) and "inf" not in text.lower():
                raise UsageError(f"Parameter '{name}': {_shown(text)} is out of float range.")
            return value
        if target is str:
            return text
        if target is Path:
            return Path(text)
        return json.loads(text)
    except ValueError:
        raise UsageError(
            f"Parameter '{name}' expects {_describe(kind)}, got {_shown(text)}."
        ) from None


def _to_int(name: str, text: str) -> int:
    """``int(text)``, saying so when the text is a number too long for Python to convert."""
    try:
        return int(text)
    except ValueError:
        digits = text.strip().lstrip("+-").replace("_", "")
        limit = sys.get_int_max_str_digits()
        if digits.isdigit() and 0 < limit < len(digits):
            # The limit is process-wide (sys.set_int_max_str_digits); not ours to raise.
            raise UsageError(
                f"Parameter '{name}' has {len(digits)} digits, more than Python converts from "
                f"text ({limit}). Annotate it `str` and convert it inside a step."
            ) from None
        raise


def _spellings(choice: Any) -> tuple[str, ...]:
    """The texts that mean a ``Literal`` value on the command line."""
    if isinstance(choice, str):
        return (choice,)
    if isinstance(choice, enum.Enum):
        return (choice.name, str(choice.value))
    if choice is None or isinstance(choice, bool):
        return (str(choice), json.dumps(choice))  # None/null, True/true
    return (str(choice),)


def _describe(kind: Any) -> str:
    if isinstance(kind, type):
        return kind.__name__
    return repr(kind).replace("typing.", "")


def _shown(text: str, quoted: bool = True) -> str:
    """The text of a value for a message, shortened when long."""
    short = text if len(text) <= 60 else f"{text[:40]}... ({len(text)} characters)"
    return f"'{short}'" if quoted else short
