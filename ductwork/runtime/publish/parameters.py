"""A pipeline's parameters as a JSON Schema, and parameters checked against it.

The schema is made by pydantic from the pipeline function's signature: one
field per parameter, typed by its annotation (``Any`` when there is none),
required when it has no default, with its default otherwise; an object schema
that forbids other properties. A parameter whose annotation JSON cannot express
(a user class, a DataFrame) accepts any JSON value and says so in its
description; a default JSON cannot express is left out of the schema (the
pipeline still applies it).

Validation reads only the recorded schema -- never the user's code, which the
server must not load -- with ``jsonschema``: pydantic can only validate against
a model built from the annotations themselves, and those may name user classes.
A JSON number given for a ``number`` parameter becomes a float, since JSON does
not tell ``1`` from ``1.0`` and the pipeline's cache keys do.
"""

from __future__ import annotations

import typing
import warnings
from typing import Any

from ductwork.runtime.publish.errors import ParameterError

__all__ = ["parameters_schema", "validate_parameters"]


def parameters_schema(pipeline: Any) -> dict[str, Any]:
    """Return the JSON Schema (draft 2020-12) of ``pipeline``'s parameters."""
    import pydantic

    try:
        hints = typing.get_type_hints(pipeline.fn, include_extras=True)
    except Exception:  # a name that does not resolve: judge each parameter on its own
        hints = {}
    fields: dict[str, Any] = {}
    notes: dict[str, str] = {}
    for name, param in pipeline.signature.parameters.items():
        annotation = hints.get(name, param.annotation)
        if isinstance(annotation, str):
            annotation = _resolve(annotation, pipeline.fn)
        if annotation is param.empty:
            annotation = Any
        elif not _expressible(annotation):
            notes[name] = f"{_type_name(annotation)}: any JSON value (not checked)"
            annotation = Any
        default = ... if param.default is param.empty else param.default
        info = pydantic.Field(default, description=notes.get(name))
        fields[name] = (annotation, info)
    model = pydantic.create_model(  # type: ignore[call-overload]
        pipeline.name, __config__=pydantic.ConfigDict(extra="forbid",
                                                     arbitrary_types_allowed=True),
        **fields,
    )
    with warnings.catch_warnings():
        # A default JSON cannot hold is dropped from the schema with a warning: expected.
        warnings.simplefilter("ignore", pydantic.json_schema.PydanticJsonSchemaWarning)
        schema: dict[str, Any] = model.model_json_schema()
    schema.setdefault("properties", {})
    schema.setdefault("required", [])
    return schema


def _resolve(annotation: str, fn: Any) -> Any:
    """A string annotation evaluated in the function's module, or ``Any`` if it does not
    resolve (a name imported only under ``TYPE_CHECKING``, say)."""
    try:
        return eval(annotation, fn.__globals__)  # the user's own code, in the user's process
    except Exception:
        return Any


def _expressible(annotation: Any) -> bool:
    """Whether pydantic can write a JSON Schema for ``annotation``."""
    import pydantic

    try:
        pydantic.TypeAdapter(annotation).json_schema()
    except (pydantic.PydanticSchemaGenerationError, pydantic.errors.PydanticInvalidForJsonSchema,
            pydantic.PydanticUserError, TypeError, ValueError):
        return False
    return True


def _type_name(annotation: Any) -> str:
    return getattr(annotation, "__qualname__", None) or repr(annotation)


def validate_parameters(version_record: dict[str, Any], params: dict[str, Any]
                        ) -> dict[str, Any]:
    """Check JSON ``params`` against a version's ``parameters`` schema; return them ready to
    run, or raise ``ParameterError`` naming the parameter and what is wrong."""
    import jsonschema

    schema = version_record.get("parameters", version_record)
    if not isinstance(params, dict):
        raise ParameterError("", f"Parameters are a JSON object of name: value, got "
                                 f"{type(params).__name__}.")
    properties: dict[str, Any] = schema.get("properties", {})
    listed = ", ".join(properties) or "none"
    for name in params:
        if name not in properties:
            raise ParameterError(name, f"Unknown parameter '{name}'; the parameters are: "
                                       f"{listed}.")
    for name in schema.get("required", []):
        if name not in params:
            raise ParameterError(name, f"Missing required parameter '{name}' "
                                       f"({_expected(properties[name], schema)}).")
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(params), key=lambda e: list(map(str, e.path)))
    for error in errors:
        if not error.absolute_path:
            continue
        name = str(error.absolute_path[0])
        inner = "".join(f"[{p!r}]" for p in list(error.absolute_path)[1:])
        raise ParameterError(
            name, f"Parameter '{name}'{inner}: got {error.instance!r}, expected "
                  f"{_expected(error.schema, schema)}.")
    if errors:
        raise ParameterError("", f"Parameters do not match the schema: {errors[0].message}")
    return {name: _as_declared(value, properties[name]) for name, value in params.items()}


def _as_declared(value: Any, prop: dict[str, Any]) -> Any:
    """A JSON integer given for a number parameter, as the float the pipeline declares."""
    number = prop.get("type") == "number" or any(
        o.get("type") == "number" for o in prop.get("anyOf", ()))
    integer = prop.get("type") == "integer" or any(
        o.get("type") == "integer" for o in prop.get("anyOf", ()))
    if number and not integer and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _expected(prop: dict[str, Any], root: dict[str, Any]) -> str:
    """Say in words which JSON values ``prop`` accepts."""
    if "$ref" in prop:
        target: Any = root
        for part in prop["$ref"].lstrip("#/").split("/"):
            target = target.get(part, {})
        return _expected(target, root)
    if "const" in prop:
        return f"{prop['const']!r}"
    if "enum" in prop:
        return "one of " + ", ".join(map(repr, prop["enum"]))
    for combine in ("anyOf", "oneOf"):
        if combine in prop:
            return " or ".join(_expected(option, root) for option in prop[combine])
    kind = prop.get("type")
    if kind == "array":
        items = prop.get("items")
        return f"an array of {_expected(items, root)}" if items else "an array"
    if kind == "object":
        return "an object"
    if isinstance(kind, str):
        return {"integer": "an integer", "number": "a number", "string": "a string",
                "boolean": "true or false", "null": "null"}.get(kind, kind)
    return "any JSON value"
