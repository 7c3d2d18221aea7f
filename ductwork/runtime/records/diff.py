"""What differs between two runs, step by step: ``diff_runs(a, b)`` -> ``RunDiff``.

Two runs are compared from their records alone; no output is read and no
user code runs. Steps are matched by invocation id. For a step in both runs
the key components each step run stored are compared: its ``code:*`` parts
(which helper, class or constant changed, described by ``keys.cache_key.diff``,
the same sentences ``ductwork why`` gives), its ``input:<arg>`` digests (with
the small values recorded beside them, ``shown``; an input equal to a pipeline
parameter is also shown with the parameter's values), and
the rest (environment, ``cache_version``, ``hash_paths``, ...). Outputs are
compared by digest, never by value. A ``map`` step is compared as one node: how
many elements each run had, and how many of them differ in outputs or inputs.
A step that differs only in timing, or in being a cache hit in one run and run
in the other, counts as the same (the cache hits are still listed).
"""

from __future__ import annotations

import json

from ductwork.dsl.slotted import Record, as_dict, fill
from ductwork.runtime.keys.cache_key import diff as diff_components
from ductwork.runtime.keys.errors import UnhashableValue
from ductwork.runtime.keys.hashing import hash_value
from ductwork.runtime.keys.shown import PREFIX as SHOWN_PREFIX
from ductwork.runtime.records.run import Run, StepRun

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["RunDiff", "StepDiff", "diff", "diff_runs"]

#: Run fields compared as "the environment" of the whole run.
RUN_FIELDS = ("pipeline", "status", "backend", "git_commit", "git_dirty", "ductwork_version",
              "python_version")


def _pair(old: Any, new: Any) -> list[Any]:
    """An old -> new change as JSON-able data."""
    return [old, new]


def _new(value: Any, kind: type) -> Any:
    """``value``, or a new empty ``kind`` for None (a default never shared)."""
    return kind() if value is None else value


class StepDiff(Record):
    """How one step (present in both runs) differs; a map step is summarized as one."""

    __slots__ = ("id", "status", "cached", "code", "inputs", "components", "outputs", "metrics",
                 "duration", "map", "note")
    id: str
    status: list[Any] | None
    cached: list[bool] | None
    code: list[str]
    inputs: list[dict[str, Any]]
    components: list[str]
    outputs: dict[str, str]
    metrics: dict[str, list[Any]]
    duration: list[float | None]
    map: dict[str, Any] | None
    note: str | None

    def __init__(self, id: str, status: list[Any] | None = None,
                 cached: list[bool] | None = None, code: list[str] | None = None,
                 inputs: list[dict[str, Any]] | None = None,
                 components: list[str] | None = None, outputs: dict[str, str] | None = None,
                 metrics: dict[str, list[Any]] | None = None,
                 duration: list[float | None] | None = None, map: dict[str, Any] | None = None,
                 note: str | None = None) -> None:
        fill(self, id, status, cached, _new(code, list), _new(inputs, list),
             _new(components, list), _new(outputs, dict), _new(metrics, dict),
             [None, None] if duration is None else duration, map, note)

    @property
    def differs(self) -> bool:
        """Whether anything but timing and being a cache hit differs."""
        # A rerun is mostly cache hits: a step that ran once and was reused is the same step.
        return bool(self.status or self.code or self.inputs or self.components
                    or any(v != "same" for v in self.outputs.values()) or self.metrics
                    or self.note or (self.map and self.map.get("differs")))

    def to_dict(self) -> dict[str, Any]:
        """The step's differences as JSON-able data."""
        return _json_copy(as_dict(self))


def _json_copy(value: Any) -> Any:
    """``value`` with its lists, tuples and dicts copied (tuples as lists), for JSON."""
    if isinstance(value, dict):
        return {k: _json_copy(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_copy(v) for v in value]
    return value


class RunDiff(Record):
    """What differs between run ``a`` and run ``b``: parameters, graph, and step by step."""

    __slots__ = ("a", "b", "params", "params_added", "params_removed", "run", "steps_added",
                 "steps_removed", "steps", "same", "duration")
    a: str
    b: str
    params: dict[str, list[Any]]
    params_added: dict[str, Any]
    params_removed: dict[str, Any]
    run: dict[str, list[Any]]
    steps_added: list[str]
    steps_removed: list[str]
    steps: list[StepDiff]
    same: list[str]
    duration: list[float | None]

    def __init__(self, a: str, b: str, params: dict[str, list[Any]] | None = None,
                 params_added: dict[str, Any] | None = None,
                 params_removed: dict[str, Any] | None = None,
                 run: dict[str, list[Any]] | None = None, steps_added: list[str] | None = None,
                 steps_removed: list[str] | None = None, steps: list[StepDiff] | None = None,
                 same: list[str] | None = None,
                 duration: list[float | None] | None = None) -> None:
        fill(self, a, b, _new(params, dict), _new(params_added, dict),
             _new(params_removed, dict), _new(run, dict), _new(steps_added, list),
             _new(steps_removed, list), _new(steps, list), _new(same, list),
             [None, None] if duration is None else duration)

    @property
    def changed(self) -> list[StepDiff]:
        """The steps in both runs that differ in more than timing."""
        return [s for s in self.steps if s.differs]

    @property
    def differs(self) -> bool:
        """Whether the runs differ in anything but timing (and their ids)."""
        return bool(self.params or self.params_added or self.params_removed or self.run
                    or self.steps_added or self.steps_removed or self.changed)

    def __bool__(self) -> bool:
        return self.differs

    def to_dict(self) -> dict[str, Any]:
        """Everything that differs, as JSON-able data (``ductwork diff --json``)."""
        return {
            "a": self.a, "b": self.b, "differs": self.differs,
            "parameters": {"changed": self.params, "added": self.params_added,
                           "removed": self.params_removed},
            "run": self.run, "duration": self.duration,
            "graph": {"added": self.steps_added, "removed": self.steps_removed},
            "steps": {s.id: s.to_dict() for s in self.changed},
            "same": self.same,
            "same_cached": {s.id: s.cached for s in self.steps if s.cached and not s.differs},
        }

    def render(self) -> str:
        """The differences as text for a terminal, one section per step that differs."""
        from ductwork.runtime.records.diff_render import render

        return render(self)

    def __str__(self) -> str:
        return self.render()


def diff_runs(a: Run | str, b: Run | str, store: Any = None) -> RunDiff:
    """Compare two runs (or run ids, read from ``store``): what differs, step by step."""
    run_a, run_b = _load(a, store), _load(b, store)
    out = RunDiff(run_a.id, run_b.id, duration=[run_a.duration, run_b.duration])
    params_a, params_b = _as_stored(run_a.params), _as_stored(run_b.params)
    for name in sorted(params_a.keys() | params_b.keys()):
        if name not in params_b:
            out.params_removed[name] = params_a[name]
        elif name not in params_a:
            out.params_added[name] = params_b[name]
        elif params_a[name] != params_b[name]:
            out.params[name] = _pair(params_a[name], params_b[name])
    for field in RUN_FIELDS:
        old, new = getattr(run_a, field), getattr(run_b, field)
        if old != new:
            out.run[field] = _pair(old and str(old) if field == "status" else old,
                                   new and str(new) if field == "status" else new)
    nodes_a, nodes_b = _nodes(run_a), _nodes(run_b)
    out.steps_added = [n for n in nodes_b if n not in nodes_a]
    out.steps_removed = [n for n in nodes_a if n not in nodes_b]
    context = _Context(run_a, run_b)
    for node in nodes_b:
        if node in nodes_a:
            step = context.step(node)
            out.steps.append(step)
            if not step.differs:
                out.same.append(node)
    return out


def _load(run: Run | str, store: Any) -> Run:
    if isinstance(run, Run):
        return run
    from ductwork.runtime.records.history import get_run

    return get_run(run, store=store)


def _as_stored(params: dict[str, Any]) -> dict[str, Any]:
    """Parameters as the run store keeps them (JSON), so a live run's tuple equals its list."""
    return json.loads(json.dumps(params, default=repr))


def _nodes(run: Run) -> list[str]:
    """The ids of a run's graph nodes, in order (map elements are not nodes)."""
    if run.graph and run.graph.get("nodes"):
        return [n["id"] for n in run.graph["nodes"]]
    return [s.id for s in run.steps.values() if s.map_index is None]


def _elements(run: Run, node: str) -> dict[int, StepRun]:
    return {s.map_index: s for s in run.steps.values()
            if s.map_index is not None and s.id.rsplit("[", 1)[0] == node}


def _digest(ref: Any) -> str | None:
    return getattr(ref, "digest", None)


class _Context:
    """The two runs, with what is needed to describe an input: edges and parameter digests."""

    def __init__(self, a: Run, b: Run) -> None:
        self.a, self.b = a, b
        self.param_digests = (_param_digests(a), _param_digests(b))
        self.sources = {(e["target"], e["argument"]): e
                        for run in (a, b) for e in (run.graph or {}).get("edges", ())}

    def step(self, node: str) -> StepDiff:
        """Compare node ``node`` of both runs."""
        rec_a, rec_b = self.a.steps.get(node), self.b.steps.get(node)
        out = StepDiff(node)
        if rec_a is None or rec_b is None:
            out.note = f"not recorded in run {self.a.id if rec_a is None else self.b.id}"
            return out
        out.duration = [rec_a.duration, rec_b.duration]
        if rec_a.status != rec_b.status:
            out.status = _pair(str(rec_a.status), str(rec_b.status))
        if rec_a.cached != rec_b.cached:
            out.cached = _pair(rec_a.cached, rec_b.cached)
        out.outputs = _outputs(rec_a, rec_b)
        out.metrics = _metrics(rec_a, rec_b)
        elems_a, elems_b = _elements(self.a, node), _elements(self.b, node)
        if elems_a or elems_b or _is_map(self.a, node) or _is_map(self.b, node):
            out.map = _map_summary(elems_a, elems_b)
            both = sorted(elems_a.keys() & elems_b.keys())
            # Code and environment are the same for every element: the first pair speaks for all.
            if both:
                self._components(out, elems_a[both[0]], elems_b[both[0]], inputs=False)
            return out
        self._components(out, rec_a, rec_b, inputs=True)
        return out

    def _components(self, out: StepDiff, rec_a: StepRun, rec_b: StepRun, inputs: bool) -> None:
        old, new = rec_a.components, rec_b.components
        if old is None or new is None:
            if (old is None) != (new is None):
                which = self.a.id if old is None else self.b.id
                out.note = f"no cache key recorded in run {which} (cache=False or it failed first)"
            return
        out.code = diff_components(_part(old, "code"), _part(new, "code"))
        out.components = diff_components(_part(old, None), _part(new, None))
        if inputs:
            out.inputs = self._inputs(out.id, old, new)

    def _inputs(self, node: str, old: dict[str, str], new: dict[str, str]) -> list[dict[str, Any]]:
        found = []
        names = sorted({k for k in old.keys() | new.keys() if k.startswith("input:")})
        for name in names:
            if old.get(name) == new.get(name):
                continue
            arg = name[len("input:"):]
            entry: dict[str, Any] = {"argument": arg, "old": old.get(name), "new": new.get(name)}
            shown = _pair(old.get(SHOWN_PREFIX + arg), new.get(SHOWN_PREFIX + arg))
            if shown != [None, None]:  # small values, as recorded when the keys were made
                entry["shown"] = shown
            edge = self.sources.get((node, arg))
            if edge is not None:
                entry["from_step"] = edge["source"]
                entry["from_output"] = edge["output"]
            param_a = self.param_digests[0].get(old.get(name) or "")
            param_b = self.param_digests[1].get(new.get(name) or "")
            if param_a is not None or param_b is not None:
                entry["parameter"] = param_b or param_a
                entry["values"] = _pair(
                    _as_stored(self.a.params).get(param_a or param_b),
                    _as_stored(self.b.params).get(param_b or param_a))
            found.append(entry)
        return found


def _part(components: dict[str, str], kind: str | None) -> dict[str, str]:
    """The ``code``/``code:*`` components, or (``kind`` None) all but those and ``input:*``."""
    def is_code(k: str) -> bool:
        return k == "code" or k.startswith("code:")

    if kind == "code":
        return {k: v for k, v in components.items() if is_code(k)}
    return {k: v for k, v in components.items()
            if not is_code(k) and not k.startswith(("input:", SHOWN_PREFIX))}


def _param_digests(run: Run) -> dict[str, str]:
    """Digest -> parameter name, to recognize an input that is a pipeline parameter."""
    found = {}
    for name, value in run.params.items():
        try:
            found.setdefault(hash_value(value), name)
        except UnhashableValue:  # not matched to any input, so shown as a digest
            continue
    return found


def _is_map(run: Run, node: str) -> bool:
    return any(n["id"] == node and n.get("kind") == "map"
               for n in (run.graph or {}).get("nodes", ()))


def _outputs(a: StepRun, b: StepRun) -> dict[str, str]:
    """Per output name: ``same``, ``different``, ``added`` or ``removed`` (by digest)."""
    out = {}
    for name in sorted(a.output_refs.keys() | b.output_refs.keys()):
        if name not in a.output_refs:
            out[name] = "added"
        elif name not in b.output_refs:
            out[name] = "removed"
        else:
            same = _digest(a.output_refs[name]) == _digest(b.output_refs[name])
            out[name] = "same" if same else "different"
    return out


def _metrics(a: StepRun, b: StepRun) -> dict[str, list[Any]]:
    """Metrics whose values differ, old -> new (None where a run has no such metric)."""
    # A cache hit may record no metrics of its own: an empty side is not a "removed" metric.
    if (a.cached and not a.metrics) or (b.cached and not b.metrics):
        return {}
    return {name: _pair(a.metrics.get(name), b.metrics.get(name))
            for name in sorted(a.metrics.keys() | b.metrics.keys())
            if a.metrics.get(name) != b.metrics.get(name)}


def _map_summary(a: dict[int, StepRun], b: dict[int, StepRun]) -> dict[str, Any]:
    """Elements of a map step in each run, and how many differ in outputs or inputs."""
    both = a.keys() & b.keys()
    outputs = sum(1 for i in both if any(v != "same" for v in _outputs(a[i], b[i]).values()))
    inputs = sum(1 for i in both
                 if {k: v for k, v in (a[i].components or {}).items() if k.startswith("input:")}
                 != {k: v for k, v in (b[i].components or {}).items() if k.startswith("input:")})
    cached = _pair(sum(s.cached for s in a.values()), sum(s.cached for s in b.values()))
    return {"elements": _pair(len(a), len(b)), "outputs_differ": outputs,
            "inputs_differ": inputs, "cached": cached,
            "differs": bool(len(a) != len(b) or outputs or inputs)}


def diff(a: Run | str, b: Run | str, store: Any = None) -> RunDiff:
    """``dw.diff(a, b)``: what differs between two runs (or run ids in ``store``), step by step."""
    return diff_runs(a, b, store=store)
