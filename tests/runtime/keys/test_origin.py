"""Where code comes from, told by path: the prefix shortcut agrees with sysconfig's roots."""

from __future__ import annotations

import importlib
import json
import os
import sysconfig
from pathlib import Path

import attrs
import pytest

from ductwork.runtime.keys import origin


def by_roots(path: str) -> str | None:
    """The classification from sysconfig's library folders alone (no shortcut)."""
    real = os.path.realpath(path)
    parts = real.split(os.sep)
    packages, stdlib = origin._library_roots()
    if "site-packages" in parts or "dist-packages" in parts or real.startswith(packages):
        return "package"
    return "stdlib" if real.startswith(stdlib) else None


def library_files() -> list[str]:
    files = [os.__file__, json.__file__, attrs.__file__, pytest.__file__]
    for name in ("_json", "_sqlite3", "_decimal"):  # extension modules, in lib-dynload
        file = getattr(importlib.import_module(name), "__file__", None)
        if file:
            files.append(file)
    files.append(os.path.join(sysconfig.get_paths()["stdlib"], "not-there.py"))
    return files


@pytest.mark.parametrize("path", library_files())
def test_library_files_are_classified_as_sysconfig_says(path: str) -> None:
    origin._path_kind.cache_clear()
    assert origin._path_kind(path) == by_roots(path) is not None


def test_a_project_file_is_user_code(tmp_path: Path) -> None:
    file = tmp_path / "pipe.py"
    file.write_text("x = 1\n")
    origin._path_kind.cache_clear()
    assert origin._path_kind(str(file)) is None
    assert by_roots(str(file)) is None


def test_a_distribution_named_like_its_module_is_the_answer_the_full_scan_gives():
    # The shortcut skips importlib.metadata.packages_distributions() (0.4 s here, on the
    # first run that hashes a numpy array): it must agree with that scan wherever it answers.
    import importlib.metadata

    from ductwork.runtime.keys.origin import _named_distribution

    scanned = importlib.metadata.packages_distributions()
    answered = 0
    for top, dists in scanned.items():
        found = _named_distribution(top)
        if found is None:
            continue
        answered += 1
        first = next(d for d in sorted(dists) if _installed(d))
        assert found == (first, importlib.metadata.version(first)), top
    assert answered >= 10  # numpy, attrs, blake3, cloudpickle, ... are installed here
    assert _named_distribution("sklearn") is None  # scikit-learn: the full scan answers
    assert _named_distribution("no_such_module_here") is None


def _installed(dist: str) -> bool:
    import importlib.metadata

    try:
        importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True
