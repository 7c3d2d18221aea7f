"""The ``ductwork serve`` and ``ductwork token`` commands (and ``ductwork schedule``, from
``schedule_commands``).

``add_commands`` adds them to the command line's parser. Nothing heavy loads until
a command runs: FastAPI and uvicorn only for ``serve``.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import sys
from typing import Any

__all__ = ["add_commands", "is_loopback"]

_STORE_HELP = "store URL or path (default: $DUCTWORK_STORE or ./.ductwork)"


def add_commands(commands: Any) -> None:
    """Add ``serve`` and ``token`` to the subcommands ``commands``."""
    serve = commands.add_parser("serve", help="serve published pipelines over HTTP",
                                description=cmd_serve.__doc__)
    serve.add_argument("--store", default=None, help=_STORE_HELP)
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to listen on (default: 127.0.0.1, this machine only)")
    serve.add_argument("--port", type=int, default=8765, help="port (default: 8765)")
    serve.add_argument("--backend", default="inline",
                       help="where triggered runs execute their steps (default: inline)")
    serve.add_argument("--address", default=None, metavar="SCHEDULER",
                       help="with --backend dask: the scheduler triggered runs use, e.g. "
                            "tcp://scheduler:8786 (default: a local cluster per run)")
    serve.add_argument("--shared-filesystem", action="store_true",
                       help="with --backend dask: the local --store path is mounted on every "
                            "worker")
    serve.add_argument("--max-runs", type=int, default=4, metavar="N",
                       help="runs executing at once; the rest wait queued (default: 4)")
    serve.add_argument("--access-log", action="store_true", help="log every request")
    serve.set_defaults(func=cmd_serve)

    token = commands.add_parser("token", help="make, list and revoke API tokens",
                                description=cmd_token_list.__doc__)
    actions = token.add_subparsers(dest="action", metavar="ACTION", required=True)
    create = actions.add_parser("create", help="make a token and print it once",
                                description=cmd_token_create.__doc__)
    create.add_argument("name")
    create.add_argument("--role", choices=("viewer", "runner", "admin"), default="viewer",
                        help="viewer reads; runner also triggers and cancels; admin also "
                             "sets defaults, disables and enables (default: viewer)")
    create.set_defaults(func=cmd_token_create)
    listing = actions.add_parser("list", help="list tokens (names and roles, never tokens)",
                                 description=cmd_token_list.__doc__)
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(func=cmd_token_list)
    revoke = actions.add_parser("revoke", help="stop a token working, at once",
                                description=cmd_token_revoke.__doc__)
    revoke.add_argument("name")
    revoke.set_defaults(func=cmd_token_revoke)
    for sub in (create, listing, revoke):
        sub.add_argument("--store", default=None, help=_STORE_HELP)
    from ductwork.server import schedule_commands

    schedule_commands.add_commands(commands)


def is_loopback(host: str) -> bool:
    """Whether ``host`` only listens on this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve the store's published pipelines: the REST API under /api/v1, the studio at /."""
    import uvicorn

    from ductwork.server.app import API, create_app
    from ductwork.server.state import ServerError

    if args.max_runs < 1:
        raise ServerError(f"--max-runs must be 1 or more, got {args.max_runs}.")
    if not is_loopback(args.host):
        print(f"ductwork: warning: listening on {args.host}, reachable from other machines, "
              "and HTTP is not encrypted: bearer tokens would cross the network in clear. "
              "Put a TLS-terminating proxy (nginx, Caddy) in front and listen on 127.0.0.1 "
              "behind it.", file=sys.stderr)
    if (args.address or args.shared_filesystem) and args.backend != "dask":
        raise ServerError("--address and --shared-filesystem are settings of --backend dask; "
                          f"this server runs on --backend {args.backend}.")
    app = create_app(args.store, backend=args.backend, max_runs=args.max_runs,
                     address=args.address, shared_filesystem=args.shared_filesystem)
    store = app.state.server.artifacts
    print(f"ductwork: serving {store.url} at http://{args.host}:{args.port}{API} "
          f"(backend {args.backend}, at most {args.max_runs} runs at once)", file=sys.stderr,
          flush=True)
    # As Jupyter does: a single-use link that signs its opener in to the studio as admin.
    code = app.state.studio.sessions.one_time_code()
    print(f"ductwork: studio at http://{args.host}:{args.port}/ -- sign in once with "
          f"http://{args.host}:{args.port}/signin?once={code}", file=sys.stderr, flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning",
                access_log=args.access_log)
    return 0


def cmd_token_create(args: argparse.Namespace) -> int:
    """Make a bearer token for the server of a store; it is printed once, only its hash kept."""
    from ductwork.server import tokens
    from ductwork.server.state import open_state

    state = open_state(args.store)
    text = tokens.create(state, args.name, args.role)
    print(text)
    print(f"token {args.name!r} ({args.role}): shown once, keep it secret", file=sys.stderr)
    return 0


def cmd_token_list(args: argparse.Namespace) -> int:
    """List the tokens that work: names, roles and when they were made."""
    import datetime as dt

    from ductwork.server import tokens
    from ductwork.server.state import open_state

    listed = tokens.list_tokens(open_state(args.store))
    if getattr(args, "json", False):
        print(json.dumps(listed, indent=2))
        return 0
    if not listed:
        print("no tokens; make one with `ductwork token create NAME --role ROLE`",
              file=sys.stderr)
        return 0
    print(f"{'NAME':<24} {'ROLE':<8} CREATED")
    for t in listed:
        when = dt.datetime.fromtimestamp(t["created"]).strftime("%Y-%m-%d %H:%M:%S")
        print(f"{t['name']:<24} {t['role']:<8} {when}")
    return 0


def cmd_token_revoke(args: argparse.Namespace) -> int:
    """Revoke a token: the server refuses it from the next request on."""
    from ductwork.server import tokens
    from ductwork.server.state import open_state

    tokens.revoke(open_state(args.store), args.name)
    print(f"token {args.name!r} revoked")
    return 0
