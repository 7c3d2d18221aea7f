"""A step run's row spells its components and outputs as ``json.dumps`` does, character
for character, from remembered pieces: history written before reads back the same and
history written now reads the same in an older ductwork."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from ductwork.runtime.keys.hashing import new_hasher
from ductwork.runtime.records import rows
from ductwork.runtime.records.run import StepRun
from ductwork.runtime.store.artifacts import ArtifactRef
from ductwork.runtime.store.refs import GatherRef, ref_to_json

texts = st.text(max_size=20) | st.sampled_from(["code", "input:x", "é", "\ud800", '"q"\\'])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.dictionaries(texts, texts, max_size=8), min_size=1, max_size=4))
def test_components_are_spelled_as_json_dumps_spells_them(dicts):
    for value in dicts * 2:  # the second time from remembered pieces
        assert rows.str_dict_json(value) == json.dumps(value)


def test_components_of_other_values_and_none_are_json_dumps_too():
    assert rows.str_dict_json(None) is None
    odd = {"a": "x", "b": 1, "c": None}
    assert rows.str_dict_json(odd) == json.dumps(odd)


def _ref(data: bytes, inline: bool, classes: tuple[str, ...] = (),
         serializer: str = "json") -> ArtifactRef:
    return ArtifactRef(new_hasher(data).hexdigest(), serializer, len(data), classes,
                       data if inline else None)


refs = st.builds(_ref, st.binary(max_size=30), st.booleans(),
                 st.lists(st.sampled_from(["m:A", "n:B"]), max_size=2).map(tuple),
                 st.sampled_from(["json", "bytes", "pickle", "my-ser\u00e9"]))


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(texts, refs | st.lists(refs, max_size=3).map(GatherRef.of),
                       max_size=3))
def test_outputs_are_spelled_as_json_dumps_of_ref_to_json(outputs):
    expected = json.dumps({name: ref_to_json(ref) for name, ref in outputs.items()})
    assert rows.outputs_json(outputs) == expected


def test_a_step_row_reads_back_as_it_was_written():
    ref = _ref(b"6", inline=True)
    record = StepRun("inc[5]", "inc", map_index=5, key="k" * 64, run_id="r",
                     components={"code": "c" * 64, "input:x": "d" * 64, "value:x": "5"},
                     output_refs={"output": ref}, metrics={}, cached=True, cached_from="p")
    row = rows.step_row("r", record)
    assert row[10] == json.dumps(record.components)
    assert row[11] == json.dumps({"output": ref.to_dict()}) and row[14] == "{}"
    back = rows.step_from_row(row)
    assert back.components == record.components and back.metrics == {}
    assert back.output_refs == record.output_refs
    assert back.output_refs["output"].inline == b"6"
    with_metrics = rows.step_row("r", StepRun("s", "s", metrics={"loss": 0.5}))
    assert with_metrics[14] == '{"loss": 0.5}' and with_metrics[10] is None


def test_a_keys_rerun_reuses_its_text_only_while_components_and_outputs_are_equal():
    ref, other = _ref(b"6", inline=True), _ref(b"7", inline=False)
    components = {"code": "c" * 64, "input:x": "d" * 64}
    first = StepRun("a", "a", key="k" * 64, components=components, output_refs={"o": ref})
    assert rows.step_row("r", first)[10:12] == (
        json.dumps(components), json.dumps({"o": ref.to_dict()}))
    components["value:x"] = "5"  # the caller's dict changed after its row was written
    again = StepRun("a", "a", key="k" * 64, components=components, output_refs={"o": other})
    assert rows.step_row("r", again)[10:12] == (
        json.dumps(components), json.dumps({"o": other.to_dict()}))
    same = StepRun("a", "a", key="k" * 64, components=dict(components),
                   output_refs={"o": _ref(b"7", inline=False)})
    assert rows.step_row("r", same)[10:12] == rows.step_row("r", again)[10:12]
