"""The ``ductwork publish`` and ``ductwork pipelines`` commands.

``add_commands`` adds them to the command line's parser; it takes the command
line's pipeline loader (``FILE.py:PIPELINE``), which lives above the runtime.
Everything heavy loads only when a command runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["add_commands"]

_STORE_HELP = "store URL or path (default: $DUCTWORK_STORE or ./.ductwork)"


def add_commands(commands: Any, load: Callable[[str], Any]) -> None:
    """Add ``publish`` and ``pipelines`` to the subcommands ``commands``."""
    pub = commands.add_parser("publish", help="publish a pipeline as a new version",
                              description=cmd_publish.__doc__)
    pub.add_argument("target", metavar="FILE.py:PIPELINE")
    pub.add_argument("--name", default=None, help="published name (default: the pipeline's)")
    pub.add_argument("--description", default="")
    pub.add_argument("--store", default=None, help=_STORE_HELP)
    pub.add_argument("--json", action="store_true", help="print the version as JSON")
    pub.set_defaults(func=lambda args: cmd_publish(args, load))

    pipes = commands.add_parser("pipelines", help="list and manage published pipelines",
                                description=cmd_list.__doc__)
    pipes.add_argument("--store", default=None, help=_STORE_HELP)
    pipes.add_argument("--json", action="store_true", help="print JSON")
    pipes.set_defaults(func=cmd_list)
    actions = pipes.add_subparsers(dest="action", metavar="ACTION")

    def action(name: str, func: Any, help_text: str) -> argparse.ArgumentParser:
        sub = actions.add_parser(name, help=help_text, description=func.__doc__)
        # SUPPRESS: an option given before the action is kept, not reset by its default.
        sub.add_argument("--store", default=argparse.SUPPRESS, help=_STORE_HELP)
        sub.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                         help="print JSON")
        sub.set_defaults(func=func)
        return sub

    action("list", cmd_list, "list published pipelines")
    action("show", cmd_show, "show a pipeline's versions").add_argument("name")
    default = action("set-default", cmd_set_default, "choose the version that runs")
    default.add_argument("name")
    default.add_argument("version", type=int)
    action("disable", cmd_disable, "stop new runs of a pipeline").add_argument("name")
    action("enable", cmd_enable, "allow runs of a pipeline again").add_argument("name")


def cmd_publish(args: argparse.Namespace, load: Callable[[str], Any]) -> int:
    """Publish a pipeline from a file: snapshot its code and record a version."""
    from ductwork.runtime.publish.catalog import publish

    pipeline = load(args.target)
    pub = publish(pipeline, args.name, description=args.description, store=args.store)
    if args.json:
        print(json.dumps({"name": pub.name, "version": pub.version, "digest": pub.digest,
                          "default": pub.default, "created": pub.created}))
    else:
        default = " (default)" if pub.default else ""
        print(f"published {pub.name} version {pub.version}{default}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    """List published pipelines: versions, default, enabled."""
    from ductwork.runtime.publish.catalog import list_pipelines

    listed = list_pipelines(args.store)
    if args.json:
        print(json.dumps(listed, indent=2))
        return 0
    if not listed:
        print("no published pipelines", file=sys.stderr)
        return 0
    print(f"{'NAME':<24} {'DEFAULT':>7} {'VERSIONS':<12} {'ENABLED':<8} DESCRIPTION")
    for p in listed:
        versions = ",".join(map(str, p["versions"]))
        enabled = "yes" if p["enabled"] else "no"
        print(f"{p['name']:<24} {p['default_version']:>7} {versions:<12} {enabled:<8} "
              f"{p['description']}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    """Show one published pipeline: each version, its parameters and where it came from."""
    from ductwork.runtime.publish.catalog import get_pipeline

    found = get_pipeline(args.name, args.store)
    if args.json:
        print(json.dumps(found, indent=2))
        return 0
    print(f"pipeline   {found['name']}")
    print(f"enabled    {'yes' if found['enabled'] else 'no'}")
    print(f"default    {found['default_version']}")
    for record in found["records"]:
        mark = "*" if record["version"] == found["default_version"] else " "
        print(f"\n{mark} version {record['version']}  {record.get('created', '')}  "
              f"{record['digest'][:12]}  {record.get('description', '')}")
        print(f"    from {record.get('pipeline')} ({record.get('source_file')})")
        schema = record.get("parameters", {})
        required = set(schema.get("required", []))
        for name, prop in schema.get("properties", {}).items():
            kind = json.dumps({k: v for k, v in prop.items() if k not in ("title", "default")})
            given = "required" if name in required else f"default {json.dumps(prop.get('default'))}"
            print(f"    {name:<20} {given:<24} {kind}")
    return 0


def cmd_set_default(args: argparse.Namespace) -> int:
    """Make a version the one that runs when none is asked for."""
    from ductwork.runtime.publish.catalog import set_default

    set_default(args.name, args.version, args.store)
    print(f"{args.name}: default version {args.version}")
    return 0


def cmd_disable(args: argparse.Namespace) -> int:
    """Stop a pipeline from being triggered; its versions stay."""
    from ductwork.runtime.publish.catalog import disable

    disable(args.name, args.store)
    print(f"{args.name}: disabled")
    return 0


def cmd_enable(args: argparse.Namespace) -> int:
    """Let a disabled pipeline be triggered again."""
    from ductwork.runtime.publish.catalog import enable

    enable(args.name, args.store)
    print(f"{args.name}: enabled")
    return 0
