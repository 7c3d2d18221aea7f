"""What a cold step's store writes cost, and that the cheaper path writes the same bytes.

A small step output of a built-in type (JSON data, ``str``, ``bytes``) is serialized
straight to bytes and hashed once; the streaming machinery (a spool, a hashing writer,
the disk-full context managers) is for values that may be large. The digests, sizes,
inline bytes and entry bytes below were made by the store before that path existed
(6b9610a): a store written then is read the same, and every cache key stays.
"""

from __future__ import annotations

import io
from typing import Any

import pytest

from ductwork.runtime.keys.hashing import new_hasher
from ductwork.runtime.store.artifacts import INLINE_MAX, ArtifactRef, ArtifactStore
from ductwork.runtime.store.serializers import serializer_for
from tests.calls import calls_made

KEY = "ab" + "c" * 62

# value, serializer, size, digest, inlined -- as 6b9610a's store.put(value, inline=True) gave
PINNED: list[tuple[Any, str, int, str, bool]] = [
    (0, "json", 1, "4d067153ac729a4a7e8220c97935ffba67487860d58298ceeb23864369867d9f", True),
    (1, "json", 1, "d63bd9a826af91c1fea371965a64e11ee20f13e46b5f52c59901136605b3a487", True),
    (-7, "json", 2, "bc57098b7fa3465cf60ba6a4c2a8a541d4179e25e172ef9d66613f61a578f41c", True),
    (2**70, "json", 22, "1b6dacce36a0e2efb3b55fad2cd25470918669d35e8c7f5d204dc6e0a3f21151", True),
    (True, "json", 4, "acc8a7699a2bf4cbd05f69678eac4fc236572041c28dfd0ab558e5fcf2ab6540", True),
    (None, "json", 4, "03f88b99c3d8073bba8948d6e762aac443b265f606cc05abd4d172f03a4def6a", True),
    (1.5, "json", 3, "fa2bb4fa06828a1a7439b284a4753287a6e1b7f558d9c2948fa22d7bf64d4543", True),
    (-0.0, "json", 4, "d79fad4210b23fe0acd772f71d46037f0aaabe0217950ae8471baf2478f60297", True),
    ("", "str", 0, "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262", True),
    ("héllo \udcff", "str", 10,
     "0fa56d7d91dc4d0de7ae3ee9c6ca25d110ceca3df12afdba79cb24115f3ca7a5", True),
    ("x" * 1024, "str", 1024,
     "71c7a224be567fb9acd2c32f87359835322cf9241b9c01f247fff2b4bdabf644", True),
    ("x" * 1025, "str", 1025,
     "71b7ce25ca2144dcf4d7ed561d8a526bb7f7adaf8d10a124540d82bf113678c9", False),
    (b"", "bytes", 0, "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262", True),
    (b"\x00\xff", "bytes", 2,
     "1878e767f1a09c64a9e3b73ffc1af306482097367e3809bbc800350d2b255dc0", True),
    (b"b" * 1024, "bytes", 1024,
     "28ef7bba16740e06d1deee19d98333c80f777647eea5edb043be177da4cc2e28", True),
    (b"b" * 1025, "bytes", 1025,
     "3df2771cf426da44793609b4fa3f4a7b2097dc419fc3bf08738a83a8a292aeb3", False),
    ([1, [2.5, None]], "json", 14,
     "e9de8c486f207a68edad5e95aba7bfb25057b926ddbabc03d19f8d6bd1b2783a", True),
    ({"b": 1, "a": [True]}, "json", 18,
     "25ea242bf283589a560b307dade1314adcb2aca96c3a6739023880f32c227af2", True),
    (list(range(300)), "json", 1091,
     "8162ae1b0e6fdeb7252b84ad4c02db4ab28517e525edde744a340cb73ddae63a", False),
    ({"k": "é"}, "json", 14,
     "9d573d6b4d420838485983017167773f93ae825c77980e0fb11b5aee81982f17", True),
]

# The entry 6b9610a's put_key wrote for an inlined int and a str too large to inline.
PINNED_ENTRY = (
    b'{"outputs": {"b": {"digest": "ac376f1f89449ee437277f5630b337c25aa291dc04fea8204b83c7f7'
    b'76364a55", "serializer": "str", "size": 2000}, "output": {"digest": "5dce9f4279cef5616'
    b'72af25dd2ec2a3f303a60e694fb381c2028662a13d51664", "inline": "NDE=", "serializer": "js'
    b'on", "size": 2}}, "version": 1}'
)



@pytest.mark.parametrize(("value", "serializer", "size", "digest", "inlined"), PINNED,
                         ids=[repr(p[0])[:20] for p in PINNED])
def test_a_value_is_stored_as_before(store, value, serializer, size, digest, inlined):
    ref = store.put(value, inline=True)
    assert (ref.serializer, ref.size, ref.digest, ref.inline is not None) == (
        serializer, size, digest, inlined)
    assert ref.classes == ()
    assert store.get(ref) == value and type(store.get(ref)) is type(value)
    plain = store.put(value)  # the same value as an object file: the same identity
    assert (plain.digest, plain.size, plain.inline) == (digest, size, None)
    assert store.get(plain) == value
    # The bytes are the ones the serializer streams (what a worker or an older store wrote).
    streamed = io.BytesIO()
    serializer_for(value).dump(value, streamed)
    assert new_hasher(streamed.getvalue()).hexdigest() == digest
    if inlined:
        assert ref.inline == streamed.getvalue()


def test_an_entry_is_written_byte_for_byte_as_before(store):
    refs = {"output": store.put(41, inline=True), "b": store.put("x" * 2000, inline=True)}
    store.put_key(KEY, refs)
    assert store._cat(store.key_path(KEY)) == PINNED_ENTRY
    assert store.get_key(KEY) == refs


def test_an_entry_written_before_is_a_hit(store):
    from entry_files import write_entry

    store.put("x" * 2000)  # the object the pinned entry names
    write_entry(store, KEY, PINNED_ENTRY)
    found = store.get_key(KEY)
    assert found is not None and store.get(found["output"]) == 41
    assert store.get(found["b"]) == "x" * 2000


def test_a_small_builtin_output_skips_the_streaming_machinery(tmp_path):
    store = ArtifactStore(str(tmp_path / "store"))
    store.put(6, inline=True)  # imports done once per process (the hasher) stay out of it
    made = calls_made(lambda: store.put(7, inline=True))[1:]  # [0]: the lambda
    streaming = [n for n in made if n.startswith(("Spool.", "HashingWriter.", "StoreFiles._"))
                 or n.endswith("contextmanager")]
    assert streaming == [], f"a small int's put went through {streaming}"
    assert "JSONEncoder.__init__" not in made  # one encoder, made once
    # 6b9610a made 40 (with the spool, the writer, two context managers and a new encoder)
    assert len(made) <= 13, f"a small int's put made {len(made)} calls: {made}"


def test_an_entry_is_encoded_without_a_new_encoder_or_context_managers(tmp_path):
    store = ArtifactStore(str(tmp_path / "store"))
    ref = store.put(7, inline=True)
    store.put_key(KEY, {"output": ref})  # the prefix folder exists: the steady state
    made = calls_made(lambda: store.put_key("ab" + "d" * 62, {"output": ref}))
    assert "JSONEncoder.__init__" not in made
    assert not [n for n in made if n.startswith("contextmanager") or "__enter__" in n], made


def test_a_large_value_still_streams(tmp_path):
    store = ArtifactStore(str(tmp_path / "store"))
    value = b"z" * (2 << 20)  # past the in-memory spool: through a temp file, hashed as written
    ref = store.put(value, inline=True)
    assert ref.inline is None and ref.size == len(value)
    assert ref.digest == new_hasher(value).hexdigest()
    assert store.get(ref) == value
    assert list(store.iter_objects()) == [ref.digest]
    assert INLINE_MAX < ref.size


ENTRY_SHAPES: list[dict[str, ArtifactRef]] = [
    {},
    {"output": ArtifactRef("a" * 64, "json", 1, (), b"5")},
    {"b": ArtifactRef("b" * 64, "str", 2000), "a": ArtifactRef("c" * 64, "bytes", 0, (), b"")},
    {"\u00e9t\u00e9 \"q\"\n": ArtifactRef("d" * 64, "my.ser:v-2", 7, (), b"\x00\xff\x10")},
    {"model": ArtifactRef("e" * 64, "pickle", 900, ("m:Model", "m:Layer"), b"x" * 900),
     "n": ArtifactRef("f" * 64, "json", 3, (), b"1.5")},
    {f"out{i}": ArtifactRef(f"{i:064x}", "json", i, (), str(i).encode()) for i in range(12)},
]


@pytest.mark.parametrize("outputs", ENTRY_SHAPES, ids=range(len(ENTRY_SHAPES)))
def test_an_entry_is_spelled_as_json_dumps_sorted_spells_it(store, outputs):
    """The spelling the reader parses fastest, and the one 6b9610a wrote: byte for byte."""
    import json

    store.put_key(KEY, outputs)
    body = {"version": 1, "outputs": {n: r.to_dict() for n, r in outputs.items()}}
    assert store._cat(store.key_path(KEY)) == json.dumps(body, sort_keys=True).encode()


def test_a_cold_entry_is_written_in_few_calls(tmp_path):
    store = ArtifactStore(str(tmp_path / "store"))
    ref = store.put(7, inline=True)
    store.put_key(KEY, {"output": ref})  # the prefix folder exists: the steady state
    made = calls_made(lambda: store.put_key("ab" + "d" * 62, {"output": ref}))[1:]
    # No JSON encoder (its iterencode makes a C encoder per call, ~30k instructions for an
    # entry) and no os.path.join for the temp name: 6b9610a made 14 calls here.
    assert not [n for n in made if n.startswith(("JSONEncoder.", "join"))], made
    assert len(made) <= 10, f"put_key made {len(made)} calls: {made}"


def test_json_scalars_are_spelled_as_json_dumps_spells_them():
    """A step's usual output is one number: spelled by repr, as json's C encoder does."""
    import json
    import math

    from hypothesis import given
    from hypothesis import strategies as st

    from ductwork.runtime.store.builtin_serializers import JSON

    def as_json(value: Any) -> bytes:
        return json.dumps(value, allow_nan=False, separators=(",", ":")).encode("ascii")

    @given(st.one_of(st.integers(), st.integers(min_value=-(2**200), max_value=2**200),
                     st.floats(allow_nan=False, allow_infinity=False), st.booleans(),
                     st.none()))
    def same(value: Any) -> None:
        assert JSON.dumps(value) == as_json(value)

    same()
    for value in (0.1, 1e300, -1e-300, 5e-324, 1e16, 123456789012345678, -0.0, False):
        assert JSON.dumps(value) == as_json(value)
    assert not math.isnan(0.0)  # nan and inf never reach dumps: JSON declines them


def test_a_json_scalar_is_dumped_without_the_encoder():
    from ductwork.runtime.store.builtin_serializers import JSON

    for value in (7, 2.5, True, None):
        made = calls_made(lambda v=value: JSON.dumps(v))[1:]
        assert not [n for n in made if n.startswith("JSONEncoder.")], (value, made)
