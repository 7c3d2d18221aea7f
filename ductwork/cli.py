"""The ``ductwork`` command line: ``ductwork COMMAND ...`` and ``python -m ductwork``.

Each command is a small function over parsed arguments; the heavy parts load
only when that command runs.
"""

from __future__ import annotations

import argparse
import contextlib
import enum
import importlib.util
import inspect
import json
import math
import sys
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ductwork.dsl.core import DuctworkError
from ductwork.dsl.pipeline import Pipeline


class UsageError(DuctworkError):
    """The command line asks for something that cannot be done; exit code 2."""


def load_pipeline(target: str) -> Pipeline:
    """Import ``FILE.py:NAME`` and return the pipeline object named there."""
    file, sep, name = target.rpartition(":")
    if not sep or not file or not name:
        raise UsageError(f"Expected FILE.py:PIPELINE, got '{target}'.")
    path = Path(file).resolve()
    if not path.is_file():
        raise UsageError(f"No such file: {file}")
    module_name = path.stem if path.stem.isidentifier() else "ductwork_user_module"
    # The file's folder goes on sys.path so its own imports (helpers beside it) work.
    sys.path.insert(0, str(path.parent))
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    obj = getattr(module, name, None)
    if not isinstance(obj, Pipeline):
        found = [k for k, v in vars(module).items() if isinstance(v, Pipeline)]
        raise UsageError(
            f"{file} has no pipeline named '{name}'"
            + (f"; it defines: {', '.join(found)}." if found else " and defines none (@pipeline).")
        )
    return obj


def parse_params(pipeline: Pipeline, pairs: Sequence[str]) -> dict[str, Any]:
    """Turn ``name=value`` strings into parameters, converted by the parameter's annotation."""
    try:
        hints = typing.get_type_hints(pipeline.fn)
    except Exception:
        hints = {}
    params: dict[str, Any] = {}
    given: dict[str, str] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep:
            raise UsageError(f"-p takes name=value, got '{pair}'.")
        if name not in pipeline.parameters:
            known = ", ".join(pipeline.parameters) or "none"
            raise UsageError(
                f"Pipeline '{pipeline.name}' has no parameter '{name}' (known: {known})."
            )
        if name in given:  # keeping the last one would run with a value the user may not mean
            raise UsageError(
                f"Parameter '{name}' is given twice (-p {name}={_shown(given[name], False)}, "
                f"-p {name}={_shown(text, False)}); give it once."
            )
        given[name] = text
        default = pipeline.parameters[name]
        kind = hints.get(name)
        if kind is None and default is not inspect.Parameter.empty and default is not None:
            kind = type(default)
        params[name] = convert_param(name, text, kind)
    return params


_NONE_WORDS = ("None", "null")


def convert_param(name: str, text: str, kind: Any) -> Any:
    """Convert the text of ``-p name=text`` by the parameter's annotation (None: the text).

    ``None``/``null`` is None where the annotation allows it; a ``Literal`` takes one of
    its values, an ``Enum`` a member's name or value; a union tries its types in order.
    Anything else that is not a plain scalar, str or path is read as JSON.
    """
    origin = typing.get_origin(kind)
    if kind is None or kind is Any:
        return text
    if origin is typing.Annotated:
        return convert_param(name, text, typing.get_args(kind)[0])
    if origin is typing.Union or origin is types.UnionType:
        args = typing.get_args(kind)
        if type(None) in args and text in _NONE_WORDS:
            return None
        for arg in args:
            if arg is not type(None):
                with contextlib.suppress(UsageError):
                    return convert_param(name, text, arg)
        raise UsageError(f"Parameter '{name}' expects {_describe(kind)}, got {_shown(text)}.")
    if origin is typing.Literal:
        choices = typing.get_args(kind)
        for choice in choices:
            if text in _spellings(choice):
                return choice
        listed = ", ".join(map(repr, choices))
        raise UsageError(f"Parameter '{name}' must be one of {listed}; got {_shown(text)}.")
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        for member in kind:
            if text in (member.name, str(member.value)):
                return member
        names = ", ".join(m.name for m in kind)
        values = ", ".join(repr(m.value) for m in kind)
        raise UsageError(
            f"Parameter '{name}' must be a {kind.__name__}: {names} (or a value: {values}); "
            f"got {_shown(text)}."
        )
    target = origin or kind
    try:
        if target is bool:
            lowered = text.lower()
            if lowered not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(text)
            return lowered in ("true", "1", "yes")
        if target is int:
            return _to_int(name, text)
        if target is float:
            value = float(text)
            if math.isinf(value) and "inf" not in text.lower():
                raise UsageError(f"Parameter '{name}': {_shown(text)} is out of float range.")
            return value
        if target is str:
            return text
        if target is Path:
            return Path(text)
        return json.loads(text)
    except ValueError:
        raise UsageError(
            f"Parameter '{name}' expects {_describe(kind)}, got {_shown(text)}."
        ) from None


def _to_int(name: str, text: str) -> int:
    """``int(text)``, saying so when the text is a number too long for Python to convert."""
    try:
        return int(text)
    except ValueError:
        digits = text.strip().lstrip("+-").replace("_", "")
        limit = sys.get_int_max_str_digits()
        if digits.isdigit() and 0 < limit < len(digits):
            # The limit is process-wide (sys.set_int_max_str_digits); not ours to raise.
            raise UsageError(
                f"Parameter '{name}' has {len(digits)} digits, more than Python converts from "
                f"text ({limit}). Annotate it `str` and convert it inside a step."
            ) from None
        raise


def _spellings(choice: Any) -> tuple[str, ...]:
    """The texts that mean a ``Literal`` value on the command line."""
    if isinstance(choice, str):
        return (choice,)
    if isinstance(choice, enum.Enum):
        return (choice.name, str(choice.value))
    if choice is None or isinstance(choice, bool):
        return (str(choice), json.dumps(choice))  # None/null, True/true
    return (str(choice),)


def _describe(kind: Any) -> str:
    if isinstance(kind, type):
        return kind.__name__
    return repr(kind).replace("typing.", "")


def _shown(text: str, quoted: bool = True) -> str:
    """The text of a value for a message, shortened when long."""
    short = text if len(text) <= 60 else f"{text[:40]}... ({len(text)} characters)"
    return f"'{short}'" if quoted else short


def _at_least_one(text: str) -> int:
    """The argparse type of --max-workers: a whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text!r}")
    return value


def cmd_run(args: argparse.Namespace) -> int:
    """Run a pipeline from a file."""
    from ductwork.dsl.core import PipelineFailed

    pipeline = load_pipeline(args.target)
    params = parse_params(pipeline, args.param)
    options: dict[str, Any] = {"backend": args.backend}
    if args.store is not None:  # an empty --store is refused by the run, not dropped
        options["store"] = args.store
    if args.max_workers is not None:
        options["max_workers"] = args.max_workers
    if args.address:
        options["address"] = args.address
    if args.shared_filesystem:
        options["shared_filesystem"] = True
    try:
        run = pipeline.run(**params, **options)
    except PipelineFailed as exc:
        run = exc.run
        store = f" --store {args.store}" if args.store else ""
        for record in run.failed_steps:
            last = (record.error or "").strip().splitlines()[-1:] or [""]
            print(f"step {record.id} failed: {last[0]}", file=sys.stderr)
            print(f"  traceback: ductwork logs {run.id} {record.id}{store}", file=sys.stderr)
        print(f"run {run.id} failed", file=sys.stderr)
        return 1
    print(f"run {run.id} {run.status} in {run.duration:.3f}s")
    for record in run.steps.values():
        if record.map_index is None:
            print(f"  {record.id:<24} {record.status:<10} {record.duration or 0:.3f}s")
    print(json.dumps(run.outputs, indent=2, default=repr))
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    """Say which steps a run would take from the cache and which it would run, and why,
    without running any step code."""
    from ductwork.runtime.engine.plan import format_plan

    pipeline = load_pipeline(args.target)
    options: dict[str, Any] = {"backend": args.backend}
    if args.store is not None:
        options["store"] = args.store
    if args.regenerate:
        options["regenerate"] = True if args.regenerate == ["all"] else args.regenerate
    steps = pipeline.plan(**parse_params(pipeline, args.param), **options)
    if args.json:
        print(json.dumps({sid: {"status": status, "why": why}
                          for sid, (status, why) in steps.items()}, indent=2))
    else:
        print(format_plan(steps))
    return 0


def cmd_graph(args: argparse.Namespace) -> int:
    """Print a pipeline's graph without running it."""
    pipeline = load_pipeline(args.target)
    params = parse_params(pipeline, args.param)
    render = pipeline.to_dot if args.format == "dot" else pipeline.to_mermaid
    sys.stdout.write(render(**params))
    return 0


def _when(stamp: float | None) -> str:
    import datetime as dt

    if stamp is None:
        return "-"
    return dt.datetime.fromtimestamp(stamp).strftime("%Y-%m-%d %H:%M:%S")


def cmd_runs(args: argparse.Namespace) -> int:
    """List past runs, newest first."""
    from ductwork.runtime.records.history import existing_store, runs

    _say_store(args.store)
    existing_store(args.store)  # a typo'd --store is an error, and creates nothing
    listed = runs(store=args.store, pipeline=args.pipeline, limit=args.limit)
    if not listed:
        print("no runs yet")
        return 0
    print(f"{'RUN':<24} {'PIPELINE':<20} {'STATUS':<10} {'STARTED':<20} DURATION")
    for run in listed:
        took = f"{run.duration:.3f}s" if run.duration is not None else "-"
        print(f"{run.id:<24} {run.pipeline:<20} {run.status:<10} {_when(run.started):<20} {took}")
    return 0


def _say_store(store: str | None) -> None:
    """One line on stderr: which store (and history file) a listing reads."""
    from ductwork.runtime.records.runstore import runstore_path
    from ductwork.runtime.store.artifacts import open_store

    opened = open_store(store)
    print(f"store: {opened.url} (history: {runstore_path(opened)})", file=sys.stderr)


def cmd_show(args: argparse.Namespace) -> int:
    """Show one run: parameters, provenance and every step's state."""
    from ductwork.runtime.records.history import get_run

    run = get_run(args.run_id, store=args.store)
    print(f"run        {run.id}")
    print(f"pipeline   {run.pipeline}")
    print(f"status     {run.status}")
    print(f"started    {_when(run.started)}  ({run.duration or 0:.3f}s)")
    print(f"parameters {json.dumps(run.params, default=repr)}")
    dirty = " (dirty)" if run.git_dirty else ""
    print(f"git        {run.git_commit or '-'}{dirty}")
    print(f"versions   ductwork {run.ductwork_version}, Python {run.python_version}")
    print(f"store      {run.store}")
    print()
    print(f"{'STEP':<28} {'STATE':<10} {'CACHED':<7} {'DURATION':>9}  OUTPUTS")
    for s in run.steps.values():
        outputs = ", ".join(f"{k}={r.digest[:10]}" for k, r in s.output_refs.items())
        took = f"{s.duration:.3f}s" if s.duration is not None else "-"
        print(f"{s.id:<28} {s.status:<10} {'yes' if s.cached else 'no':<7} {took:>9}  {outputs}")
    from ductwork.runtime.status import Status

    return 0 if run.status == Status.SUCCEEDED else 1


def _step_of(args: argparse.Namespace) -> Any:
    from ductwork.runtime.records.history import get_run

    run = get_run(args.run_id, store=args.store)
    if args.step not in run.steps:
        raise UsageError(
            f"Run {run.id} has no step '{args.step}'; its steps: {', '.join(run.steps)}."
        )
    return run.steps[args.step]


def cmd_logs(args: argparse.Namespace) -> int:
    """Print a step's captured output and, if it failed, its traceback."""
    record = _step_of(args)
    sys.stdout.write(record.logs)
    if record.error:
        sys.stdout.write(record.error)
    return 0


def cmd_why(args: argparse.Namespace) -> int:
    """Explain why a step was a cache hit or ran."""
    print(_step_of(args).why)
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    """Show what differs between two runs: parameters, graph, and step by step."""
    from ductwork.runtime.records.diff import diff_runs

    found = diff_runs(args.run_a, args.run_b, store=args.store)
    if args.json:
        print(json.dumps(found.to_dict(), indent=2, default=repr))
    else:
        sys.stdout.write(found.render())
    return 0


def cmd_gc(args: argparse.Namespace) -> int:
    """Remove artifacts and cache entries that no kept run and no running run uses."""
    import datetime as dt

    from ductwork.runtime.records.gc import collect, format_duration, parse_duration

    newer = dt.datetime.fromisoformat(args.newer_than) if args.newer_than else None
    if args.keep_last is None and newer is None:
        raise UsageError("Say which runs to keep: --keep-last N and/or --newer-than DATE.")
    try:
        grace = parse_duration(args.grace)
    except ValueError as exc:
        raise UsageError(f"--grace: {exc}") from None
    _say_store(args.store)
    report = collect(args.store, keep_last=args.keep_last, newer_than=newer,
                     dry_run=args.dry_run, grace=grace)
    verb = "would remove" if report.dry_run else "removed"
    print(f"{verb} {report.runs_removed} runs, {report.objects_removed} artifacts "
          f"({report.bytes_freed / 1e6:.1f} MB), {report.keys_removed} cache entries")
    kept = report.kept_by_run + report.kept_by_lease + report.kept_by_grace
    print(f"kept {report.runs_kept} runs and {kept} artifacts and cache entries: "
          f"{report.kept_by_run} used by kept runs, {report.kept_by_lease} leased by running "
          f"runs, {report.kept_by_grace} younger than the grace period "
          f"({format_duration(report.grace)})")
    if report.dry_run:
        print("dry run: nothing was removed")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser of every command."""
    parser = argparse.ArgumentParser(
        prog="ductwork", description="Run, inspect and publish ductwork pipelines."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run a pipeline", description=cmd_run.__doc__)
    run.add_argument("target", metavar="FILE.py:PIPELINE")
    run.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE",
                     help="a pipeline parameter, converted by its annotation (repeatable)")
    run.add_argument("--backend", default="inline", help="where steps run (default: inline)")
    run.add_argument("--max-workers", type=_at_least_one, default=None,
                     help="parallel steps at most (>= 1)")
    run.add_argument("--store", default=None, help="artifact store URL or path")
    run.add_argument("--address", default=None,
                     help="scheduler address for --backend dask (default: a local cluster)")
    run.add_argument("--shared-filesystem", action="store_true",
                     help="the local --store path is mounted on every dask worker")
    run.set_defaults(func=cmd_run)

    graph = commands.add_parser("graph", help="print a pipeline's graph",
                                description=cmd_graph.__doc__)
    graph.add_argument("target", metavar="FILE.py:PIPELINE")
    graph.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE")
    graph.add_argument("--format", choices=("mermaid", "dot"), default="mermaid")
    graph.set_defaults(func=cmd_graph)

    plan = commands.add_parser("plan", help="which steps would run, and why",
                               description=cmd_plan.__doc__)
    plan.add_argument("target", metavar="FILE.py:PIPELINE")
    plan.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE")
    plan.add_argument("--store", default=None, help="artifact store URL or path")
    plan.add_argument("--backend", default="inline",
                      help="the backend a run would use; it gives the environment part of "
                           "each key (default: inline)")
    plan.add_argument("--regenerate", action="append", default=[], metavar="STEP",
                      help="plan as if this step were regenerated ('all': every step)")
    plan.add_argument("--json", action="store_true", help="print JSON for scripts")
    plan.set_defaults(func=cmd_plan)

    def history_command(name: str, func: Any, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=func.__doc__)
        sub.add_argument("--store", default=None,
                         help="store URL or path (default: $DUCTWORK_STORE or ./.ductwork)")
        sub.set_defaults(func=func)
        return sub

    listing = history_command("runs", cmd_runs, "list past runs")
    listing.add_argument("--pipeline", default=None)
    listing.add_argument("--limit", type=int, default=20)
    history_command("show", cmd_show, "show one run").add_argument("run_id")
    for name, func, text in (("logs", cmd_logs, "print a step's logs"),
                             ("why", cmd_why, "explain a cache hit or miss")):
        sub = history_command(name, func, text)
        sub.add_argument("run_id")
        sub.add_argument("step")
    diff = history_command("diff", cmd_diff, "what differs between two runs")
    diff.add_argument("run_a")
    diff.add_argument("run_b")
    diff.add_argument("--json", action="store_true", help="print JSON for scripts")
    gc = history_command("gc", cmd_gc, "remove what no kept run refers to")
    gc.add_argument("--keep-last", type=int, default=None, metavar="N",
                    help="keep the newest N runs")
    gc.add_argument("--newer-than", default=None, metavar="DATE",
                    help="keep runs started after this ISO date")
    gc.add_argument("--dry-run", action="store_true",
                    help="print what would go, remove nothing")
    gc.add_argument("--grace", default="1h", metavar="DURATION",
                    help="keep files younger than this, whoever uses them: 90s, 30m, 1h, "
                         "2d (default: 1h)")
    from ductwork.runtime.publish.commands import add_commands as add_publish_commands

    add_publish_commands(commands, load_pipeline)  # publish, pipelines
    from ductwork.runtime.data.commands import add_commands as add_data_commands

    add_data_commands(commands)  # datasets
    from ductwork.server.commands import add_commands as add_server_commands

    add_server_commands(commands)  # serve, token
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ductwork`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except UsageError as exc:
        print(f"ductwork: {exc}", file=sys.stderr)
        return 2
    except (DuctworkError, LookupError) as exc:
        print(f"ductwork: {exc.args[0] if isinstance(exc, LookupError) else exc}",
              file=sys.stderr)
        return 1
