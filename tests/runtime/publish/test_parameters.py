"""Parameter schemas made by pydantic from the signature, and triggers checked against them."""

from __future__ import annotations

import json
from typing import Literal, Optional

import pytest

from ductwork import pipeline
from ductwork.dsl.core import ParameterError as PipelineParameterError
from ductwork.runtime.publish import ParameterError, validate_parameters
from ductwork.runtime.publish.parameters import parameters_schema


class Model:
    pass


@pipeline
def typed(n: int, ratio: float = 0.5, label: str = "a", flag: bool = False,
          ids: list[int] = [1, 2], limit: Optional[int] = None,  # noqa: B006, UP045 -- as users write
          mode: Literal["fast", "slow"] = "fast", anything=3, model: Model = None):
    return None


def test_the_schema_has_a_property_per_parameter_with_types_and_defaults():
    schema = parameters_schema(typed)
    props = schema["properties"]
    assert schema["type"] == "object" and schema["additionalProperties"] is False
    assert schema["required"] == ["n"]
    assert list(props) == ["n", "ratio", "label", "flag", "ids", "limit", "mode", "anything",
                           "model"]
    assert props["n"]["type"] == "integer" and "default" not in props["n"]
    assert (props["ratio"]["type"], props["ratio"]["default"]) == ("number", 0.5)
    assert (props["label"]["type"], props["flag"]["type"]) == ("string", "boolean")
    assert props["ids"] == {"default": [1, 2], "items": {"type": "integer"}, "title": "Ids",
                            "type": "array"}
    assert {o["type"] for o in props["limit"]["anyOf"]} == {"integer", "null"}
    assert props["mode"]["enum"] == ["fast", "slow"]
    assert "type" not in props["anything"] and props["anything"]["default"] == 3
    assert "type" not in props["model"] and "Model" in props["model"]["description"]
    json.dumps(schema)  # all of it is JSON


@pytest.mark.parametrize(("params", "parameter", "words"), [
    ({}, "n", "Missing required parameter 'n' (an integer)"),
    ({"n": 1, "nope": 2}, "nope", "Unknown parameter 'nope'; the parameters are: n, ratio"),
    ({"n": "1"}, "n", "Parameter 'n': got '1', expected an integer"),
    ({"n": True}, "n", "expected an integer"),
    ({"n": 1, "ratio": "x"}, "ratio", "expected a number"),
    ({"n": 1, "flag": 1}, "flag", "expected true or false"),
    ({"n": 1, "ids": [1, "a"]}, "ids", "Parameter 'ids'[1]: got 'a', expected an integer"),
    ({"n": 1, "limit": 2.5}, "limit", "expected an integer or null"),
    ({"n": 1, "mode": "medium"}, "mode", "expected one of 'fast', 'slow'"),
])
def test_a_wrong_parameter_is_named_with_what_is_wrong(params, parameter, words):
    record = {"parameters": parameters_schema(typed)}
    with pytest.raises(ParameterError) as caught:
        validate_parameters(record, params)
    assert caught.value.parameter == parameter
    assert words in str(caught.value)
    assert isinstance(caught.value, PipelineParameterError)  # dw.ParameterError catches it


def test_good_parameters_pass_and_json_numbers_become_floats_where_declared():
    record = json.loads(json.dumps({"parameters": parameters_schema(typed)}))  # as stored
    given = {"n": 3, "ratio": 1, "limit": None, "ids": [], "mode": "slow", "anything": {"a": 1},
             "model": [1]}
    checked = validate_parameters(record, given)
    assert checked == given and isinstance(checked["ratio"], float)
    assert validate_parameters(record["parameters"], {"n": 1}) == {"n": 1}  # a bare schema


def test_annotations_that_are_strings_resolve():
    namespace: dict = {}
    exec("from __future__ import annotations\nfrom ductwork import pipeline\n"
         "@pipeline\ndef p(a: int, b: list[str] = ['x'], c: Undefined = 1): pass\n", namespace)
    props = parameters_schema(namespace["p"])["properties"]
    assert props["a"]["type"] == "integer"
    assert props["b"] == {"default": ["x"], "items": {"type": "string"}, "title": "B",
                          "type": "array"}
    assert "type" not in props["c"] and props["c"]["default"] == 1  # unresolvable: any JSON
