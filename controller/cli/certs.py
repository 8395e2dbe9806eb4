"""``hwnas certs``: TLS material for a lab (CA, agent and controller certificates with role EKUs, a token)."""

from __future__ import annotations

import argparse
from pathlib import Path

from hwnas.controller.cli.common import (
    fail,
)


def add_parser(sub: argparse._SubParsersAction) -> None:
    certs = sub.add_parser("certs", help="TLS material for a lab").add_subparsers(
        dest="certs_command", required=True, metavar="SUBCOMMAND")
    ci = certs.add_parser("init", help="create a CA, agent and controller certificates and a bearer token")
    ci.add_argument("dir", type=Path, metavar="DIR")
    ci.add_argument("--host", action="append", metavar="NAME|IP",
                    help="a name or address agents are reached by (repeatable; localhost is always included)")
    ci.add_argument("--days", type=int, default=825, help="validity (default %(default)s)")
    ci.add_argument("--force", action="store_true", help="replace existing files")
    ci.set_defaults(func=cmd_certs_init)


def cmd_certs_init(args: argparse.Namespace) -> int:
    from hwnas.controller.fleet.certs import init_lab

    try:
        paths = init_lab(args.dir, args.host or [], args.days, args.force)
    except FileExistsError as exc:
        return fail("certs init", FileExistsError(f"{exc} (--force replaces them)"))
    except (ValueError, OSError) as exc:
        return fail("certs init", exc)
    for path in paths:
        print(f"wrote {path}")
    print("agents:     hwnas-agent serve --host 0.0.0.0 --tls-cert agent.pem --tls-key agent.key "
          "--token-file token [--tls-client-ca ca.pem]")
    print("controller: hwnas ... --tls-ca ca.pem --token-file token "
          "[--tls-cert controller.pem --tls-key controller.key]")
    print("dial-out:   hwnas latbench build ... --listen 0.0.0.0:50060 --tls-cert controller.pem "
          "--tls-key controller.key --tls-ca ca.pem --token-file token")
    print("            hwnas-agent serve --controller HOST:50060 --device-key KEY --controller-ca ca.pem "
          "--token-file token")
    return 0
