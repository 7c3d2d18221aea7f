"""A ``__ductwork_hash__`` that raises is an error naming the type, never a key by type name.

Before, the exception was swallowed where code constants are hashed and the value
counted as its type's name: two different values of the type then shared a key
(a stale hit waiting to happen).
"""

from __future__ import annotations

import textwrap
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import ductwork as dw
from ductwork import pipeline, step
from ductwork.runtime.keys.cache_key import CacheKeyError, input_components
from ductwork.runtime.keys.fingerprint import fingerprint
from ductwork.runtime.keys.hashing import UnhashableValue, hash_value


class Broken:
    """A user type whose hook fails."""

    def __init__(self, value: object = 1) -> None:
        self.value = value

    def __ductwork_hash__(self) -> object:
        raise RuntimeError(f"boom {self.value}")


def test_a_hook_that_raises_names_the_type_and_the_exception() -> None:
    with pytest.raises(UnhashableValue) as err:
        hash_value(Broken())
    message = str(err.value)
    assert f"{__name__}.Broken" in message
    assert "__ductwork_hash__" in message and "RuntimeError: boom 1" in message
    assert isinstance(err.value.__cause__, RuntimeError)


def test_a_failing_hook_inside_a_container_names_its_path() -> None:
    with pytest.raises(UnhashableValue) as err:
        hash_value({"a": [0, Broken()]})
    assert err.value.path == "['a'][1]"
    assert "RuntimeError: boom 1" in str(err.value)


def test_a_hook_that_recurses_forever_is_still_a_nesting_error() -> None:
    class Deep:
        def __ductwork_hash__(self) -> object:
            return [Deep()]

    with pytest.raises(UnhashableValue, match="nested too deeply"):
        hash_value(Deep())


def test_a_failing_hook_on_an_input_names_step_argument_type_and_exception() -> None:
    @step
    def use(thing: object) -> int:
        return 1

    with pytest.raises(CacheKeyError) as err:
        input_components(use, {"thing": Broken()})
    message = str(err.value)
    assert "'use'" in message and "'thing'" in message
    assert "Broken" in message and "RuntimeError: boom 1" in message


def test_a_failing_hook_on_an_input_fails_the_step_not_the_run() -> None:
    @step
    def use(thing: object) -> int:
        return 1

    @pipeline
    def p():
        return use(Broken())

    with pytest.raises(dw.PipelineFailed) as err:
        p.run()
    message = str(err.value)
    assert "'use'" in message and "'thing'" in message and "boom 1" in message


def _load(tmp_path: Path, import_file: Any, source: str) -> ModuleType:
    name = f"hookmod_{uuid.uuid4().hex[:8]}"
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(source))
    return import_file(path, name)


CONSTANT = """
class Settings:
    def __init__(self, alpha):
        self.alpha = alpha

    def __ductwork_hash__(self):
        raise ValueError("no hash today")


SETTINGS = Settings(1)


def uses_settings(x):
    return x * SETTINGS.alpha
"""


def test_a_constant_whose_hook_raises_is_not_keyed_by_its_type_name(tmp_path, import_file):
    module = _load(tmp_path, import_file, CONSTANT)
    with pytest.raises(CacheKeyError) as err:
        fingerprint(module.uses_settings)
    message = str(err.value)
    assert "SETTINGS" in message and "Settings" in message
    assert "ValueError: no hash today" in message
