"""``hwnas profile``: one model on one agent, converted on the controller when the backend runs another format."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from hwnas.controller.cli.common import (
    add_client_security,
    client_security,
    fail,
    param,
    seconds,
    waiting,
    whole,
)
from hwnas.protos.listen import address_arg


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("profile", help="upload a model to an agent (if needed) and profile it")
    p.add_argument("model", type=Path, metavar="MODEL", help="model file (.onnx, or .tflite for a LiteRT agent)")
    p.add_argument("--agent", required=True, metavar="HOST:PORT", type=address_arg,
                   help="agent address, e.g. 127.0.0.1:50151")
    p.add_argument("--backend", default=None,
                   help="runtime on the agent (default: onnxruntime for ONNX if the agent has it, else the agent's "
                        "backend that runs the file's format, else its first backend)")
    p.add_argument("--model-format", default=None,
                   help="send the model as onnx, tflite, tflite-int8, tflite-int8-full or edgetpu (default: what "
                        "the backend runs first); an ONNX file is converted on the controller (pip install "
                        "'hwnas[tflite]')")
    p.add_argument("--protocol", default="latbench", help="latbench | fixed | adaptive (default %(default)s)")
    p.add_argument("--param", type=param, action="append", metavar="KEY=VALUE",
                   help="protocol parameter override, e.g. --param runs=20; repeatable")
    p.add_argument("--batch-size", type=whole(0), default=0,
                   help="batch for a dynamic batch dimension (default: the model's own, else 1)")
    p.add_argument("--input-shape", type=_input_shape, action="append", metavar="[NAME=]D0,D1,...",
                   help="explicit input shape; repeat per input")
    p.add_argument("--threads", type=int, default=0, help="intra-op threads (0: runtime default)")
    p.add_argument("--warmup-runs", type=int, default=None, help="warm-up inferences (default: protocol's)")
    p.add_argument("--deadline", type=seconds, default=0.0, metavar="SECONDS",
                   help="stop the measurement after this; the controller stops waiting 5 s later in any case")
    p.add_argument("--samples", action="store_true", help="include raw per-inference samples (with --json)")
    p.add_argument("--no-memory", action="store_true",
                   help="skip the memory footprint (measured in a fresh process on the agent, a few seconds, "
                        "where the runtime reports none)")
    p.add_argument("--check-output", action="store_true",
                   help="check the device's outputs on a seeded input against onnxruntime at fp32 (ONNX files): "
                        "ok, wrong_answer or skipped, with the largest error")
    p.add_argument("--op-profile", action="store_true",
                   help="keep the runtime's own per-op profile (onnxruntime, openvino, torch on eager CPU runs, and "
                        "the tool backends benchmark_model, trtexec, benchmark_app); --json prints it as op_profile")
    p.add_argument("--connect-timeout", type=float, default=10.0, metavar="SECONDS")
    p.add_argument("--json", action="store_true", help="print the full result as JSON")
    add_client_security(p)
    p.set_defaults(func=cmd_profile)


def _input_shape(text: str) -> tuple[str, tuple[int, ...]]:
    """'1,3,224,224' or 'name=1,3,224,224'."""
    name, _, dims = text.rpartition("=")
    try:
        shape = tuple(int(d) for d in dims.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"input shape must look like 1,3,224,224 or x=1,3,224,224: {text!r}") from None
    return name, shape


def model_file_problem(path: Path) -> str:
    """Why ``path`` cannot be a model file, or "" when it can be read as one."""
    if path.is_dir():
        return "it is a folder; give a .onnx or .tflite file"
    if not path.exists():
        return "no such file"
    if not path.is_file():
        return "it is not a regular file"
    if path.stat().st_size == 0:
        return "the file is empty"
    return ""


def cmd_profile(args: argparse.Namespace) -> int:
    from hwnas.controller.errors import DeviceError
    from hwnas.controller.fleet.report import profile_table
    from hwnas.controller.lab import Lab

    problem = model_file_problem(args.model)
    if problem:
        return fail("profile", ValueError(f"cannot read MODEL {args.model}: {problem}"))
    try:
        tls, token = client_security(args)
        # One model outside any campaign, through the library's door (as hwnas.Lab.profile): the fleet dials,
        # converts and measures it; no dataset is kept.
        with tempfile.TemporaryDirectory(prefix="hwnas-profile-") as tmp, \
                Lab(Path(tmp) / "profile.db", {"profile": args.agent}, tls=tls, token=token,
                    golden=False, connect_timeout_s=args.connect_timeout) as lab:
            job = lab.profile(args.model, "profile", input_shape=dict(args.input_shape or []),
                              protocol=args.protocol, params=dict(args.param or []), backend=args.backend,
                              model_format=args.model_format, batch_size=args.batch_size, threads=args.threads,
                              warmup_runs=args.warmup_runs, deadline_s=args.deadline, samples=args.samples,
                              op_profile=args.op_profile, memory=not args.no_memory, output_check=args.check_output)
            with waiting(f"profiling {args.model.name} on {args.agent} ({args.backend or 'the agent’s backend'}, "
                         f"{args.protocol})"):
                try:
                    record = job.result()
                except DeviceError:
                    record = None
    except (ValueError, OSError, DeviceError) as exc:
        return fail("profile", exc)
    done = job.profiled
    if done is None:  # the agent refused or failed the model
        print(f"hwnas profile: {job.error}", file=sys.stderr)
        return 1
    if done.converted:
        print(f"converted {args.model.name} to {done.model_format} for backend {done.record.result['backend']}",
              file=sys.stderr)
    check = done.check
    checked = {"output_check": {"status": check.status, "max_abs_error": check.max_abs_error,
                                "detail": check.detail}} if check else {}
    if args.json:
        print(json.dumps({"model": str(args.model), "uploaded": done.uploaded, "model_format": done.model_format,
                          **done.record.to_dict(), **checked,
                          "record": record.to_dict() if record is not None else None}, indent=2))
    else:
        print(profile_table([(args.model.name, done.record)]))
        if check:
            print(f"output check: {check.status}" + (f", max abs error {check.max_abs_error:.3g}"
                                                     if check.max_abs_error is not None else "")
                  + (f" ({check.detail})" if check.detail else ""))
    if record is None:  # a wrong answer, or an answer that is no measurement
        print(f"hwnas profile: {job.error}", file=sys.stderr)
        return 1
    return 0
