"""The ``ductwork`` command line: ``ductwork COMMAND ...`` and ``python -m ductwork``.

Each command is a small function over parsed arguments; the heavy parts load
only when that command runs. The commands live by noun, each module adding its
own to the parser through an ``add_commands(commands, ...)`` hook:

- ``loading``: ``FILE.py:PIPELINE`` and ``-p name=value`` (``load_pipeline``,
  ``parse_params``, ``convert_param``, ``UsageError``);
- ``running``: ``run``, ``plan``, ``graph``;
- ``history``: ``runs``, ``show``, ``logs``, ``why``, ``diff``, ``gc``;
- ``output``: what commands print, JSON, and the streams (stdout carries the
  result, stderr everything else; a closed pipe ends quietly);
- beside the command line: ``runtime.publish.commands`` (``publish``,
  ``pipelines``) and ``server.commands`` (``serve``, ``token``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ductwork.cli.loading import UsageError, convert_param, load_pipeline, parse_params
from ductwork.cli.output import quiet_stdout
from ductwork.dsl.core import DuctworkError

__all__ = ["UsageError", "build_parser", "convert_param", "load_pipeline", "main",
           "parse_params"]


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser of every command."""
    from ductwork.cli import history, running
    from ductwork.runtime.data.commands import add_commands as add_data_commands
    from ductwork.runtime.publish.commands import add_commands as add_publish_commands
    from ductwork.server.commands import add_commands as add_server_commands

    parser = argparse.ArgumentParser(
        prog="ductwork", description="Run, inspect and publish ductwork pipelines."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    running.add_commands(commands)  # run, graph, plan
    history.add_commands(commands)  # runs, show, logs, why, diff, gc
    add_publish_commands(commands, load_pipeline)  # publish, pipelines
    add_data_commands(commands)  # datasets
    add_server_commands(commands)  # serve, token
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ductwork`` console script."""
    args = build_parser().parse_args(argv)
    try:
        code = args.func(args)
        sys.stdout.flush()  # here, so a closed pipe is met inside the try
        return code
    except BrokenPipeError:
        # The reader stopped reading (`| head -1`): that ends us quietly, with status 0, as
        # the command did what it was asked; 141 would fail `set -o pipefail` scripts.
        quiet_stdout()
        return 0
    except UsageError as exc:
        print(f"ductwork: {exc}", file=sys.stderr)
        return 2
    except (DuctworkError, LookupError) as exc:
        print(f"ductwork: {exc.args[0] if isinstance(exc, LookupError) else exc}",
              file=sys.stderr)
        return 1
