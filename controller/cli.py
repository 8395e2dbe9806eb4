"""``hwnas``: the controller's command line. A thin skin over the controller's modules."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from controller import __version__


def _input_shape(text: str) -> tuple[str, tuple[int, ...]]:
    """'1,3,224,224' or 'name=1,3,224,224'."""
    name, _, dims = text.rpartition("=")
    try:
        shape = tuple(int(d) for d in dims.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"input shape must look like 1,3,224,224 or x=1,3,224,224: {text!r}") from None
    return name, shape


def _param(text: str) -> tuple[str, float]:
    key, sep, value = text.partition("=")
    try:
        if not (key and sep):
            raise ValueError
        return key, float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"protocol parameter must look like runs=20: {text!r}") from None


def cmd_profile(args: argparse.Namespace) -> int:
    from controller.client import AgentCallError, AgentClient
    from controller.report import profile_table

    try:
        model = args.model.read_bytes()
    except OSError as exc:
        print(f"hwnas profile: cannot read MODEL {args.model}: {exc.strerror}", file=sys.stderr)
        return 2
    try:
        with AgentClient(args.agent) as client:
            client.wait_ready(args.connect_timeout)
            sha, uploaded = client.ensure_model(model, "tflite" if args.model.suffix == ".tflite" else "onnx")
            record = client.profile(
                sha, backend=args.backend, protocol=args.protocol, protocol_params=dict(args.param or []),
                batch_size=args.batch_size, input_shapes=dict(args.input_shape or []), threads=args.threads,
                warmup_runs=args.warmup_runs, return_samples=args.samples, deadline_seconds=args.deadline,
            )
    except AgentCallError as exc:
        print(f"hwnas profile: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({"model": str(args.model), "uploaded": uploaded, **record.to_dict()}, indent=2))
    else:
        print(profile_table([(args.model.name, record)]))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from controller.demo import run_demo

    run_demo(args.protocol)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hwnas", description="hwnas controller: hardware-in-the-loop NAS.")
    parser.add_argument("--version", action="version", version=f"hwnas {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("profile", help="upload a model to an agent (if needed) and profile it")
    p.add_argument("model", type=Path, metavar="MODEL.onnx", help="model file (ONNX)")
    p.add_argument("--agent", required=True, metavar="HOST:PORT", help="agent address, e.g. 127.0.0.1:50151")
    p.add_argument("--backend", default="onnxruntime", help="runtime on the agent (default %(default)s)")
    p.add_argument("--protocol", default="latbench", help="latbench | fixed | adaptive (default %(default)s)")
    p.add_argument("--param", type=_param, action="append", metavar="KEY=VALUE",
                   help="protocol parameter override, e.g. --param runs=20; repeatable")
    p.add_argument("--batch-size", type=int, default=0, help="batch for a dynamic batch dimension")
    p.add_argument("--input-shape", type=_input_shape, action="append", metavar="[NAME=]D0,D1,...",
                   help="explicit input shape; repeat per input")
    p.add_argument("--threads", type=int, default=0, help="intra-op threads (0: runtime default)")
    p.add_argument("--warmup-runs", type=int, default=None, help="warm-up inferences (default: protocol's)")
    p.add_argument("--deadline", type=float, default=0.0, metavar="SECONDS", help="stop the measurement after this")
    p.add_argument("--samples", action="store_true", help="include raw per-inference samples (with --json)")
    p.add_argument("--connect-timeout", type=float, default=10.0, metavar="SECONDS")
    p.add_argument("--json", action="store_true", help="print the full result as JSON")
    p.set_defaults(func=cmd_profile)

    d = sub.add_parser("demo", help="start a local agent, profile small CNNs through it, print the table")
    d.add_argument("--protocol", default="latbench")
    d.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
