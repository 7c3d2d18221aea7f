"""The classes a value is made of: found in values, recorded in refs, resolved for keys."""

from __future__ import annotations

import dataclasses
import enum
import json
import logging
import sys
from typing import NamedTuple

import numpy as np

from ductwork.runtime.keys.cache_key import input_classes
from ductwork.runtime.keys.classes import class_names, classes_in, recorded, resolve
from ductwork.runtime.store.artifacts import ArtifactRef, parse_entry
from ductwork.runtime.store.refs import GatherRef, ref_from_json, ref_to_json


class Inner:
    __slots__ = ("x",)

    def __init__(self, x):
        self.x = x


@dataclasses.dataclass
class Holder:
    inner: Inner
    items: list


class Color(enum.Enum):
    RED = 1


class Point(NamedTuple):
    x: int
    y: int


def test_classes_are_found_inside_containers_attributes_and_slots():
    value = {"h": Holder(Inner(Color.RED), [1, 2.0, Point(1, 2)]), "n": np.zeros(3)}
    found = set(classes_in(value))
    assert {Holder, Inner, Color, Point, np.ndarray} <= found
    assert not found & {dict, list, int, float, logging.Logger}
    assert classes_in(3) == [] and classes_in([1, "a", None]) == []


def test_a_value_holding_itself_terminates():
    loop: list = [Inner(1)]
    loop.append(loop)
    assert classes_in(loop) == [Inner]


def test_names_resolve_to_the_live_classes():
    names = class_names([Holder(Inner(1), [])])
    assert names == (f"{__name__}:Holder", f"{__name__}:Inner")
    assert [resolve(n) for n in names] == [Holder, Inner]
    assert resolve("no_such_module_x:Thing") is None


def test_refs_keep_their_classes_through_json_and_the_index():
    ref = ArtifactRef("a" * 64, "pickle", 10, (f"{__name__}:Inner",))
    assert ref_from_json(ref_to_json(ref)) == ref
    assert recorded(ref) == ref.classes
    plain = ArtifactRef("b" * 64, "json", 2)
    assert "classes" not in plain.to_dict() and ref_from_json(ref_to_json(plain)) == plain
    entry = json.dumps({"version": 1, "outputs": {"output": ref.to_dict()}}).encode()
    assert parse_entry(entry)["output"] == ref
    gather = GatherRef.of([ref, plain])
    assert recorded(gather) == ref.classes
    assert recorded([1]) is None


def test_input_classes_are_fingerprinted_and_named():
    ref = ArtifactRef("a" * 64, "pickle", 10, (f"{__name__}:Inner", "gone_mod:Gone"))
    found = input_classes(ref)
    assert set(found) == {f"{__name__}.Inner", "gone_mod.Gone"}
    assert found == input_classes(Inner(2)) | {"gone_mod.Gone": found["gone_mod.Gone"]}
    assert input_classes(3) == {} and input_classes(ArtifactRef("c" * 64, "json", 1)) == {}


def test_a_module_not_imported_yet_is_imported_to_resolve_its_class(tmp_path, monkeypatch):
    (tmp_path / "dkey_lazy_models.py").write_text("class Model:\n    pass\n")
    (tmp_path / "dkey_broken_models.py").write_text(
        "import pathlib\npathlib.Path(__file__).with_suffix('.ran').touch()\nraise ValueError\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("dkey_lazy_models", "dkey_broken_models"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    cls = resolve("dkey_lazy_models:Model")
    assert cls is sys.modules["dkey_lazy_models"].Model
    # A module whose code fails is counted by name, and not run again for every key.
    ref = ArtifactRef("a" * 64, "pickle", 10, ("dkey_broken_models:Model",))
    assert input_classes(ref) == input_classes(ref)
    assert (tmp_path / "dkey_broken_models.ran").exists()
    (tmp_path / "dkey_broken_models.ran").unlink()
    assert resolve("dkey_broken_models:Model") is None
    assert not (tmp_path / "dkey_broken_models.ran").exists()


def test_an_installed_class_keys_by_name_as_it_does_live():
    ref = ArtifactRef("a" * 64, "pickle", 10, ("numpy:ndarray", "attr._make:Attribute",
                                            "attr._make:_Nothing"))
    import attr

    field = attr.fields(attr.make_class("C", ["x"]))[0]  # an instance of attr._make.Attribute
    live = input_classes(np.zeros(1)) | input_classes([field])
    assert input_classes(ref) == live and len(set(live.values())) == 2  # numpy's, attrs'
