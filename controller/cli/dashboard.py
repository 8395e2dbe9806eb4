"""``hwnas dashboard``: the lab's fleet, campaigns and dataset in a browser, read-only
(``hwnas.controller.dashboard``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from hwnas.controller.cli import common
from hwnas.protos.listen import port_arg


def shown_store(target: str | Path) -> str:
    """The store as a page or a log may show it: a URL's password is never shown."""
    if isinstance(target, Path):
        return str(target)
    from sqlalchemy.engine import make_url

    return make_url(target).render_as_string(hide_password=True)


def cmd_dashboard(args: argparse.Namespace) -> int:
    from hwnas.protos.auth import is_loopback, read_token

    try:
        if bool(args.tls_cert) != bool(args.tls_key):
            raise ValueError("--tls-cert and --tls-key go together")
        for path in (args.tls_cert, args.tls_key, args.token_file):
            if path is not None and not path.is_file():
                raise ValueError(f"no such file: {path}")
        for folder in args.runs:
            if not folder.is_dir():
                raise ValueError(f"--runs {folder}: no such folder")
        if isinstance(args.db, Path) and not args.db.is_file():
            raise ValueError(f"no store at {args.db} (a SQLite file made by `hwnas latbench build`, or a URL)")
        token = read_token(args.token_file)
        if token is None and not is_loopback(args.host):
            raise ValueError(f"serving on {args.host} needs --token-file (every request must then carry the "
                             "token); without one the dashboard serves loopback addresses only")
    except (ValueError, OSError) as exc:
        return common.fail("dashboard", exc)
    import uvicorn

    from hwnas.controller.dashboard.app import create_app

    app = create_app(args.db, shown_store(args.db), token, runs=args.runs)
    scheme = "https" if args.tls_cert else "http"
    print(f"hwnas dashboard of {shown_store(args.db)} on {scheme}://{args.host}:{args.port}/"
          + (" (token required: open it with ?token=...)" if token else ""), flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False,
                ssl_certfile=str(args.tls_cert) if args.tls_cert else None,
                ssl_keyfile=str(args.tls_key) if args.tls_key else None)
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    d = sub.add_parser("dashboard", help="the fleet, campaigns and dataset of a store in a browser (read-only)",
                       description="Serve a read-only web dashboard of a store: every agent and its health, "
                                   "every campaign's progress live, the dataset's latency distributions and device "
                                   "correlations. Everything it needs ships with the install; nothing comes from "
                                   "a CDN.")
    d.add_argument("--db", type=common.db_target, default=Path("hwnas.db"),
                   help="store (SQLite file or SQLAlchemy URL; default %(default)s)")
    d.add_argument("--host", default="127.0.0.1", help="address to serve on (default %(default)s)")
    d.add_argument("--port", type=port_arg, default=8080, help="TCP port (default %(default)s)")
    d.add_argument("--runs", type=Path, action="append", default=[], metavar="DIR",
                   help="a run folder (hwnas search --out or hwnas autogo run --out), or a folder of them, for "
                        "the Searches page; repeat for several")
    d.add_argument("--token-file", type=Path, default=None,
                   help="require this bearer token on every request (needed to serve beyond loopback)")
    d.add_argument("--tls-cert", type=Path, default=None, help="serve HTTPS with this certificate (PEM)")
    d.add_argument("--tls-key", type=Path, default=None, help="its private key (PEM)")
    d.set_defaults(func=cmd_dashboard)
