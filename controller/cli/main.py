"""``hwnas``: the controller's command line. ``main`` assembles the command groups, each a module of this
package with an ``add_parser(sub)``; the commands are thin skins over the controller's rooms."""

from __future__ import annotations

import argparse
import sys

from hwnas.controller import __version__
from hwnas.controller.cli import (
    autobuild,
    autogo,
    certs,
    dashboard,
    demo,
    fleet,
    graph,
    latbench,
    predictor,
    profile,
    search,
    space,
)
from hwnas.controller.cli.common import fail

COMMAND_GROUPS = (profile, space, graph, latbench, fleet, predictor, search, autogo, autobuild, dashboard, certs,
                  demo)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hwnas", description="hwnas controller: hardware-in-the-loop NAS.")
    parser.add_argument("--version", action="version", version=f"hwnas {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in COMMAND_GROUPS:
        group.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from hwnas.controller.store import SchemaError, StoreOpenError, StoreUnavailable

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (StoreOpenError, SchemaError, StoreUnavailable) as exc:  # every command with --db: one line, no traceback
        return fail(args.command, exc)


if __name__ == "__main__":
    sys.exit(main())
