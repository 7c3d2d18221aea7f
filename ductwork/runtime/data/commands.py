"""The ``ductwork datasets`` command: registered datasets and their versions.

``add_commands`` adds it to the command line's parser. ``ductwork datasets``
lists every registered dataset (its latest version, all versions newest first,
whether the latest is a snapshot); ``ductwork datasets NAME`` lists that
dataset's versions; ``--json`` prints the same as ``Dataset.list()`` /
``Dataset.versions(NAME)`` return. Everything loads only when the command runs.
"""

from __future__ import annotations

import argparse
import json
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["add_commands"]

_STORE_HELP = "store URL or path (default: $DUCTWORK_STORE or ./.ductwork)"


def add_commands(commands: Any) -> None:
    """Add ``datasets`` to the subcommands ``commands``."""
    datasets = commands.add_parser("datasets", help="list registered datasets and versions",
                                   description=cmd_datasets.__doc__)
    datasets.add_argument("name", nargs="?", default=None, metavar="NAME",
                          help="list this dataset's versions")
    datasets.add_argument("--store", default=None, help=_STORE_HELP)
    datasets.add_argument("--json", action="store_true", help="print JSON for scripts")
    datasets.set_defaults(func=cmd_datasets)


def cmd_datasets(args: argparse.Namespace) -> int:
    """List registered datasets, or one dataset's versions, newest first."""
    from ductwork.runtime.data import registry

    if args.name is not None:
        versions = registry.summaries(args.name, args.store)
        if args.json:
            print(json.dumps(versions, indent=2))
            return 0
        print(f"{'VERSION':>7}  {'CREATED':<25} {'FILES':>5} {'SIZE':>9}  {'COPY':<8} "
              f"{'KIND':<7} {'WHERE':<30} DESCRIPTION")
        for v in versions:
            print(f"{v['version']:>7}  {v['created'] or '-':<25} {v['files']:>5} "
                  f"{_size(v['bytes']):>9}  {_copy(v):<8} {v['kind']:<7} {_where(v):<30} "
                  f"{v['description']}")
        return 0
    listed = registry.list_datasets(args.store)
    if args.json:
        print(json.dumps(listed, indent=2))
        return 0
    if not listed:
        print("no registered datasets (register one with "
              "dw.Dataset.files(...).register(name))", file=sys.stderr)
        return 0
    print(f"{'NAME':<24} {'LATEST':>6} {'VERSIONS':<12} {'COPY':<8} {'REGISTERED':<25} "
          "DESCRIPTION")
    for d in listed:
        latest = d["versions"][0]
        versions = ",".join(str(v["version"]) for v in d["versions"])
        print(f"{d['name']:<24} {latest['version']:>6} {versions:<12} {_copy(latest):<8} "
              f"{latest['created'] or '-':<25} {latest['description']}")
    return 0


def _copy(version: dict[str, Any]) -> str:
    """``snapshot`` (its bytes are in the store) or ``pinned`` (its fingerprint only)."""
    return "snapshot" if version["snapshot"] else "pinned"


def _where(version: dict[str, Any]) -> str:
    return (f"{version['path']} in {version['datastore']}" if version["datastore"]
            else str(version["path"]))


def _size(count: int) -> str:
    size = float(count)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} GB"  # not reached
