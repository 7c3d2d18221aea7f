"""A step returning an open file or a generator fails at once, naming the step and output.

Before, a text file was pickled as its content: the first run returned the open file,
every cached run a ``StringIO`` ([8] item 16 e); a binary file or a generator failed with
"cannot pickle". Checked where the step returns, so every backend refuses the same way.
"""

from __future__ import annotations

import io
from typing import NamedTuple

import pytest

import ductwork as dw
from ductwork import pipeline, step
from ductwork.runtime.engine.annotations import check_outputs


@step
def text_file(path: str):
    return open(path)  # returned open: the point of the test


@step
def binary_file(path: str):
    return open(path, "rb")


@step
def numbers(n: int):
    return (i for i in range(n))


@step
def content(path: str) -> str:
    with open(path) as f:
        return f.read()


class Pair(NamedTuple):
    text: str
    handle: object


@step
def pair(path: str) -> Pair:
    return Pair("fine", open(path))


@pipeline
def opened(path: str, kind: str = "text"):
    makers = {"text": text_file, "binary": binary_file, "pair": pair}
    if kind == "generator":
        return numbers(3)
    return makers[kind](path)


@pytest.fixture
def data(tmp_path):
    path = tmp_path / "data.txt"
    path.write_text("hello")
    return str(path)


@pytest.mark.parametrize("backend", ["inline", "process"])
@pytest.mark.parametrize("store", ["memory://", "local"])
def test_an_open_file_is_refused_on_every_run_naming_the_step(data, backend, store, tmp_path):
    where = str(tmp_path / "store") if store == "local" else store
    for _ in range(2):  # nothing is stored, so the second run is refused the same way
        with pytest.raises(dw.PipelineFailed) as info:
            opened.run(path=data, backend=backend, store=where, progress=False)
        error = info.value.run.steps["text_file"].error
        assert "Step 'text_file' returned an open file (TextIOWrapper)" in error
        assert "output 'output'" in error and "its content or its path" in error


@pytest.mark.parametrize(("kind", "node", "what"), [
    ("binary", "binary_file", "an open file (BufferedReader)"),
    ("generator", "numbers", "a generator"),
    ("pair", "pair", "an open file (TextIOWrapper) for output 'handle'"),
])
def test_binary_files_generators_and_one_output_of_several(data, kind, node, what):
    with pytest.raises(dw.PipelineFailed) as info:
        opened.run(path=data, kind=kind, store="memory://", progress=False)
    error = info.value.run.steps[node].error
    assert f"Step '{node}' returned {what}" in error


def test_the_check_is_a_plain_function_of_the_outputs(data):
    with open(data) as f, pytest.raises(TypeError, match="an open file"):
        check_outputs(text_file, {"output": f})
    check_outputs(content, {"output": "hello"})
    check_outputs(text_file, {"output": io.BytesIO(b"in memory")})  # kept whole by pickle


def test_returning_the_content_works(data):
    @pipeline
    def reads(path: str):
        return content(path)

    assert reads.run(path=data, store="memory://", progress=False).outputs == "hello"
