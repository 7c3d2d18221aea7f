"""A recorded class fingerprints the same in every process, whatever it imported before.

The classes of an upstream output are recorded by name in its ref, and the process that
keys a consumer (the driver serving hits, or any Dask worker) resolves them. Whether that
process had already imported the class's module (a worker that ran the producer, one that
did not) must not change the key: each test keys the same names in fresh interpreters, one
before the module is imported and one after, and compares.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import ductwork as dw

pytestmark = pytest.mark.slow  # fresh interpreters

ROOT = str(Path(dw.__file__).resolve().parents[1])

KEYED = """
import json, sys
from ductwork.runtime.keys.cache_key import input_classes
from ductwork.runtime.store.artifacts import ArtifactRef
names = tuple(json.loads(sys.argv[1]))
{before}
print(json.dumps(input_classes(ArtifactRef("a" * 64, "pickle", 10, names))))
"""


def keyed(names: list[str], before: str = "", path: str = "") -> dict[str, str]:
    """``input_classes`` of a ref recording ``names``, in a fresh interpreter that ran
    ``before`` first; ``path`` goes on its PYTHONPATH after this checkout."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (ROOT, path) if p)}
    done = subprocess.run(
        [sys.executable, "-c", KEYED.format(before=before), json.dumps(names)],
        env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def write_package(site: Path, name: str, *, metadata: bool) -> None:
    """An installed-looking package under a ``site-packages`` folder, with or without the
    distribution metadata ``importlib.metadata`` reads."""
    (site / name).mkdir(parents=True)
    (site / name / "__init__.py").write_text('__version__ = "1.2.3"\n')
    (site / name / "models.py").write_text(textwrap.dedent("""
        class Model:
            def predict(self, x):
                return x
    """))
    if metadata:
        info = site / f"{name}-1.2.3.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.2.3\n")
        (info / "top_level.txt").write_text(f"{name}\n")


def test_an_installed_class_keys_the_same_before_and_after_its_module_is_imported(tmp_path):
    site = tmp_path / "lib" / "site-packages"
    write_package(site, "dkeypkg", metadata=True)
    names = ["dkeypkg.models:Model"]
    cold = keyed(names, path=str(site))
    warm = keyed(names, "import dkeypkg.models", path=str(site))
    live = keyed([], "import dkeypkg.models\nfrom ductwork.runtime.keys.cache_key import "
                 "input_classes\nprint(json.dumps(input_classes(dkeypkg.models.Model())))\n"
                 "raise SystemExit", path=str(site))
    assert cold == warm == live and set(cold) == {"dkeypkg.models.Model"}


def test_an_installed_module_without_metadata_keys_the_same_either_way(tmp_path):
    # No dist-info: its version is its __version__, read whether or not it was imported.
    site = tmp_path / "lib" / "site-packages"
    write_package(site, "dkeybare", metadata=False)
    names = ["dkeybare.models:Model"]
    assert keyed(names, path=str(site)) == keyed(names, "import dkeybare.models", path=str(site))


def test_scikit_learn_classes_key_the_same_in_a_fresh_process_and_after_a_fit():
    pytest.importorskip("sklearn")
    names = ["sklearn.tree._classes:DecisionTreeClassifier", "sklearn.tree._tree:Tree"]
    fitted = ("from sklearn.tree import DecisionTreeClassifier\n"
              "DecisionTreeClassifier().fit([[0], [1]], [0, 1])")
    assert keyed(names) == keyed(names, fitted)


def test_a_user_module_not_imported_yet_keys_by_its_source(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    (project / "dkeyuser.py").write_text("class Model:\n    def predict(self, x):\n"
                                         "        return x\n")
    names = ["dkeyuser:Model"]
    cold = keyed(names, path=str(project))
    assert cold == keyed(names, "import dkeyuser", path=str(project))
    (project / "dkeyuser.py").write_text("class Model:\n    def predict(self, x):\n"
                                         "        return -x\n")
    assert keyed(names, path=str(project)) != cold  # its code counts, not only its name
