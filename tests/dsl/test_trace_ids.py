"""Invocation ids: the same ids as the original first-free-suffix search, allocated in O(1).

``reference_ids`` is the original ``Trace.new_id`` (try ``name``, ``name-2``, ...
until one is free), kept here as the specification. The real trace must hand
out exactly its ids, for any sequence of calls and nested scopes, including
names that look like ids (``fit-2``) and names no decorator would accept.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ductwork import pipeline, step
from ductwork.dsl.trace import Trace

# ("call", name) is a step call, ("enter", name) a nested pipeline call, ("exit", "") its end.
Op = tuple[str, str]


def reference_ids(ops: list[Op]) -> list[str]:
    """The ids the original quadratic ``new_id`` gave for ``ops``."""
    taken: set[str] = set()
    prefix: list[str] = []
    ids = []

    def new_id(name: str) -> str:
        base = "/".join([*prefix, name])
        candidate, n = base, 1
        while candidate in taken:
            n += 1
            candidate = f"{base}-{n}"
        taken.add(candidate)
        return candidate

    for kind, name in ops:
        if kind == "call":
            ids.append(new_id(name))
        elif kind == "enter":
            scope_id = new_id(name)
            ids.append(scope_id)
            prefix.append(scope_id.rsplit("/", 1)[-1])
        elif prefix:
            prefix.pop()
    return ids


def traced_ids(ops: list[Op]) -> list[str]:
    """The ids ``Trace`` gives for ``ops``."""
    trace = Trace("p")
    ids: list[str] = []
    scopes: list[Any] = []
    for kind, name in ops:
        if kind == "call":
            ids.append(trace.new_id(name))
        elif kind == "enter":
            scope = trace.scope(name)
            ids.append(scope.__enter__())
            scopes.append(scope)
        elif scopes:
            scopes.pop().__exit__(None, None, None)
    return ids


# Names that collide with each other's ids: `fit` and `fit-2`, `fit-2` and `fit-2-2`,
# a name with a slash like a nested id, digits that read as a suffix.
_NAMES = ["fit", "fit-2", "fit-3", "fit-2-2", "prep", "prep-2", "prep/fit", "a", "a-10", "a-1"]
_ops = st.lists(
    st.one_of(
        st.tuples(st.just("call"), st.sampled_from(_NAMES)),
        st.tuples(st.just("enter"), st.sampled_from(_NAMES)),
        st.just(("exit", "")),
    ),
    max_size=60,
)


@given(_ops)
@settings(max_examples=300, deadline=None)
def test_ids_equal_the_first_free_suffix_search(ops):
    assert traced_ids(ops) == reference_ids(ops)


def test_ids_of_tricky_sequences_equal_the_reference():
    cases: list[list[Op]] = [
        [("call", "fit")] * 5,
        # a literal `fit-2` taken first pushes the second `fit` to `fit-3`
        [("call", "fit-2"), ("call", "fit"), ("call", "fit"), ("call", "fit"), ("call", "fit-2")],
        # `fit-2` called twice becomes `fit-2-2`, which a later literal `fit-2-2` skips
        [("call", "fit"), ("call", "fit"), ("call", "fit-2"), ("call", "fit-2-2"),
         ("call", "fit"), ("call", "fit-2")],
        # a pipeline and a step of one name share the counter; scopes prefix their ids
        [("enter", "prep"), ("call", "fit"), ("call", "fit"), ("exit", ""), ("call", "prep"),
         ("enter", "prep"), ("call", "fit"), ("enter", "prep"), ("call", "fit"), ("exit", ""),
         ("exit", ""), ("call", "prep/fit"), ("call", "prep-3/fit")],
        # a step named like a nested id collides with it
        [("call", "prep/fit"), ("enter", "prep"), ("call", "fit"), ("exit", "")],
        # many calls, then a name between the taken ones
        [("call", "a")] * 12 + [("call", "a-10"), ("call", "a"), ("call", "a-1")],
    ]
    for ops in cases:
        assert traced_ids(ops) == reference_ids(ops), ops


def test_pipeline_ids_with_nesting_maps_and_repeats():
    @step
    def fit(x: int) -> int:
        return x

    @step
    def prep(x: int) -> int:
        return x

    @pipeline
    def inner(x: int = 0):
        return fit(fit(x))

    @pipeline
    def outer(x: int = 0):
        a = fit(x)
        b = inner(a)
        c = prep(fit.map([1, 2]))
        d = inner(inner(b))
        return fit(fit.map([a, c, d]))

    def prep_pipeline(x: int = 0):  # a pipeline named like a step of the outer one
        return fit(x)

    prep_pipeline.__name__ = "prep"
    nested_prep = pipeline(prep_pipeline)

    @pipeline
    def clash(x: int = 0):
        return fit(nested_prep(prep(nested_prep(x))))

    assert list(outer.graph().nodes) == [
        "fit", "inner/fit", "inner/fit-2", "fit-2", "prep", "inner-2/fit", "inner-2/fit-2",
        "inner-3/fit", "inner-3/fit-2", "fit-3", "fit-4",
    ]
    assert list(clash.graph().nodes) == ["prep/fit", "prep-2", "prep-3/fit", "fit"]


def test_many_calls_of_one_step_trace_in_linear_time(count_calls):
    """16,000 calls took 24 s when each call searched its suffixes from 2 up."""

    @step
    def add(x: int) -> int:
        return x + 1

    def build(n: int) -> Callable[[], Any]:
        @pipeline
        def many():
            return [add(i) for i in range(n)]

        return many

    def calls(n: int) -> int:
        p = build(n)
        holder: dict[str, Any] = {}
        counted = count_calls(lambda: holder.setdefault("plan", p.trace()))
        plan = holder["plan"]
        assert len(plan.invocations) == n and f"add-{n}" in plan.invocations
        return counted

    calls(500)  # warm up: first-use imports and caches are not the point
    small, large = calls(2000), calls(8000)
    # Linear: 4x the calls cost about 4x; quadratic costs 16x. Counted, not timed.
    assert large < 4.5 * small, (small, large)
