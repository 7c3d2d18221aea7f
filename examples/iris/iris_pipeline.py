"""The Azure ML v1 pipelines how-to's scenario, in ductwork: prepare the iris table, train
two scikit-learn models, compare them.

The data comes in as the registered tabular dataset ``iris`` (``iris/iris.csv`` in the run
store's datastore, uploaded and registered by ``run.py``); the steps are plain functions,
so each can be called and tested on its own. On the docker backend every step runs in a
container built from ``SKLEARN`` (scikit-learn, pandas and numpy at this machine's
versions, so a model pickled in a container loads here); the other backends use this
interpreter and only record the environment in the cache key.

``ductwork run examples/iris/iris_pipeline.py:iris_training -p c=0.5`` runs it once the
dataset is registered (``python examples/iris/run.py`` does everything).
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, NamedTuple

import ductwork as dw
from ductwork import pipeline, step

if TYPE_CHECKING:  # the fields' type only: numpy loads where the steps run
    import numpy as np

DATASET = "iris"
IRIS_CSV = "iris/iris.csv"  # in the run store's datastore, where run.py uploads it
FEATURES = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]
TARGET = "target"


def _pinned(package: str) -> str:
    """``package==<the version installed here>``, or the bare name if it is not installed."""
    try:
        return f"{package}=={version(package)}"
    except PackageNotFoundError:
        return package


#: What the steps need in a container: the same versions as this interpreter's.
SKLEARN = dw.Environment(pip=[_pinned("scikit-learn"), _pinned("pandas"), _pinned("numpy")])


class Split(NamedTuple):
    """prep's four named outputs, numpy arrays (stored as .npy: no pickle between machines)."""

    x_train: np.ndarray
    x_test: np.ndarray
    y_train: np.ndarray
    y_test: np.ndarray


@step(env=SKLEARN)
def prep(frame, test_size: float = 0.3, seed: int = 0) -> Split:
    """Drop incomplete rows, then a stratified train/test split of features and labels."""
    from sklearn.model_selection import train_test_split

    frame = frame.dropna(subset=[*FEATURES, TARGET])
    print(f"prep: {len(frame)} rows, {frame[TARGET].nunique()} classes")
    x_train, x_test, y_train, y_test = train_test_split(
        frame[FEATURES].to_numpy(), frame[TARGET].to_numpy(), test_size=test_size,
        random_state=seed, stratify=frame[TARGET].to_numpy())
    return Split(x_train, x_test, y_train, y_test)


@step(env=SKLEARN)
def train(x_train, y_train, kind: str, c: float = 1.0, max_depth: int = 3, seed: int = 0):
    """Fit one model: ``kind`` is ``"logreg"`` (strength ``1/c``) or ``"tree"``."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.tree import DecisionTreeClassifier

    if kind == "logreg":
        model = LogisticRegression(C=c, max_iter=500)
    elif kind == "tree":
        model = DecisionTreeClassifier(max_depth=max_depth, random_state=seed)
    else:
        raise ValueError(f"unknown model kind {kind!r}: use 'logreg' or 'tree'")
    return model.fit(x_train, y_train)


@step(env=SKLEARN)
def evaluate(model, x_test, y_test, kind: str) -> dict:
    """Accuracy and macro F1 on the test rows, recorded as the step's metrics."""
    from sklearn.metrics import accuracy_score, f1_score

    predicted = model.predict(x_test)
    scores = {"accuracy": float(accuracy_score(y_test, predicted)),
              "f1_macro": float(f1_score(y_test, predicted, average="macro"))}
    for name, value in scores.items():
        dw.context().log_metric(name, value)
    print(f"{kind}: accuracy {scores['accuracy']:.3f}, f1 {scores['f1_macro']:.3f}")
    return {"kind": kind, **scores}


@step
def compare(*results: dict) -> dict:
    """The best model by accuracy (then F1); its scores become this step's metrics."""
    best = max(results, key=lambda r: (r["accuracy"], r["f1_macro"]))
    dw.context().log_metric("best_accuracy", best["accuracy"])
    return {"best": best["kind"], "accuracy": best["accuracy"],
            "scores": {r["kind"]: r["accuracy"] for r in results}}


@pipeline
def iris_training(c: float = 1.0, max_depth: int = 3, test_size: float = 0.3, seed: int = 0):
    """prepare data -> train two models -> compare; ``c`` and ``max_depth`` tune them."""
    # The latest registered version, pinned to the content it was registered with, read
    # wherever the step runs (a container gets its folder mounted). That content is part
    # of prep's key: a new version with other bytes reruns it.
    data = prep(dw.Dataset.get(DATASET), test_size=test_size, seed=seed)
    logreg = train.named("train_logreg")(data.x_train, data.y_train, "logreg", c=c)
    tree = train.named("train_tree")(data.x_train, data.y_train, "tree",
                                     max_depth=max_depth, seed=seed)
    scored = [evaluate.named(f"evaluate_{kind}")(model, data.x_test, data.y_test, kind)
              for kind, model in (("logreg", logreg), ("tree", tree))]
    return compare(*scored)
