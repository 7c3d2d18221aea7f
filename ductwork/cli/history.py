"""``ductwork runs``, ``show``, ``logs``, ``why``, ``diff`` and ``gc``: commands over the
run history of a store."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ductwork.cli.loading import UsageError
from ductwork.cli.output import metrics_text, output_text, print_json, say_store, when

__all__ = ["add_commands"]


def _source(run: Any) -> str:
    """Where a run's pipeline was defined: its file, relative to here when below it."""
    import os

    if not run.source_file:
        return run.module or "-"
    try:
        relative = os.path.relpath(run.source_file)
    except ValueError:  # another drive
        return run.source_file
    return run.source_file if relative.startswith("..") else relative


def cmd_runs(args: argparse.Namespace) -> int:
    """List past runs, newest first, with the file each pipeline came from."""
    from ductwork.runtime.records.documents import run_summary
    from ductwork.runtime.records.history import existing_store, runs

    say_store(args.store)
    existing_store(args.store)  # a typo'd --store is an error, and creates nothing
    listed = runs(store=args.store, pipeline=args.pipeline, limit=args.limit)
    if args.json:
        print_json([run_summary(run) for run in listed])
        return 0
    if not listed:
        print("no runs yet")
        return 0
    print(f"{'RUN':<24} {'PIPELINE':<20} {'STATUS':<10} {'STARTED':<20} {'DURATION':>9}  SOURCE")
    for run in listed:
        took = f"{run.duration:.3f}s" if run.duration is not None else "-"
        print(f"{run.id:<24} {run.pipeline:<20} {run.status:<10} {when(run.started):<20} "
              f"{took:>9}  {_source(run)}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    """Show one run: parameters, provenance, and every step's state, metrics and outputs
    (small values shown, large ones described)."""
    from ductwork.runtime.records.documents import run_document
    from ductwork.runtime.records.history import get_run
    from ductwork.runtime.status import Status
    from ductwork.runtime.ui.tally import step_state

    run = get_run(args.run_id, store=args.store)
    code = 0 if run.status == Status.SUCCEEDED else 1
    if args.json:
        print_json(run_document(run))
        return code
    print(f"run        {run.id}")
    print(f"pipeline   {run.pipeline}  ({_source(run)})")
    print(f"status     {run.status}")
    print(f"started    {when(run.started)}  ({run.duration or 0:.3f}s)")
    print(f"parameters {json.dumps(run.params, default=repr)}")
    dirty = " (dirty)" if run.git_dirty else ""
    print(f"git        {run.git_commit or '-'}{dirty}")
    print(f"versions   ductwork {run.ductwork_version}, Python {run.python_version}")
    print(f"store      {run.store}")
    print()
    # Columns as wide as their longest cell: "cached (from run ...)" is 38 characters.
    states = {s.id: step_state(s) for s in run.steps.values()}
    idw = max([28, *(len(i) for i in states)])
    stw = max([10, *(len(t) for t in states.values())])
    print(f"{'STEP':<{idw}} {'STATE':<{stw}} {'DURATION':>9}  OUTPUTS")
    for s in run.steps.values():
        named = len(s.output_refs) > 1
        outputs = "; ".join(f"{k}={output_text(s, k)}" if named else output_text(s, k)
                            for k in s.output_refs)
        took = "-" if s.cached or s.duration is None else f"{s.duration:.3f}s"
        print(f"{s.id:<{idw}} {states[s.id]:<{stw}} {took:>9}  {outputs}")
        if s.metrics:
            print(f"{'':<{idw}} metrics: {metrics_text(s.metrics)}")
    return code


def _step_of(args: argparse.Namespace) -> Any:
    from ductwork.runtime.records.history import get_run

    run = get_run(args.run_id, store=args.store)
    if args.step not in run.steps:
        raise UsageError(
            f"Run {run.id} has no step '{args.step}'; its steps: {', '.join(run.steps)}."
        )
    return run.steps[args.step]


def cached_note(record: Any, run_id: str) -> str:
    """What ``logs`` says of a step taken from the cache: whose logs these are."""
    if record.cached_from:
        return (f"step '{record.id}' was taken from the cache in run {run_id}; these are the "
                f"logs of run {record.cached_from}, which produced its outputs.")
    return (f"step '{record.id}' was taken from the cache in run {run_id}: it did not run, so "
            "this run has no logs of it; the run that produced its outputs has them.")


def cmd_logs(args: argparse.Namespace) -> int:
    """Print a step's captured output and, if it failed, its traceback."""
    record = _step_of(args)
    if record.cached:
        print(cached_note(record, args.run_id), file=sys.stderr)
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
    say_store(args.store)
    report = collect(args.store, keep_last=args.keep_last, newer_than=newer,
                     dry_run=args.dry_run, grace=grace)
    if args.json:
        print_json({
            "dry_run": report.dry_run, "runs_removed": report.runs_removed,
            "objects_removed": report.objects_removed, "keys_removed": report.keys_removed,
            "bytes_freed": report.bytes_freed, "runs_kept": report.runs_kept,
            "kept_by_run": report.kept_by_run, "kept_by_lease": report.kept_by_lease,
            "kept_by_grace": report.kept_by_grace, "grace_seconds": report.grace,
        })
        return 0
    verb = "would remove" if report.dry_run else "removed"
    print(f"{verb} {report.runs_removed} runs, {report.objects_removed} artifacts "
          f"({report.bytes_freed / 1e6:.1f} MB), {report.keys_removed} cache entries")
    kept = report.kept_by_run + report.kept_by_lease + report.kept_by_grace
    grace_text = format_duration(report.grace)
    print(f"kept {report.runs_kept} runs and {kept} artifacts and cache entries: "
          f"{report.kept_by_run} used by kept runs, {report.kept_by_lease} leased by running "
          f"runs, {report.kept_by_grace} younger than the grace period ({grace_text})")
    if report.kept_by_grace:
        again = ["ductwork gc"]
        if args.keep_last is not None:
            again.append(f"--keep-last {args.keep_last}")
        if args.newer_than:
            again.append(f"--newer-than {args.newer_than}")
        again.append("--grace 0s")
        if args.store:
            again.append(f"--store {args.store}")
        print(f"{report.kept_by_grace} artifacts and cache entries younger than the "
              f"{grace_text} grace were kept, "
              "as a run going now may have just written them and not yet recorded them; "
              f"when no run is going, `{' '.join(again)}` removes them now")
    if report.dry_run:
        print("dry run: nothing was removed")
    return 0


def add_commands(commands: Any) -> None:
    """Add the history commands to the subcommands ``commands``."""

    def history_command(name: str, func: Any, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=func.__doc__)
        sub.add_argument("--store", default=None,
                         help="store URL or path (default: $DUCTWORK_STORE or ./.ductwork)")
        sub.set_defaults(func=func)
        return sub

    listing = history_command("runs", cmd_runs, "list past runs")
    listing.add_argument("--pipeline", default=None)
    listing.add_argument("--limit", type=int, default=20)
    listing.add_argument("--json", action="store_true", help="print JSON for scripts")
    show = history_command("show", cmd_show, "show one run")
    show.add_argument("run_id")
    show.add_argument("--json", action="store_true", help="print JSON for scripts")
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
    gc.add_argument("--json", action="store_true", help="print the report as JSON")
