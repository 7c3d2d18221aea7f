"""The quickstart: load rows, split them, fit a tiny model, score the test rows.

Run it with ``python examples/quickstart.py`` or
``ductwork run examples/quickstart.py:training -p c=0.5``.
"""

from __future__ import annotations

import random
from typing import NamedTuple

import ductwork as dw
from ductwork import pipeline, step


class Split(NamedTuple):
    train: list[float]
    test: list[float]


@step
def load(n: int, seed: int = 0) -> list[float]:
    """Make ``n`` noisy measurements around 10 (a stand-in for reading a file)."""
    rng = random.Random(seed)
    return [10 + rng.gauss(0, 2) for _ in range(n)]


@step
def split(rows: list[float], frac: float = 0.8) -> Split:
    """Keep the first ``frac`` of the rows for training."""
    cut = int(len(rows) * frac)
    return Split(rows[:cut], rows[cut:])


@step
def fit(train: list[float], c: float = 1.0) -> dict:
    """'Fit' a shrunken mean: the whole model is one number."""
    return {"mean": c * sum(train) / len(train)}


@step
def score(row: float, model: dict) -> float:
    """Squared error of one test row."""
    return (row - model["mean"]) ** 2


@step
def mean(values: list[float]) -> float:
    """Average of a list."""
    return sum(values) / len(values)


@pipeline
def training(n: int = 100, c: float = 1.0):
    rows = load(n)
    train, test = split(rows)
    model = fit(train, c=c)
    errors = score.map(test, model=model)  # one step run per test row
    return {"model": model, "mse": mean(errors)}


if __name__ == "__main__":
    # Steps are plain functions outside a pipeline:
    assert fit([1.0, 3.0]) == {"mean": 2.0}

    print(training.to_mermaid())
    run = training.run(c=0.9)
    print(run)
    for step_run in run.steps.values():
        if step_run.map_index is None:
            print(f"  {step_run.id:<8} {step_run.status:<10} {step_run.duration * 1000:.2f} ms")
    print("outputs:", run.outputs)
    assert run.status == "succeeded"
    print(f"ductwork {dw.__version__}: quickstart ran end to end.")
