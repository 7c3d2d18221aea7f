"""``ductwork run``, ``plan`` and ``graph``: commands over a pipeline in a file."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ductwork.cli.loading import load_pipeline, parse_params

__all__ = ["add_commands"]


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


def add_commands(commands: Any) -> None:
    """Add ``run``, ``graph`` and ``plan`` to the subcommands ``commands``."""
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
