"""The trigger form, built from a version's parameter JSON Schema, and its answer read back.

Each property becomes one labelled control, typed for the browser to check before
sending (``number`` inputs with ``step``, ``required``, a checkbox for a boolean, a
select for an ``enum``, a JSON textarea for anything else), with the default filled
in. The server reads the posted strings back by the same schema (``parse``): a
number that is not one is an error naming the parameter, and the result is checked
again, whole, by ``publish.validate_parameters`` -- the same check as the REST API.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["FormError", "fields", "parse"]


class FormError(ValueError):
    """A form value that cannot be read as its parameter's type; the message names it."""


def _kind(prop: dict[str, Any]) -> tuple[str, bool]:
    """The control for a property (``int``, ``number``, ``bool``, ``enum``, ``str``,
    ``json``) and whether it may be empty (``null`` allowed)."""
    options = prop.get("anyOf") or prop.get("oneOf")
    nullable = False
    if options:
        kinds = [o.get("type") for o in options]
        nullable = "null" in kinds
        rest = [o for o in options if o.get("type") != "null"]
        if len(rest) == 1:
            prop = {**prop, **rest[0]}
        else:
            return "json", nullable
    if "enum" in prop:
        return "enum", nullable
    kind = {"integer": "int", "number": "number", "boolean": "bool",
            "string": "str"}.get(prop.get("type", ""), "json")
    return kind, nullable


def fields(schema: dict[str, Any], values: dict[str, str] | None = None
           ) -> list[dict[str, Any]]:
    """The form's controls: name, label, kind, value as text, required, options, note."""
    required = set(schema.get("required", ()))
    out = []
    for name, prop in schema.get("properties", {}).items():
        kind, nullable = _kind(prop)
        if values is not None and name in values:
            text = values[name]
        elif "default" in prop:
            default = prop["default"]
            text = ("" if default is None else json.dumps(default) if kind == "json"
                    else str(default).lower() if kind == "bool" else str(default))
        else:
            text = ""
        out.append({
            "name": name, "label": prop.get("title") or name, "kind": kind, "value": text,
            "required": name in required and kind != "bool", "nullable": nullable,
            "options": [str(o) for o in prop.get("enum", ())],
            "note": prop.get("description") or "",
            "type": prop.get("type") or "any JSON value",
        })
    return out


def parse(schema: dict[str, Any], form: dict[str, str]) -> dict[str, Any]:
    """The parameters a posted form gives, typed by ``schema``; an empty optional control
    is left out (so the pipeline's default applies)."""
    params: dict[str, Any] = {}
    for field in fields(schema):
        name, kind = field["name"], field["kind"]
        if kind == "bool":
            params[name] = form.get(name) in ("true", "on", "1")
            continue
        text = form.get(name, "")
        if text == "" and kind != "str":
            if field["nullable"] and name in form:
                params[name] = None
            continue
        try:
            if kind == "int":
                params[name] = int(text)
            elif kind == "number":
                params[name] = float(text)
            elif kind == "json":
                params[name] = json.loads(text)
            elif kind == "enum":
                prop = schema["properties"][name]
                params[name] = next((o for o in prop.get("enum", ()) if str(o) == text), text)
            else:
                params[name] = text
        except ValueError:
            what = {"int": "a whole number", "number": "a number",
                    "json": "JSON"}.get(kind, kind)
            raise FormError(f"Parameter {name!r}: {text!r} is not {what}.") from None
    return params
