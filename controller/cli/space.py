"""``hwnas space``: list, sample, show and export a search space's architectures."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from hwnas.controller.cli.common import (
    add_space_options,
    fail,
    sampled,
    space_options,
)


def add_parser(sub: argparse._SubParsersAction) -> None:
    space = sub.add_parser("space", help="search spaces: list, sample, show, export").add_subparsers(
        dest="space_command", required=True, metavar="SUBCOMMAND")
    space.add_parser("list", help="the registered spaces").set_defaults(func=cmd_space_list)
    sp = space.add_parser("sample", help="random architectures of a space")
    sp.add_argument("--space", required=True)
    sp.add_argument("-n", type=int, default=10, help="how many (default %(default)s)")
    sp.add_argument("--seed", type=int, default=0)
    sp.add_argument("--json", action="store_true")
    add_space_options(sp)
    sp.set_defaults(func=cmd_space_sample)
    sh = space.add_parser("show", help="one architecture: encoding, arch_id, FLOPs, params, ops")
    sh.add_argument("arch", metavar="ARCH", help="string form (any space), or with --space an encoding "
                                                "'0,3,1,...' or an NB-201 index")
    sh.add_argument("--space", default=None)
    sh.add_argument("--json", action="store_true")
    add_space_options(sh)
    sh.set_defaults(func=cmd_space_show)
    ex = space.add_parser("export", help="write random architectures as ONNX + CG JSON with an index.csv")
    ex.add_argument("--space", required=True)
    ex.add_argument("-n", type=int, required=True)
    ex.add_argument("--seed", type=int, default=0)
    ex.add_argument("--out", type=Path, required=True, metavar="DIR")
    ex.add_argument("--quiet", action="store_true", help="no progress bar")
    add_space_options(ex)
    ex.set_defaults(func=cmd_space_export)


def cmd_space_list(args: argparse.Namespace) -> int:
    from hwnas.controller.spaces import SPACES

    print(f"{'space':14} {'variables':>9} {'size':>10}  description")
    for name, factory in SPACES.items():
        space = factory()
        print(f"{name:14} {space.n_var:>9} {space.size():>10.3g}  {space.description}")
    return 0


def cmd_space_sample(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from hwnas.controller.spaces import get_space
    from hwnas.controller.spaces.catalog import describe

    try:
        space = get_space(args.space, **space_options(args))
        archs = sampled(space, args.n, args.seed)
        rows = [describe(space, x) for x in tqdm(archs, desc=f"describe {space.name}", unit="network",
                                                 disable=None if len(archs) > 500 else True)]
    except ValueError as exc:
        return fail("space sample", exc)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        print(f"{row['arch_id'][:16]}  {row['macs'] / 1e6:9.2f} MMACs  {row['params'] / 1e6:7.3f} M params  "
              f"{row['arch']}")
    return 0


def cmd_space_show(args: argparse.Namespace) -> int:
    from hwnas.controller.spaces.catalog import describe, parse_arch

    try:
        space, x = parse_arch(args.arch, args.space, **space_options(args))
        info = describe(space, x)
    except ValueError as exc:
        return fail("space show", exc)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    for key, value in info.items():
        if key == "ops":
            value = ", ".join(f"{op}={n}" for op, n in value.items())
        elif key in ("macs", "params"):
            value = f"{value:,}"
        print(f"{key:>13}: {value}")
    return 0


def cmd_space_export(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from hwnas.controller.spaces import get_space
    from hwnas.controller.spaces.catalog import export

    try:
        space = get_space(args.space, **space_options(args))
        archs = sampled(space, args.n, args.seed)
    except ValueError as exc:
        return fail("space export", exc)
    rows = export(space, archs, args.out,
                  progress=lambda it: tqdm(it, desc=f"export {space.name}", unit="model", disable=args.quiet))
    print(f"wrote {len(rows)} models (ONNX + CG JSON) and {args.out / 'index.csv'}")
    return 0
