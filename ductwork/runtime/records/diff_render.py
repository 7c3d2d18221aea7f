"""A ``RunDiff`` as text for a terminal: a header, then one section per thing that differs.

Digests are cut to 12 characters (as ``ductwork why`` shows them), and a changed
input shows its small values instead where they were recorded; parameter values are
shown with ``repr`` cut to a line, so a large parameter does not flood the screen.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    # ``diff`` imports this module to render; annotations name its classes as ``Any`` so
    # the two stay one-way (import-linter forbids the cycle even for type-checking imports).
    RunDiff = StepDiff = Any

__all__ = ["render"]

_WIDTH = 60


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _WIDTH else text[:_WIDTH - 3] + "..."


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}s"


def _arrow(pair: list[Any], show: Any = _short) -> str:
    return f"{show(pair[0])} -> {show(pair[1])}"


def render(d: RunDiff) -> str:
    """Describe ``d`` in lines of text."""
    lines = [f"diff {d.a} -> {d.b}  ({_arrow(d.duration, _seconds)})"]
    if not d.differs:
        lines.append(f"no differences: the same parameters, graph and {len(d.same)} steps "
                     "(timing aside)")
        if any(s.cached for s in d.steps):
            lines.append(_same(d))
        return "\n".join(lines) + "\n"
    if d.params or d.params_added or d.params_removed:
        lines.append("parameters")
        lines += [f"  {name}: {_arrow(pair)}" for name, pair in d.params.items()]
        lines += [f"  + {name} = {_short(v)}" for name, v in d.params_added.items()]
        lines += [f"  - {name} = {_short(v)}" for name, v in d.params_removed.items()]
    if d.run:
        lines.append("run")
        lines += [f"  {field}: {_arrow(pair)}" for field, pair in d.run.items()]
    if d.steps_added or d.steps_removed:
        lines.append("graph")
        lines += [f"  + step {n} (only in {d.b})" for n in d.steps_added]
        lines += [f"  - step {n} (only in {d.a})" for n in d.steps_removed]
    for step in d.changed:
        lines += _step(step)
    if d.same:
        lines.append(_same(d))
    return "\n".join(lines) + "\n"


def _same(d: RunDiff) -> str:
    """One line for every step that differs in nothing but timing and cache hits."""
    text = f"{len(d.same)} step{'s' if len(d.same) != 1 else ''} the same: " + ", ".join(d.same)
    hits = {True: [], False: []}  # type: dict[bool, list[str]]
    for s in d.steps:
        if s.cached and not s.differs:
            hits[s.cached[1]].append(s.id)
    where = [f"cached only in {d.b}: {', '.join(hits[True])}" if hits[True] else "",
             f"cached only in {d.a}: {', '.join(hits[False])}" if hits[False] else ""]
    where = [w for w in where if w]
    return text + (f" ({'; '.join(where)})" if where else "")


def _step(s: StepDiff) -> list[str]:
    lines = [f"step {s.id}" + (" (map)" if s.map is not None else "")]
    if s.note:
        lines.append(f"  {s.note}")
    if s.status:
        lines.append(f"  status: {s.status[0]} -> {s.status[1]}")
    if s.cached:
        lines.append(f"  cached: {_yes(s.cached[0])} -> {_yes(s.cached[1])}")
    if s.map is not None:
        m = s.map
        lines.append(f"  elements: {m['elements'][0]} -> {m['elements'][1]}, "
                     f"{m['outputs_differ']} with different outputs, "
                     f"{m['inputs_differ']} with different inputs, "
                     f"cached {m['cached'][0]} -> {m['cached'][1]}")
    lines += [f"  code: {line}" for line in s.code]
    for entry in s.inputs:
        lines.append("  " + _input(entry))
    lines += [f"  {line}" for line in s.components]
    if s.outputs:
        if all(v == "same" for v in s.outputs.values()):
            lines.append("  outputs: the same")
        else:
            lines.append("  outputs: " + ", ".join(f"{k} {v}" for k, v in s.outputs.items()))
    lines += [f"  metric {name}: {_arrow(pair)}" for name, pair in s.metrics.items()]
    lines.append(f"  duration: {_arrow(s.duration, _seconds)}")
    return lines


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _input(entry: dict[str, Any]) -> str:
    old, new = entry["old"], entry["new"]
    text = f"input '{entry['argument']}' "
    if old is None or new is None:
        text += "is new" if old is None else "is gone"
    else:
        # A small value as recorded when the key was made, else the digest.
        shown = entry.get("shown") or [None, None]
        text += f"changed ({shown[0] or old[:12]} -> {shown[1] or new[:12]})"
    if "parameter" in entry:
        text += f": parameter {entry['parameter']} {_arrow(entry['values'])}"
    elif "from_step" in entry:
        text += f": from step {entry['from_step']} ({entry['from_output']})"
    return text
