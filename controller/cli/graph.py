"""``hwnas graph``: import an ONNX network into the computation-graph IR and summarise it."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from hwnas.controller.cli.common import (
    fail,
)


def add_parser(sub: argparse._SubParsersAction) -> None:
    graph = sub.add_parser("graph", help="computation graphs").add_subparsers(
        dest="graph_command", required=True, metavar="SUBCOMMAND")
    gi = graph.add_parser("import", help="import an ONNX network: op counts, FLOPs (MACs), params")
    gi.add_argument("model", type=Path, metavar="MODEL.onnx")
    gi.add_argument("--input-shape", type=_shape, default=None, metavar="1,3,224,224",
                    help="fixes dynamic input dimensions")
    gi.add_argument("--out", type=Path, default=None, metavar="cg.json", help="write the CG as canonical JSON")
    gi.add_argument("--json", action="store_true")
    gi.set_defaults(func=cmd_graph_import)


def _shape(text: str) -> tuple[int, ...]:
    try:
        dims = tuple(int(d) for d in text.split(","))
        if any(d <= 0 for d in dims):
            raise ValueError
        return dims
    except ValueError:
        raise argparse.ArgumentTypeError(f"shape must look like 1,3,224,224 (positive dims): {text!r}") from None


def cmd_graph_import(args: argparse.Namespace) -> int:
    from hwnas.controller.graph.onnx_import import from_onnx

    if not args.model.is_file():
        return fail("graph import", FileNotFoundError(f"no such model file: {args.model}"))
    try:
        graph = from_onnx(args.model, input_shape=args.input_shape)
    except ValueError as exc:
        return fail("graph import", exc)
    except MemoryError:
        return fail("graph import", MemoryError(f"not enough memory to import {args.model}"))
    if args.out:
        args.out.write_text(graph.to_json(indent=1))
    summary = {"model": str(args.model), "arch_id": graph.arch_id, "input_shape": list(graph.input_shape),
               "input_shapes": [list(shape) for shape in graph.input_shapes],
               "macs": graph.macs(), "params": graph.params(), "ops": dict(sorted(graph.op_counts().items()))}
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        inputs = ", ".join(str(list(shape)) for shape in graph.input_shapes)
        print(f"{args.model.name}: input{'s' if len(graph.input_shapes) > 1 else ''} {inputs}, "
              f"{graph.macs() / 1e9:.3f} GMACs, "
              f"{graph.params() / 1e6:.3f} M params, arch_id {graph.arch_id[:16]}")
        for op, n in summary["ops"].items():
            print(f"  {op:>16}  {n}")
    if args.out:
        print(f"wrote {args.out}")
    return 0
