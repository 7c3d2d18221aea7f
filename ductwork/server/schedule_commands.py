"""The ``ductwork schedule`` command: make, list, show, disable, enable and delete schedules.

``add_commands`` adds it to the command line's parser (``server.commands`` calls it).
It works on the store's schedules directly (``schedules``); a running ``ductwork
serve`` on that store sees the change at its next look, a quarter second later.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from typing import Any

__all__ = ["add_commands"]

_STORE_HELP = "store URL or path (default: $DUCTWORK_STORE or ./.ductwork)"


def add_commands(commands: Any) -> None:
    """Add ``schedule`` to the subcommands ``commands``."""
    schedule = commands.add_parser("schedule", help="run published pipelines by time or data",
                                   description=cmd_list.__doc__)
    actions = schedule.add_subparsers(dest="action", metavar="ACTION", required=True)
    create = actions.add_parser("create", help="make a schedule",
                                description=cmd_create.__doc__)
    create.add_argument("name")
    create.add_argument("--pipeline", required=True, help="the published pipeline it runs")
    create.add_argument("--version", type=int, default=None,
                        help="pin this version (default: the default when it fires)")
    when = create.add_mutually_exclusive_group(required=True)
    when.add_argument("--cron", help="5 fields ('0 2 * * *'), or 6 with seconds last")
    when.add_argument("--on-change", metavar="DATASTORE:PATH_OR_GLOB",
                      help="run when these files' content changes (':GLOB' for the "
                           "store's own datastore)")
    create.add_argument("--interval", type=float, default=60.0, metavar="SECONDS",
                        help="with --on-change: seconds between looks (default: 60)")
    create.add_argument("--timezone", default="UTC",
                        help="IANA zone the cron is read in (default: UTC)")
    create.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE",
                        help="a parameter of the runs (checked against the schema now)")
    create.add_argument("--catch-up", action="store_true",
                        help="after downtime, run the last time missed (default: skip it)")
    create.add_argument("--overlap", choices=("skip", "queue"), default="skip",
                        help="while the previous run goes: skip the firing (default) or "
                             "queue it behind that run")
    create.set_defaults(func=cmd_create)
    listing = actions.add_parser("list", help="list schedules", description=cmd_list.__doc__)
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(func=cmd_list)
    show = actions.add_parser("show", help="a schedule and its firings and skips",
                              description=cmd_show.__doc__)
    show.add_argument("name")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(func=cmd_show)
    subs = [create, listing, show]
    for action, func in (("disable", cmd_disable), ("enable", cmd_enable),
                         ("delete", cmd_delete)):
        sub = actions.add_parser(action, help=func.__doc__.split(";")[0].rstrip("."),
                                 description=func.__doc__)
        sub.add_argument("name")
        sub.set_defaults(func=func)
        subs.append(sub)
    for sub in subs:
        sub.add_argument("--store", default=None, help=_STORE_HELP)


def _parameters(args: argparse.Namespace) -> dict[str, Any]:
    """``-p name=value`` pairs: strings for string parameters, JSON (else text) otherwise."""
    from ductwork.dsl.core import DuctworkError
    from ductwork.runtime import publish

    found = publish.get_pipeline(args.pipeline, args.store)
    version = args.version or found["default_version"]
    record = next((r for r in found["records"] if r["version"] == version), {})
    properties = record.get("parameters", {}).get("properties", {})
    params: dict[str, Any] = {}
    for pair in args.param:
        name, sep, text = pair.partition("=")
        if not sep or not name:
            raise DuctworkError(f"-p takes name=value, got {pair!r}.")
        prop = properties.get(name, {})
        kinds = {prop.get("type")} | {o.get("type") for o in prop.get("anyOf", ())}
        if "string" in kinds:
            params[name] = text
            continue
        try:
            params[name] = json.loads(text)
        except ValueError:
            params[name] = text  # the schema check names it
    return params


def _when(schedule: dict[str, Any]) -> str:
    if schedule["cron"]:
        return f"cron '{schedule['cron']}' {schedule['timezone']}"
    return f"on change {schedule['on_change']} every {schedule['interval']:g}s"


def cmd_create(args: argparse.Namespace) -> int:
    """Make a schedule: a published pipeline run by cron, or when files in a datastore
    change; the parameters are checked against the version's schema now."""
    from ductwork.server import schedules

    made = schedules.create_schedule(
        args.store, args.name, pipeline=args.pipeline, version=args.version, cron=args.cron,
        timezone=args.timezone, on_change=args.on_change, interval=args.interval,
        parameters=_parameters(args), catch_up=args.catch_up, overlap=args.overlap)
    print(f"schedule {made['name']!r}: {made['pipeline']} {_when(made)}; `ductwork serve` "
          "fires it")
    return 0


def _stamp(iso: str | None) -> str:
    return "-" if iso is None else dt.datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M:%S")


def cmd_list(args: argparse.Namespace) -> int:
    """List schedules: what they run, when next, why they would not fire, the last firing."""
    from ductwork.server import schedules

    listed = [schedules.describe(args.store, s) for s in schedules.list_schedules(args.store)]
    if args.json:
        print(json.dumps(listed, indent=2))
        return 0
    if not listed:
        print("no schedules; make one with `ductwork schedule create NAME --pipeline P "
              "--cron '0 2 * * *'`", file=sys.stderr)
        return 0
    print(f"{'NAME':<20} {'PIPELINE':<16} {'ENABLED':<8} {'NEXT (UTC)':<20} {'LAST':<9} WHEN")
    for s in listed:
        last = s["firings"][0]["outcome"] if s["firings"] else "-"
        print(f"{s['name']:<20} {s['pipeline']:<16} {'yes' if s['enabled'] else 'no':<8} "
              f"{_stamp(s['next_fire']):<20} {last:<9} {_when(s)}")
        if s["blocked"]:
            print(f"{'':<20} not firing: {s['blocked']}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    """Show a schedule and its newest firings and skips, with why each was skipped."""
    from ductwork.server import schedules

    shown = schedules.describe(args.store, schedules.get_schedule(args.store, args.name), 50)
    if args.json:
        print(json.dumps(shown, indent=2))
        return 0
    print(f"{shown['name']}: {shown['pipeline']} {_when(shown)}, "
          f"{'enabled' if shown['enabled'] else 'disabled'}, next {_stamp(shown['next_fire'])}")
    if shown["blocked"]:
        print(f"not firing: {shown['blocked']}")
    for f in shown["firings"]:
        print(f"  {_stamp(f['time'])}  {f['outcome']:<8} {f['run_id'] or '-':<50} "
              f"{f['reason'] or ''}")
    return 0


def cmd_disable(args: argparse.Namespace) -> int:
    """Stop a schedule firing; `enable` resumes it."""
    from ductwork.server import schedules

    schedules.set_enabled(args.store, args.name, False)
    print(f"schedule {args.name!r} disabled")
    return 0


def cmd_enable(args: argparse.Namespace) -> int:
    """Let a schedule fire again, from its next time on."""
    from ductwork.server import schedules

    schedules.set_enabled(args.store, args.name, True)
    print(f"schedule {args.name!r} enabled")
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    """Delete a schedule and its firings; the runs it started stay."""
    from ductwork.server import schedules

    schedules.delete_schedule(args.store, args.name)
    print(f"schedule {args.name!r} deleted")
    return 0
