"""examples/notebook.ipynb runs top to bottom in a real Jupyter kernel.

The kernel is this interpreter: a kernelspec written to a temporary directory
points at ``sys.executable`` and is found through ``JUPYTER_PATH``, so nothing
has to be installed globally and no other ``python3`` kernel can be picked up.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

import ductwork as dw

NOTEBOOK = Path(__file__).resolve().parent.parent / "examples" / "notebook.ipynb"
KERNEL = "ductwork-test"


@pytest.fixture
def kernel_name(tmp_path, monkeypatch):
    """A kernelspec for this interpreter, visible only to this test."""
    spec_dir = tmp_path / "jupyter" / "kernels" / KERNEL
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "language": "python",
        "display_name": KERNEL,
    }))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")  # no path-migration warning
    return KERNEL


def _cell(nb, source):
    found = [c for c in nb.cells if c.cell_type == "code" and c.source.strip() == source]
    assert len(found) == 1, f"expected one code cell whose source is {source!r}"
    return found[0]


def _cell_starting(nb, prefix):
    found = [c for c in nb.cells if c.cell_type == "code" and c.source.startswith(prefix)]
    assert len(found) == 1, f"expected one code cell starting with {prefix!r}"
    return found[0]


def _stdout(cell):
    return "".join(o.text for o in cell.outputs if o.output_type == "stream"
                   and o.name == "stdout")


def _result(cell):
    results = [o for o in cell.outputs if o.output_type == "execute_result"]
    assert len(results) == 1, f"cell {cell.source!r} has no value shown"
    return results[0].data


def test_stored_notebook_is_clean():
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.kernelspec.name == "python3"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, cell.source


@pytest.mark.slow
def test_notebook_runs_in_a_real_kernel(tmp_path, monkeypatch, kernel_name):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the notebook's scratch store goes here
    nb = nbformat.read(NOTEBOOK, as_version=4)

    started = time.monotonic()
    client = nbclient.NotebookClient(nb, timeout=120, kernel_name=kernel_name,
                                     resources={"metadata": {"path": str(work)}})
    client.execute()  # raises CellExecutionError naming the cell if one fails
    assert time.monotonic() - started < 60

    for cell in nb.cells:
        if cell.cell_type == "code":
            errors = [o for o in cell.outputs if o.output_type == "error"]
            assert not errors, f"{cell.source!r} raised {errors[0].ename}: {errors[0].evalue}"
            stderr = "".join(o.text for o in cell.outputs
                             if o.output_type == "stream" and o.name == "stderr")
            assert not stderr, f"{cell.source!r} wrote to stderr:\n{stderr}"

    # Steps called as plain functions, and the traced graph.
    assert "the steps work as plain functions" in _stdout(_cell_starting(nb, "assert split("))
    mermaid = _stdout(_cell_starting(nb, "@pipeline"))
    for node in ("load", "split", "fit", "score", "mean"):
        assert node in mermaid

    # The first run: results, worker processes, metrics.
    assert "'mse':" in _result(_cell(nb, "run.outputs"))["text/plain"]
    inspect = _stdout(_cell_starting(nb, 'print(run.steps["fit"].logs'))
    assert "fit ran in another process: True" in inspect
    assert "'n_train': 16" in inspect and "'train_mean':" in inspect

    # A rerun is all cache hits: 5 nodes and 4 map elements.
    rerun = _stdout(_cell_starting(nb, "def summary(run):"))
    assert "succeeded: 9 of 9 step runs cached; ran: nothing" in rerun

    # Editing the helper reruns score (each element) and mean, whose input changed.
    edited = _stdout(_cell_starting(nb, "def loss(prediction: float, actual: float) -> float:  #"))
    assert "succeeded: 3 of 9 step runs cached; ran: ['mean', 'score']" in edited
    assert "score[0]: ran: the key differs" in edited
    assert "helper function __main__.loss changed" in edited
    assert "mean: ran: the key differs" in edited and "input 'values' changed" in edited
    assert "fit: cache hit" in edited
    assert "mean absolute error:" in edited

    # Rich reprs: enforced as soon as the classes have them.
    if hasattr(dw.Pipeline, "_repr_html_"):
        assert "text/html" in _result(_cell(nb, "training"))
    if hasattr(dw.Run, "_repr_html_"):
        assert "text/html" in _result(_cell_starting(nb, "run = training.run("))
