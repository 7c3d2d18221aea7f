"""@step: decoration, options checked at decoration time, plain calls outside a trace."""

from __future__ import annotations

import inspect
from typing import NamedTuple

import pytest

import ductwork as dw
from ductwork import step


@step
def add(a: int, b: int = 1) -> int:
    """Add two numbers."""
    return a + b


def test_bare_and_called_forms_both_work():
    @step()
    def f(x):
        return x * 2

    assert isinstance(add, dw.Step) and isinstance(f, dw.Step)
    assert f(3) == 6


def test_step_keeps_name_doc_signature_wrapped():
    assert add.__name__ == "add"
    assert add.__doc__ == "Add two numbers."
    assert add.__wrapped__ is add.fn
    assert inspect.signature(add) == inspect.signature(add.fn)
    assert list(inspect.signature(add).parameters) == ["a", "b"]
    assert add.fn(1, 2) == 3


def test_outside_a_trace_a_step_is_a_plain_call():
    assert add(2) == 3
    assert add(2, b=5) == 7
    assert add.map([1, 2, 3], b=10) == [11, 12, 13]


def test_plain_call_propagates_errors_unchanged():
    @step
    def boom():
        raise KeyError("x")

    with pytest.raises(KeyError):
        boom()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"cach": False}, "unknown option 'cach'. Did you mean 'cache'?"),
        ({"cache": "no"}, "option cache= must be True or False"),
        ({"retries": -1}, "option retries= must be a whole number >= 0"),
        ({"retries": 1.5}, "option retries= must be a whole number >= 0"),
        ({"timeout": 0}, "option timeout= must be a number of seconds > 0"),
        ({"timeout": True}, "option timeout= must be a number of seconds > 0"),
        ({"env": {"pip": ["x"]}}, "option env= must be a ductwork.Environment"),
        ({"compute": ""}, "option compute= must be a name"),
        ({"cache_version": 1.5}, "option cache_version= must be a string"),
        ({"ignore_inputs": ["nope"]}, "ignore_inputs names 'nope', which is not an argument"),
        ({"ignore_inputs": [1]}, "option ignore_inputs= must be a list of argument names"),
        ({"hash_paths": 3}, "option hash_paths= must be a list of paths"),
        ({"env_vars": "HOME"}, "option env_vars= must be a list of environment variable names"),
        ({"env_vars": [1]}, "option env_vars= must be a list of environment variable names"),
        ({"env_vars": ["1X"]}, "env_vars names '1X', which is not an environment variable"),
        ({"env_vars": ["A-B"]}, "env_vars names 'A-B', which is not an environment variable"),
        ({"env_vars": ["A", "A"]}, "env_vars repeats a name"),
        ({"outputs": "train"}, "outputs= must be a tuple of output names"),
        ({"outputs": ("a", "a")}, "outputs= repeats a name"),
        ({"outputs": ("a",)}, "outputs= needs at least two names"),
        ({"outputs": ("a", "1b")}, "output name '1b' must be a Python identifier"),
        ({"name": "not an id"}, "name= must be a Python identifier"),
    ],
)
def test_bad_options_fail_at_decoration_naming_step_and_option(options, message):
    with pytest.raises(dw.DefinitionError) as err:

        @step(**options)
        def fit(train, logger=None):
            return train

    assert message in str(err.value)
    assert "'fit'" in str(err.value) or "not an id" in str(err.value)


def test_options_are_frozen_and_normalized():
    @step(cache=False, retries=2, timeout=600, compute="docker-small",
          env=dw.Environment(pip=["scikit-learn==1.5.2"]), cache_version=2,
          ignore_inputs="logger", hash_paths=["data/"])
    def fit(train, logger=None):
        return train

    o = fit.options
    assert (o.cache, o.retries, o.timeout, o.compute, o.cache_version) == (
        False, 2, 600.0, "docker-small", "2")
    assert o.env.pip == ("scikit-learn==1.5.2",)
    assert o.ignore_inputs == ("logger",)
    assert o.hash_paths == ("data/",)
    assert o.env_vars == ()
    with pytest.raises(AttributeError):
        o.retries = 3  # type: ignore[misc]


def test_environment_is_hashable_value_and_checks_packages():
    a = dw.Environment(pip=["x==1"], env={"B": "2", "A": "1"})
    b = dw.Environment(pip=("x==1",), env={"A": "1", "B": "2"})
    assert a == b and hash(a) == hash(b)
    with pytest.raises(dw.DefinitionError, match="pip"):
        dw.Environment(pip=[""])


class Pair(NamedTuple):
    train: list
    test: list


def test_output_names_from_declaration_and_annotations():
    @step(outputs=("train", "test"))
    def a(x):
        return x, x

    @step
    def b(x) -> tuple[int, str]:
        return 1, "a"

    @step
    def c(x) -> Pair:
        return Pair([], [])

    @step
    def d(x) -> tuple[int, ...]:
        return (1,)

    assert a.options.outputs == ("train", "test")
    assert b.options.outputs == ("output_0", "output_1")
    assert c.options.outputs == ("train", "test")
    assert d.options.outputs == ("output",)


def test_outputs_disagreeing_with_annotation_is_an_error():
    with pytest.raises(dw.DefinitionError, match="declares 3 outputs but the return annotation"):

        @step(outputs=("a", "b", "c"))
        def f(x) -> tuple[int, int]:
            return 1, 2


def test_async_generator_and_double_decoration_are_refused():
    with pytest.raises(dw.DefinitionError, match="plain functions"):

        @step
        async def f():
            return 1

    with pytest.raises(dw.DefinitionError, match="plain functions"):

        @step
        def g():
            yield 1

    with pytest.raises(dw.DefinitionError, match="already a step"):
        step(add)
    with pytest.raises(TypeError, match="decorates a function"):
        step(3)  # type: ignore[call-overload]


def test_decoration_runs_nothing():
    calls = []

    @step
    def f():
        calls.append(1)

    assert calls == []


def test_env_vars_are_kept_as_names():
    @step(env_vars=["MODEL_DIR", "_Flag2"])
    def fit(train):
        return train

    assert fit.options.env_vars == ("MODEL_DIR", "_Flag2")
