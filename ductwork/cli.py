"""The ``ductwork`` command line: ``ductwork COMMAND ...`` and ``python -m ductwork``.

Each command is a small function over parsed arguments; the heavy parts load
only when that command runs.
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import json
import sys
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
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep:
            raise UsageError(f"-p takes name=value, got '{pair}'.")
        if name not in pipeline.parameters:
            known = ", ".join(pipeline.parameters) or "none"
            raise UsageError(
                f"Pipeline '{pipeline.name}' has no parameter '{name}' (known: {known})."
            )
        default = pipeline.parameters[name]
        kind = hints.get(name)
        if kind is None and default is not inspect.Parameter.empty and default is not None:
            kind = type(default)
        params[name] = _convert(name, text, kind)
    return params


def _convert(name: str, text: str, kind: Any) -> Any:
    origin = typing.get_origin(kind) or kind
    try:
        if origin is bool:
            lowered = text.lower()
            if lowered not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(text)
            return lowered in ("true", "1", "yes")
        if origin in (int, float):
            return origin(text)
        if origin in (str, Path) or kind is None:
            return origin(text) if kind is not None else text
        return json.loads(text)
    except ValueError:
        expected = getattr(kind, "__name__", str(kind))
        raise UsageError(f"Parameter '{name}' expects {expected}, got '{text}'.") from None


def cmd_run(args: argparse.Namespace) -> int:
    """Run a pipeline from a file."""
    from ductwork.dsl.core import PipelineFailed

    pipeline = load_pipeline(args.target)
    params = parse_params(pipeline, args.param)
    options: dict[str, Any] = {"backend": args.backend}
    if args.max_workers:
        options["max_workers"] = args.max_workers
    try:
        run = pipeline.run(**params, **options)
    except PipelineFailed as exc:
        run = exc.run
        for record in run.failed_steps:
            first_line = (record.error or "").strip().splitlines()[-1:] or [""]
            print(f"step {record.id} failed: {first_line[0]}", file=sys.stderr)
        print(f"run {run.id} failed; the full traceback is above in the error chain:\n",
              file=sys.stderr)
        print(str(exc), file=sys.stderr)
        return 1
    print(f"run {run.id} {run.status} in {run.duration:.3f}s")
    for record in run.steps.values():
        if record.map_index is None:
            print(f"  {record.id:<24} {record.status:<10} {record.duration or 0:.3f}s")
    print(json.dumps(run.outputs, indent=2, default=repr))
    return 0


def cmd_graph(args: argparse.Namespace) -> int:
    """Print a pipeline's graph without running it."""
    pipeline = load_pipeline(args.target)
    params = parse_params(pipeline, args.param)
    render = pipeline.to_dot if args.format == "dot" else pipeline.to_mermaid
    sys.stdout.write(render(**params))
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
    run.add_argument("--max-workers", type=int, default=None, help="parallel steps at most")
    run.set_defaults(func=cmd_run)

    graph = commands.add_parser("graph", help="print a pipeline's graph",
                                description=cmd_graph.__doc__)
    graph.add_argument("target", metavar="FILE.py:PIPELINE")
    graph.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE")
    graph.add_argument("--format", choices=("mermaid", "dot"), default="mermaid")
    graph.set_defaults(func=cmd_graph)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ductwork`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except UsageError as exc:
        print(f"ductwork: {exc}", file=sys.stderr)
        return 2
    except DuctworkError as exc:
        print(f"ductwork: {exc}", file=sys.stderr)
        return 1
