"""A class whose module is not imported (a published snapshot's, loaded by value) keys by
the module it was adopted with, as the same class keys when its module is imported."""

from __future__ import annotations

import sys
import textwrap
import uuid

from ductwork.runtime import caches
from ductwork.runtime.keys.classes import resolve
from ductwork.runtime.keys.fingerprint import fingerprint
from ductwork.runtime.keys.origin import adopt

SHAPES = '''
from typing import NamedTuple


class Base:
    scale = 2


class Point(NamedTuple):
    x: int
    y: int = 0


class Model(Base):
    def predict(self, v):
        return v * self.scale
'''

CLASSES = ("Point", "Model", "Base")


def _digests(module) -> dict[str, str]:
    caches.clear_all()  # fingerprints are memoized per class; sys.modules is no guard
    return {c: fingerprint(getattr(module, c)).digest for c in CLASSES}


def test_an_adopted_class_keys_as_when_its_module_is_imported(tmp_path, import_file):
    name = f"adopted_{uuid.uuid4().hex[:8]}"
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(SHAPES))
    module = import_file(path, name)
    imported = _digests(module)

    del sys.modules[name]  # as in a process that loaded these classes by value
    detached = _digests(module)
    # Without its module, a NamedTuple and a class without methods lose their source, and
    # Model the base its statement names.
    assert all(detached[c] != imported[c] for c in CLASSES), (detached, imported)
    assert resolve(f"{name}:Point") is None

    for c in CLASSES:
        adopt(getattr(module, c), str(path), vars(module))
    assert _digests(module) == imported
    assert resolve(f"{name}:Point") is module.Point

    # A working copy imported under the same name later does not stand in for the
    # adopted module: its classes are other classes, from other source.
    edited = tmp_path / "edited" / f"{name}.py"
    edited.parent.mkdir()
    edited.write_text(path.read_text().replace("y: int = 0", "y: int = 1"))
    try:
        copy = import_file(edited, name)
        assert _digests(module) == imported
        assert _digests(copy)["Point"] != imported["Point"]
    finally:
        sys.modules.pop(name, None)
