"""Property tests: random pipelines, traced, rendered, run, and broken on purpose.

A pipeline is generated as a *description* -- plain data: statements that call
steps (single or several outputs), ``step.map`` calls, and calls of nested
``@pipeline`` s, with arguments that are constants, pipeline parameters,
outputs of earlier statements, or lists / tuples / dicts holding any of those.
The same description is read two ways:

* ``build`` turns it into a real ``@pipeline`` (a closure that walks the
  description and calls the real steps with the real placeholders), and
* ``model`` evaluates it independently with the plain functions (``step.fn``),
  and says which invocation ids, edges, map elements and values the pipeline
  must have.

The properties then compare what ductwork traces and runs with the model:
the graph (nodes, edges, ``links``, ``kind``), the run's outputs (and the plain
call ``p(**params)``), every step record and map element, an injected failure
(failed / skipped / succeeded, the error text), a rerun after it (what does not
depend on the failure is served from the cache), and the Mermaid / dot text.

A failure is injected with the pipeline parameters ``fail_at`` (an invocation
id) and ``fail_msg``: the generated body passes ``boom=fail_msg`` to exactly
the call whose id is ``fail_at`` (nested pipelines get their id prefix as the
parameter ``where``), and every step raises ``Boom(boom)`` when ``boom`` is
set. With ``fail_at=""`` no call gets ``boom``, so the graph is unchanged.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import re
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any, NamedTuple

import fsspec
import networkx as nx
from hypothesis import assume, given, note, settings
from hypothesis import strategies as st

import ductwork as dw
from ductwork import pipeline, step

MAX_STEPS = 12
SETTINGS = settings(max_examples=60, deadline=None)

INT, LIST = "int", "list"


class Boom(Exception):
    """The injected failure."""


def _maybe_fail(boom: str) -> None:
    if boom:
        raise Boom(boom)


def _flat_sum(value: Any) -> int:
    if isinstance(value, dict):
        return sum(_flat_sum(v) for v in value.values())
    if isinstance(value, list | tuple):
        return sum(_flat_sum(v) for v in value)
    return value


class Chopped(NamedTuple):
    head: int
    rest: list


# --- the steps: pure, cheap integer functions --------------------------------------


@step
def add(a, b=0, k=0, boom=""):
    _maybe_fail(boom)
    return a + b + k


@step
def total(xs, k=0, boom=""):
    """Sum of every int inside ``xs`` (nested lists, tuples and dicts)."""
    _maybe_fail(boom)
    return _flat_sum(xs) + k


@step
def make(n, start=0, boom=""):
    """A list whose length (0 to 4) may itself come from an upstream step."""
    _maybe_fail(boom)
    return [start + 2 * i for i in range(n % 5)]


@step(outputs=("a", "b"))
def pair(v, k=0, boom=""):
    _maybe_fail(boom)
    return v + k, 2 * v - k


@step
def chop(xs, boom="") -> Chopped:
    _maybe_fail(boom)
    return Chopped(xs[0] if xs else 0, list(xs[1:]))


@step
def minmax(xs, boom="") -> tuple[int, int]:
    _maybe_fail(boom)
    return min(xs, default=0), max(xs, default=0)


@step
def scale(x, k=1, boom=""):
    _maybe_fail(boom)
    return x * k + 1


@step
def concat(xs, ys, boom=""):
    _maybe_fail(boom)
    return [*xs, *ys]


STEPS = {s.name: s for s in (add, total, make, pair, chop, minmax, scale, concat)}

# Argument kinds: "int" (an int expression), "flat" (a flat list of ints), "tree" (anything
# holding ints). The first argument is required, unless listed in REQUIRED.
ARGS: dict[str, dict[str, str]] = {
    "add": {"a": "int", "b": "int", "k": "int"},
    "total": {"xs": "tree", "k": "int"},
    "make": {"n": "int", "start": "int"},
    "pair": {"v": "int", "k": "int"},
    "chop": {"xs": "flat"},
    "minmax": {"xs": "flat"},
    "scale": {"x": "int", "k": "int"},
    "concat": {"xs": "flat", "ys": "flat"},
}
REQUIRED = {"concat": ("xs", "ys")}
RESULT = {"add": INT, "total": INT, "make": LIST, "scale": INT, "concat": LIST}
MULTI = {  # output names and their types
    "pair": (("a", INT), ("b", INT)),
    "chop": (("head", INT), ("rest", LIST)),
    "minmax": (("output_0", INT), ("output_1", INT)),
}
# step -> (the argument a map call fans out over, what the resulting list holds). A map
# over a step with several outputs gives a list of tuples ("pairs").
MAPPABLE = {"scale": ("x", LIST), "add": ("a", LIST), "pair": ("v", "pairs")}
SUB_NAMES = ("prep", "feat", "post")


def _signature(name: str) -> list[str]:
    return [p for p in STEPS[name].signature.parameters if p != "boom"]


# --- generating descriptions --------------------------------------------------------


def draw_int(draw, scope):
    refs = [e for e, t in scope if t == INT]
    if refs and draw(st.integers(0, 3)):
        return draw(st.sampled_from(refs))
    return ("const", draw(st.integers(-4, 9)))


def draw_flat(draw, scope):
    refs = [e for e, t in scope if t == LIST]
    if refs and draw(st.integers(0, 2)):
        return draw(st.sampled_from(refs))
    return ("list", [draw_int(draw, scope) for _ in range(draw(st.integers(0, 3)))])


def draw_tree(draw, scope, depth=2):
    wholes = [e for e, t in scope if t in MULTI or t == "pairs"]
    choices = ["int", "flat"] + (["whole"] if wholes else []) + (
        ["list", "tuple", "dict"] if depth else []
    )
    kind = draw(st.sampled_from(choices))
    if kind == "int":
        return draw_int(draw, scope)
    if kind == "flat":
        return draw_flat(draw, scope)
    if kind == "whole":
        return draw(st.sampled_from(wholes))
    items = [draw_tree(draw, scope, depth - 1) for _ in range(draw(st.integers(0, 3)))]
    if kind == "dict":
        return ("dict", [(f"k{i}", item) for i, item in enumerate(items)])
    return (kind, items)


def draw_items(draw, scope):
    """What a map call fans out over: a list Output, a (constant) list, or a whole pair."""
    wholes = [e for e, t in scope if t in ("pair", "minmax")]
    if wholes and not draw(st.integers(0, 3)):
        return draw(st.sampled_from(wholes))
    return draw_flat(draw, scope)


def draw_arg(draw, scope, kind):
    if kind == "int":
        return draw_int(draw, scope)
    if kind == "flat":
        return draw_flat(draw, scope)
    return draw_tree(draw, scope)


def draw_body(draw, scope, subs, budget):
    """Draw statements using at most ``budget`` steps.

    ``scope`` lists ``(expr, type)`` of what the body can use. Returns the statements,
    the final scope, each variable's *flag* and the number of steps used. The flag says
    whether a variable is an ``Output`` (or ``Outputs``): True, False (a constant or a
    plain list that a nested pipeline handed back), or ``("in", i)`` -- a nested
    pipeline's input passed back through, so whatever its caller passed.
    """
    scope = list(scope)
    stmts: list[dict[str, Any]] = []
    types: dict[int, str] = {}
    flags: dict[tuple[str, int], Any] = {e: e for e, _ in scope if e[0] == "in"}
    counts: Counter[str] = Counter()
    used = 0
    # Mostly near the budget: small graphs come from shrinking, not from generation.
    wanted = draw(st.integers(max(1, budget - 4), budget) | st.integers(1, budget))

    def new_var(kind, flag=True):
        var = len(types)
        types[var] = kind
        scope.append((("var", var), kind))
        flags["var", var] = flag
        return var

    def flag_of(expr):
        return flags.get(expr, False) if expr[0] in ("var", "in") else False

    def local_id(name):
        counts[name] += 1
        return name if counts[name] == 1 else f"{name}-{counts[name]}"

    while used < wanted:
        room = budget - used
        kinds = ["call", "call", "multi", "map"]
        fitting = [j for j, sub in enumerate(subs) if sub["size"] <= room]
        if fitting:
            kinds.append("sub")
        kind = draw(st.sampled_from(kinds))
        if kind == "sub":
            j = draw(st.sampled_from(fitting))
            sub = subs[j]
            stmt = {
                "kind": "sub",
                "sub": j,
                "lid": local_id(sub["name"]),
                "inputs": [draw_arg(draw, scope, "flat" if t == LIST else "int")
                           for t in sub["inputs"]],
                "by_name": draw(st.booleans()),
            }
            stmt["out"] = [
                new_var(t, f if isinstance(f, bool) else flag_of(stmt["inputs"][f[1]]))
                for t, f in zip(sub["rtypes"], sub["rflags"], strict=True)
            ]
            used += sub["size"]
        elif kind == "map":
            name = draw(st.sampled_from(sorted(MAPPABLE)))
            mapped, result = MAPPABLE[name]
            fixed = [p for p in ARGS[name] if p != mapped and draw(st.booleans())]
            stmt = {
                "kind": "map",
                "step": name,
                "lid": local_id(name),
                "items": draw_items(draw, scope),
                "fixed": {p: draw_int(draw, scope) for p in fixed},
            }
            stmt["out"] = [new_var(result)]
            used += 1
        else:
            pool = sorted(MULTI) if kind == "multi" else sorted(RESULT)
            name = draw(st.sampled_from(pool))
            required = REQUIRED.get(name, tuple(ARGS[name])[:1])
            given_ = [p for p in ARGS[name] if p in required or draw(st.booleans())]
            args = {p: draw_arg(draw, scope, ARGS[name][p]) for p in given_}
            leading = len(list(itertools.takewhile(args.__contains__, _signature(name))))
            stmt = {
                "kind": "call",
                "step": name,
                "lid": local_id(name),
                "args": args,
                "npos": draw(st.integers(0, leading)),
            }
            if name in MULTI:
                outs = MULTI[name]
                # `res.a` works in a trace; outside one only for chop, whose plain result
                # is a NamedTuple (pair and minmax return plain tuples): see plain_callable.
                how = draw(st.sampled_from(["unpack", "index", "attr"]))
                comps = [0, 1] if how == "unpack" else draw(
                    st.sampled_from([[0], [1], [0, 1], [1, 0]]))
                stmt["select"] = [(c, how, draw(st.booleans())) for c in comps]
                stmt["out"] = [new_var(outs[c][1]) for c in comps]
                stmt["whole"] = new_var(name) if draw(st.booleans()) else None
            else:
                stmt["out"] = [new_var(RESULT[name])]
            used += 1
        stmts.append(stmt)
    return stmts, scope, flags, used


def draw_return(draw, candidates):
    form = draw(st.sampled_from(["single", "tuple", "dict"]))
    if form == "single":
        return ("single", [draw(st.sampled_from(candidates))])
    chosen = draw(st.lists(st.sampled_from(candidates), min_size=1, max_size=3))
    if form == "dict":
        return ("dict", [(f"r{i}", e) for i, e in enumerate(chosen)])
    return ("tuple", chosen)


@st.composite
def descriptions(draw):
    subs: list[dict[str, Any]] = []
    for name in SUB_NAMES[: draw(st.integers(0, len(SUB_NAMES)))]:
        inputs = draw(st.lists(st.sampled_from([INT, INT, LIST]), min_size=1, max_size=3))
        scope = [(("in", i), t) for i, t in enumerate(inputs)]
        body, scope, flags, size = draw_body(draw, scope, subs, budget=4)
        # A nested pipeline may also hand back one of its inputs untouched.
        ret = draw_return(draw, [e for e, _ in scope])
        types = dict(scope)
        subs.append({
            "name": name, "inputs": inputs, "body": body, "ret": ret, "size": size,
            "rtypes": [types[e] for e in _ret_exprs(ret)],
            "rflags": [flags[e] for e in _ret_exprs(ret)],
        })
    scope = [(("param", "x"), INT), (("param", "y"), INT)]
    body, scope, flags, size = draw_body(draw, scope, subs, budget=MAX_STEPS)
    outputs = [e for e, _ in scope if flags.get(e) is True]
    assume(outputs)  # the pipeline returns Outputs, not constants
    return {"subs": subs, "body": body, "ret": draw_return(draw, outputs), "size": size}


def plain_callable(desc) -> bool:
    """Whether the body can also run outside a trace, where steps return plain tuples."""
    stmts = [*desc["body"], *(s for sub in desc["subs"] for s in sub["body"])]
    return not any(
        s["kind"] == "call" and s["step"] != "chop" and any(how == "attr" for _, how, _ in
                                                            s.get("select", ()))
        for s in stmts
    )


def _ret_exprs(ret):
    form, items = ret
    return [e for _, e in items] if form == "dict" else list(items)


params_strategy = st.fixed_dictionaries(
    {"x": st.integers(-5, 20)}, optional={"y": st.integers(-5, 20)}
)


# --- reading a description, two ways --------------------------------------------------


def realize(expr, env):
    """The value of an argument expression, with variables looked up in ``env``."""
    tag = expr[0]
    if tag == "const":
        return expr[1]
    if tag in ("var", "param", "in"):
        return env[expr]
    if tag == "list":
        return [realize(e, env) for e in expr[1]]
    if tag == "tuple":
        return tuple(realize(e, env) for e in expr[1])
    if tag == "dict":
        return {k: realize(e, env) for k, e in expr[1]}
    raise AssertionError(expr)


def realize_return(ret, env):
    form, items = ret
    if form == "single":
        return realize(items[0], env)
    if form == "tuple":
        return tuple(realize(e, env) for e in items)
    return {k: realize(e, env) for k, e in items}


def _full_id(where, lid):
    return f"{where}/{lid}" if where else lid


def build(desc):
    """Turn a description into a real ``@pipeline`` (with nested ones) via closures."""
    subs: list[Any] = []

    def run_body(stmts, env, where, fail_at, fail_msg):
        for s in stmts:
            full = _full_id(where, s["lid"])
            boom = {"boom": fail_msg} if fail_at == full else {}
            if s["kind"] == "call":
                args = {p: realize(e, env) for p, e in s["args"].items()}
                positional = [args.pop(p) for p in _signature(s["step"])[: s["npos"]]]
                res = STEPS[s["step"]](*positional, **args, **boom)
                if s["step"] not in MULTI:
                    env["var", s["out"][0]] = res
                    continue
                names = [n for n, _ in MULTI[s["step"]]]
                if s["select"][0][1] == "unpack":
                    first, second = res
                    picked = [first, second]
                else:
                    picked = []
                    for comp, how, negative in s["select"]:
                        if how == "attr":
                            picked.append(getattr(res, names[comp]))
                        else:
                            picked.append(res[comp - 2 if negative else comp])
                for var, value in zip(s["out"], picked, strict=True):
                    env["var", var] = value
                if s["whole"] is not None:
                    env["var", s["whole"]] = res
            elif s["kind"] == "map":
                items = realize(s["items"], env)
                fixed = {p: realize(e, env) for p, e in s["fixed"].items()}
                env["var", s["out"][0]] = STEPS[s["step"]].map(items, **fixed, **boom)
            else:
                sub = desc["subs"][s["sub"]]
                inputs = [realize(e, env) for e in s["inputs"]]
                positional, named = ([], {f"i{i}": v for i, v in enumerate(inputs)}) if (
                    s["by_name"]) else (inputs, {})
                res = subs[s["sub"]](
                    *positional, **named, fail_at=fail_at, fail_msg=fail_msg, where=full
                )
                form, _ = sub["ret"]
                if form == "single":
                    values = [res]
                elif form == "tuple":
                    values = [*res]
                else:
                    values = [res[k] for k, _ in sub["ret"][1]]
                for var, value in zip(s["out"], values, strict=True):
                    env["var", var] = value

    def make_sub(sub):
        def body(i0=None, i1=None, i2=None, fail_at="", fail_msg="", where=""):
            env = {("in", i): v for i, v in enumerate((i0, i1, i2)[: len(sub["inputs"])])}
            run_body(sub["body"], env, where, fail_at, fail_msg)
            return realize_return(sub["ret"], env)

        return pipeline(body, name=sub["name"])

    for sub in desc["subs"]:
        subs.append(make_sub(sub))

    def generated(x, y=3, fail_at="", fail_msg="boom"):
        env = {("param", "x"): x, ("param", "y"): y}
        run_body(desc["body"], env, "", fail_at, fail_msg)
        return realize_return(desc["ret"], env)

    return pipeline(generated, name="generated")


@dataclasses.dataclass(frozen=True)
class Sym:
    """The model's stand-in for an output: output ``name`` of node ``node``."""

    node: str
    name: str


def syms_in(value):
    if isinstance(value, Sym):
        yield value
    elif isinstance(value, list | tuple):
        for v in value:
            yield from syms_in(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from syms_in(v)


@dataclasses.dataclass
class Node:
    step: str
    kind: str  # "step" | "map"
    links: list[tuple[str, str, str]]  # (source node, output name, argument name)
    outputs: dict[str, Any]
    elements: list[Any] | None = None


@dataclasses.dataclass
class Model:
    nodes: dict[str, Node]
    result: Any

    def graph(self) -> nx.DiGraph:
        g = nx.DiGraph()
        for nid, node in self.nodes.items():
            g.add_node(nid, kind=node.kind, step=node.step)
        for nid, node in self.nodes.items():
            for source, output, argument in node.links:
                if not g.has_edge(source, nid):
                    g.add_edge(source, nid, links=[])
                g.edges[source, nid]["links"].append((output, argument))
        return g


def model(desc, params) -> Model:
    """Evaluate a description with the plain functions, independently of ductwork."""
    nodes: dict[str, Node] = {}
    values: dict[Sym, Any] = {}

    def concrete(value):
        if isinstance(value, Sym):
            return values[value]
        if isinstance(value, list):
            return [concrete(v) for v in value]
        if isinstance(value, tuple):
            return tuple(concrete(v) for v in value)
        if isinstance(value, dict):
            return {k: concrete(v) for k, v in value.items()}
        return value

    def record(nid, node):
        assert nid not in nodes, f"generator made a duplicate id {nid}"
        nodes[nid] = node
        for name, value in node.outputs.items():
            values[Sym(nid, name)] = value

    def run_body(stmts, env, where):
        for s in stmts:
            nid = _full_id(where, s["lid"])
            if s["kind"] == "call":
                args = {p: realize(e, env) for p, e in s["args"].items()}
                links = [(o.node, o.name, p) for p, v in args.items() for o in syms_in(v)]
                result = STEPS[s["step"]].fn(**concrete(args))
                if s["step"] in MULTI:
                    names = [n for n, _ in MULTI[s["step"]]]
                    outputs = dict(zip(names, result, strict=True))
                    record(nid, Node(s["step"], "step", links, outputs))
                    for var, (comp, _, _) in zip(s["out"], s["select"], strict=True):
                        env["var", var] = Sym(nid, names[comp])
                    if s["whole"] is not None:
                        env["var", s["whole"]] = tuple(Sym(nid, n) for n in names)
                else:
                    record(nid, Node(s["step"], "step", links, {"output": result}))
                    env["var", s["out"][0]] = Sym(nid, "output")
            elif s["kind"] == "map":
                mapped, _ = MAPPABLE[s["step"]]
                items = realize(s["items"], env)
                fixed = {p: realize(e, env) for p, e in s["fixed"].items()}
                links = [(o.node, o.name, mapped) for o in syms_in(items)]
                links += [(o.node, o.name, p) for p, v in fixed.items() for o in syms_in(v)]
                fn = STEPS[s["step"]].fn
                elements = [fn(**{mapped: item}, **concrete(fixed)) for item in concrete(items)]
                record(nid, Node(s["step"], "map", links, {"output": elements}, elements))
                env["var", s["out"][0]] = Sym(nid, "output")
            else:
                sub = desc["subs"][s["sub"]]
                sub_env = {("in", i): realize(e, env) for i, e in enumerate(s["inputs"])}
                run_body(sub["body"], sub_env, nid)
                for var, ret in zip(s["out"], _ret_exprs(sub["ret"]), strict=True):
                    env["var", var] = realize(ret, sub_env)

    env = {("param", "x"): params["x"], ("param", "y"): params.get("y", 3)}
    run_body(desc["body"], env, "")
    return Model(nodes, concrete(realize_return(desc["ret"], env)))


def show(desc) -> str:
    """Pseudo-source of a description, for failure reports."""

    def expr(e):
        tag = e[0]
        if tag == "const":
            return repr(e[1])
        if tag == "var":
            return f"v{e[1]}"
        if tag == "param":
            return e[1]
        if tag == "in":
            return f"i{e[1]}"
        if tag == "dict":
            return "{" + ", ".join(f"{k!r}: {expr(x)}" for k, x in e[1]) + "}"
        inner = ", ".join(expr(x) for x in e[1])
        return f"[{inner}]" if tag == "list" else f"({inner}{',' if len(e[1]) == 1 else ''})"

    def body(stmts, indent):
        lines = []
        for s in stmts:
            outs = ", ".join(f"v{v}" for v in s["out"])
            if s["kind"] == "call":
                call = f"{s['step']}(" + ", ".join(
                    f"{p}={expr(a)}" for p, a in s["args"].items()) + ")"
                if s["step"] in MULTI:
                    outs += f"  <- {s['select']}" + (
                        f", whole v{s['whole']}" if s["whole"] is not None else "")
            elif s["kind"] == "map":
                fixed = "".join(f", {p}={expr(a)}" for p, a in s["fixed"].items())
                call = f"{s['step']}.map({expr(s['items'])}{fixed})"
            else:
                call = f"{SUB_NAMES[s['sub']]}(" + ", ".join(
                    (f"i{i}=" if s["by_name"] else "") + expr(a)
                    for i, a in enumerate(s["inputs"])) + ")"
            lines.append(f"{indent}{outs} = {call}    # {s['lid']}")
        return lines

    def ret(r):
        form, items = r
        if form == "single":
            return expr(items[0])
        if form == "dict":
            return expr(("dict", items))
        return expr(("tuple", items))

    lines = []
    for sub in desc["subs"]:
        ins = ", ".join(f"i{i}" for i in range(len(sub["inputs"])))
        lines.append(f"@pipeline\ndef {sub['name']}({ins}):")
        lines += body(sub["body"], "    ")
        lines.append(f"    return {ret(sub['ret'])}")
    lines.append("@pipeline\ndef generated(x, y=3):")
    lines += body(desc["body"], "    ")
    lines.append(f"    return {ret(desc['ret'])}")
    return "\n".join(lines)


@contextlib.contextmanager
def fresh_store() -> Iterator[str]:
    """A new in-memory store per run: nothing on disk, no cache shared between examples."""
    url = f"memory://ductwork-properties-{uuid.uuid4().hex}"
    try:
        yield url
    finally:
        fs = fsspec.filesystem("memory")
        root = url.removeprefix("memory://")
        if fs.exists(root):
            fs.rm(root, recursive=True)


cases = st.tuples(descriptions(), params_strategy)


# --- the properties -------------------------------------------------------------------


def test_generator_respects_limits_and_makes_every_shape():
    """The generator stays small, and across examples it produces each feature."""
    seen: set[str] = set()

    @settings(max_examples=100, deadline=None, database=None, derandomize=True)
    @given(cases)
    def collect(case):
        desc, params = case
        expected = model(desc, params)
        assert 1 <= len(expected.nodes) <= MAX_STEPS
        for nid, node in expected.nodes.items():
            seen.add(node.kind)
            if "/" in nid:
                seen.add("nested")
            if nid.count("/") >= 2:
                seen.add("nested twice")
            if re.search(r"^[a-z]+-\d+/", nid):
                seen.add("second call of a nested pipeline")
            if re.search(r"-\d+$", nid):
                seen.add("second call of a step")
            if node.kind == "map" and not node.elements:
                seen.add("empty map")
            if node.step in MULTI:
                seen.add(f"multi {node.kind}")
            seen.update(f"{node.kind} fan-in" for _ in [0] if len(
                {src for src, _, _ in node.links}) >= 2)
        g = expected.graph()
        if any(g.out_degree(n) >= 2 for n in g):
            seen.add("fan-out")
        seen.add(f"return {desc['ret'][0]}")
        seen.add("plain-callable" if plain_callable(desc) else "not plain-callable")
        if any(e[0] == "in" for sub in desc["subs"] for e in _ret_exprs(sub["ret"])):
            seen.add("nested pipeline passes an input through")

    collect()
    assert seen >= {
        "step", "map", "nested", "nested twice", "second call of a nested pipeline",
        "second call of a step", "empty map", "multi step", "multi map", "step fan-in",
        "map fan-in", "fan-out",
        "return single", "return tuple", "return dict", "nested pipeline passes an input through",
        "plain-callable", "not plain-callable",
    }, seen


@SETTINGS
@given(cases)
def test_graph_has_exactly_the_intended_nodes_and_edges(case):
    desc, params = case
    note(show(desc))
    p = build(desc)
    expected = model(desc, params).graph()
    graph = p.graph(**params)

    assert isinstance(graph, nx.DiGraph)
    assert sorted(graph.nodes) == sorted(expected.nodes)
    for nid, data in expected.nodes(data=True):
        assert graph.nodes[nid]["kind"] == data["kind"], nid
        assert graph.nodes[nid]["step"] == data["step"], nid
    assert sorted(graph.edges) == sorted(expected.edges)
    for a, b, data in expected.edges(data=True):
        got = graph.edges[a, b]
        assert Counter(got["links"]) == Counter(data["links"]), (a, b)
        assert (got["output"], got["argument"]) == got["links"][0], (a, b)
    assert nx.is_directed_acyclic_graph(graph)


@SETTINGS
@given(cases)
def test_run_outputs_equal_plain_evaluation(case):
    desc, params = case
    note(show(desc))
    p = build(desc)
    expected = model(desc, params).result

    with fresh_store() as store:
        run = p.run(**params, store=store)
        assert run.status == "succeeded"
        assert run.outputs == expected
    # The same pipeline function called outside a trace is plain Python.
    if plain_callable(desc):
        assert p(**params) == expected


@SETTINGS
@given(cases)
def test_every_step_succeeds_and_map_elements_are_recorded(case):
    desc, params = case
    note(show(desc))
    expected = model(desc, params)
    wanted = set(expected.nodes)
    for nid, node in expected.nodes.items():
        if node.elements is not None:
            wanted.update(f"{nid}[{i}]" for i in range(len(node.elements)))

    with fresh_store() as store:  # outputs are read from the store: check inside
        run = build(desc).run(**params, store=store)
        assert set(run.steps) == wanted
        for sid, record in run.steps.items():
            assert record.status == "succeeded", (sid, record.error)
            assert record.id == sid
        for nid, node in expected.nodes.items():
            assert run.steps[nid].outputs == node.outputs, nid
            for i, element in enumerate(node.elements or ()):
                assert run.steps[f"{nid}[{i}]"].outputs == {"output": element}, f"{nid}[{i}]"


@SETTINGS
@given(cases, st.data())
def test_a_failing_step_fails_the_run_and_skips_exactly_its_descendants(case, data):
    desc, params = case
    note(show(desc))
    expected = model(desc, params)
    target = data.draw(st.sampled_from(sorted(expected.nodes)), label="fail_at")
    message = f"injected failure {data.draw(st.integers(0, 10**6), label='token')}"
    node = expected.nodes[target]
    downstream = nx.descendants(expected.graph(), target)
    p = build(desc)

    with fresh_store() as store:
        try:
            run = p.run(**params, fail_at=target, fail_msg=message, store=store)
        except dw.PipelineFailed as exc:
            assert node.elements != [], "a map over no items never calls the step"
            text, run = str(exc), exc.run
            assert f"'{target}'" in text
            assert f"Boom: {message}" in text  # the user's exception, type and text
        else:
            # Only a map over an empty list never calls the step that would raise.
            assert node.elements == [], f"{target} should have failed the run"
            assert run.status == "succeeded"
            return

        assert run.status == "failed"
        assert run.steps[target].status == "failed"
        assert message in run.steps[target].error
        for i in range(len(node.elements or ())):
            assert run.steps[f"{target}[{i}]"].status == "failed", f"{target}[{i}]"
        for nid, other in expected.nodes.items():
            if nid == target:
                continue
            record = run.steps[nid]
            if nid in downstream:
                assert record.status == "skipped", nid
                assert not any(s.startswith(f"{nid}[") for s in run.steps), nid
            else:
                assert record.status == "succeeded", (nid, record.error)
                assert record.outputs == other.outputs, nid
                for i, element in enumerate(other.elements or ()):
                    assert run.steps[f"{nid}[{i}]"].status == "succeeded"
                    assert run.steps[f"{nid}[{i}]"].outputs == {"output": element}


@SETTINGS
@given(cases, st.data())
def test_a_rerun_after_a_failure_reuses_every_step_not_downstream_of_it(case, data):
    """Spec section 2: the outputs of steps that do not depend on the failure are kept,
    so a rerun (here: without the failure) only does what is left."""
    desc, params = case
    note(show(desc))
    expected = model(desc, params)
    target = data.draw(st.sampled_from(sorted(expected.nodes)), label="fail_at")
    downstream = nx.descendants(expected.graph(), target) | {target}
    p = build(desc)

    with fresh_store() as store:
        try:
            p.run(**params, fail_at=target, fail_msg="injected failure", store=store)
        except dw.PipelineFailed:
            pass
        rerun = p.run(**params, store=store)
        assert rerun.status == "succeeded"
        assert rerun.outputs == expected.result
        for nid, node in expected.nodes.items():
            record = rerun.steps[nid]
            assert record.status == "succeeded", (nid, record.error)
            assert record.outputs == node.outputs, nid
            empty_map = node.kind == "map" and not node.outputs["output"]
            if nid not in downstream and not empty_map:  # an empty map fetches nothing
                assert record.cached, nid
                for i in range(len(node.elements or ())):
                    assert rerun.steps[f"{nid}[{i}]"].cached, f"{nid}[{i}]"


@SETTINGS
@given(cases)
def test_mermaid_and_dot_mention_every_node_and_edge(case):
    desc, params = case
    note(show(desc))
    p = build(desc)
    expected = model(desc, params).graph()
    mermaid, dot = p.to_mermaid(**params), p.to_dot(**params)

    for nid in expected.nodes:
        assert nid in mermaid, nid
        assert nid in dot, nid
    for a, b in expected.edges:
        assert re.search(rf'"{re.escape(a)}"\s*->\s*"{re.escape(b)}"', dot), (a, b)
    assert dot.count(" -> ") == expected.number_of_edges()

