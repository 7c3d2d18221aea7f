"""``ductwork run``, ``plan`` and ``graph``: commands over a pipeline in a file."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ductwork.cli.loading import load_pipeline, parse_params
from ductwork.cli.output import print_json, stdout_to_stderr

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


def _regenerate(steps: list[str]) -> bool | list[str]:
    """``--regenerate`` as ``run(regenerate=...)`` takes it: 'all' is every step."""
    return True if "all" in steps else steps


def _run_options(args: argparse.Namespace) -> dict[str, Any]:
    """The run options the command line sets, as ``Pipeline.run`` takes them."""
    options: dict[str, Any] = {"backend": args.backend}
    if args.store is not None:  # an empty --store is refused by the run, not dropped
        options["store"] = args.store
    if args.max_workers is not None:
        options["max_workers"] = args.max_workers
    if args.address:
        options["address"] = args.address
    if args.shared_filesystem:
        options["shared_filesystem"] = True
    if args.regenerate:
        options["regenerate"] = _regenerate(args.regenerate)
    return options


def cmd_run(args: argparse.Namespace) -> int:
    """Run a pipeline from a file.

    stdout gets the result only: ``run ID STATUS in Ns`` and the outputs as JSON (with
    ``--json``, one JSON document of the run and its outputs). Progress -- a live view on
    a terminal, else a line per finished step -- and what steps print go to stderr.
    """
    from ductwork.dsl.core import PipelineFailed
    from ductwork.runtime.records.documents import run_document
    from ductwork.runtime.ui.live import StoreLive
    from ductwork.runtime.ui.progress import make_progress

    pipeline = load_pipeline(args.target)
    params = parse_params(pipeline, args.param)
    options = _run_options(args)
    display = make_progress(args.progress, lines=True)
    if args.backend != "inline" and hasattr(display, "echo_logs"):
        display.echo_logs = True  # inline steps print through as they go; others are captured
    # A studio serving the same local store shows the run's steps live (and nothing is
    # written for a remote store, which no studio reads this way).
    display = StoreLive(display)
    try:
        with stdout_to_stderr():
            run = pipeline.run(**params, **options, progress=display)
    except PipelineFailed as exc:
        run = exc.run
        store = f" --store {args.store}" if args.store else ""
        for record in run.failed_steps:
            last = (record.error or "").strip().splitlines()[-1:] or [""]
            print(f"step {record.id} failed: {last[0]}", file=sys.stderr)
            print(f"  traceback: ductwork logs {run.id} {record.id}{store}", file=sys.stderr)
        print(f"run {run.id} failed", file=sys.stderr)
        if args.json:
            print_json({**run_document(run), "outputs": None})
        return 1
    if args.json:
        print_json({**run_document(run), "outputs": run.outputs})
    else:
        print(f"run {run.id} {run.status} in {run.duration:.3f}s")
        print_json(run.outputs)
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
        options["regenerate"] = _regenerate(args.regenerate)
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
    run.add_argument("--regenerate", action="append", default=[], metavar="STEP",
                     help="run this step and those downstream of it even if cached "
                          "(repeatable; 'all': every step)")
    run.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                     help="show progress on stderr: a live view on a terminal, else a line "
                          "per finished step (default: shown unless DUCTWORK_PROGRESS=0)")
    run.add_argument("--json", action="store_true",
                     help="print the run and its outputs as one JSON document")
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
