"""The output check through a vendor tool: the check's seeded inputs as files the tool loads, and the
outputs it writes read back.

In-process backends run the check's input once after timing (``measure.checked_outputs``). A tool is one
process the agent cannot reach into, so the check rides on the measured run itself: the tool is told to
feed the files of ``hwnas.protos.output_check``'s seeded input to every inference (``benchmark_model
--input_layer_value_files``, ``trtexec --loadInputs``) and to write the last inference's outputs to a file
(``--output_filepath``, ``--exportOutput``). The timed figures are those of the same run: a kernel's time
does not depend on the values it is fed, except where a model branches on data, which CNNs and the
transformers of the corpus do not. The model's inputs and outputs come from its own bytes
(``onnx_metadata``, ``tflite_metadata``), so the agent host needs no runtime of the device's.

A tool that feeds random inputs and writes nothing (``benchmark_app``, ``litert-benchmark``) but is a Python
console script of its runtime's wheel has a companion (``companions/``): after the timed run the tool's own
interpreter runs it on the device, on the same input files, with the runtime set up as the tool's run was.
"""

from __future__ import annotations

import json
import math
import shlex
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path, PurePosixPath

import numpy as np

from hwnas.device_agent.errors import InvalidInput
from hwnas.device_agent.measure import resolve_input_shapes
from hwnas.device_agent.onnx_metadata import graph_io
from hwnas.device_agent.tensors import InputSpec
from hwnas.device_agent.tflite_metadata import model_io
from hwnas.device_agent.tools.base import BenchmarkTool, CheckIO, ToolOutputError
from hwnas.device_agent.transports.base import Transport
from hwnas.protos import output_check

COMPANIONS = Path(__file__).parent / "companions"
COMPANION_TIMEOUT_S = 600.0
FOOTPRINT_SOURCE = ("RSS the tool's companion (a fresh process of the tool's own runtime, on the device) added "
                    "loading the model, its first inference and 5 more (at its peak)")
READERS: dict[str, Callable[[bytes], tuple[list[InputSpec], list[InputSpec]]]] = {"onnx": graph_io,
                                                                                    "tflite": model_io}


def plan(tool: BenchmarkTool, model_path: Path, batch_size: int, input_shapes: Mapping[str, tuple[int, ...]],
         python: str | None = None) -> CheckIO | str:
    """The check's inputs and outputs for ``tool`` running the model file, or why the check is skipped. The
    shapes follow the request as an in-process backend's do; a request the model cannot take is refused.
    ``python``: the interpreter of the tool's console script, which a tool with a COMPANION needs."""
    unavailable = tool.check_unavailable()
    if unavailable:
        return unavailable
    if tool.COMPANION and not python:
        return (f"{PurePosixPath(tool.executable_path).name} is not a Python console script (a native build?): it "
                "writes no outputs, and no interpreter of its runtime is at hand to compute them")
    try:
        inputs, outputs = READERS[tool.model_format](model_path.read_bytes())
    except InvalidInput as exc:
        return f"the model's inputs and outputs could not be read from its bytes ({exc})"
    if any(spec.dtype != "float32" for spec in inputs):
        return "the model takes inputs that are not float32 (a quantised model's int8 inputs)"
    shapes = resolve_input_shapes(inputs, batch_size, input_shapes)
    return CheckIO(tuple(replace(spec, dims=shapes[spec.name]) for spec in inputs), tuple(outputs),
                   suffix=tool.OUTPUTS, resized=any(None in spec.dims for spec in inputs), python=python or "")


def write_inputs(check: CheckIO, folder: Path) -> list[tuple[Path, str]]:
    """The check's input files, written under ``folder``: (local file, its path on the device) each, as raw
    little-endian float32 in C order (what both tools load)."""
    files = []
    for k, spec in enumerate(check.inputs):
        local = folder / f"check-input-{k}.bin"
        local.write_bytes(output_check.check_input(spec.dims, k).astype("<f4").tobytes())
        files.append((local, check.input_path(k)))
    return files


def split_raw(data: bytes, outputs: tuple[InputSpec, ...]) -> dict[str, np.ndarray]:
    """Outputs written back to back as raw bytes, in the model's order (``benchmark_model``). One output with
    a dynamic dim takes the bytes the others leave; anything else that does not add up is refused."""
    sizes = []
    for spec in outputs:
        if spec.dtype in ("string", "int4") or spec.dtype.startswith("tflite-type"):
            raise ToolOutputError(f"output {spec.name!r} is of type {spec.dtype}, which the check does not read")
        itemsize = np.dtype(spec.dtype).itemsize
        sizes.append(None if None in spec.dims else math.prod(spec.dims) * itemsize)
    unknown = [k for k, size in enumerate(sizes) if size is None]
    if len(unknown) == 1:
        sizes[unknown[0]] = len(data) - sum(s for s in sizes if s is not None)
    if unknown and len(unknown) != 1 or sum(sizes) != len(data) or min(sizes, default=0) < 0:
        raise ToolOutputError(f"the outputs file holds {len(data)} bytes; the model's outputs "
                              f"{[(s.name, list(s.dims), s.dtype) for s in outputs]} do not add up to that")
    found, at = {}, 0
    for spec, size in zip(outputs, sizes, strict=True):
        array = np.frombuffer(data, dtype=np.dtype(spec.dtype).newbyteorder("<"), count=size // np.dtype(
            spec.dtype).itemsize, offset=at)
        found[spec.name] = array.reshape(spec.dims) if None not in spec.dims else array
        at += size
    return found


def sampled(tool: BenchmarkTool, data: bytes, check: CheckIO) -> list[tuple[str, list[int], list[float]]]:
    """The tool's outputs at the check's positions, as in-process backends return theirs."""
    return output_check.sample(tool.read_outputs(data, check))


def interpreter(transport: Transport, executable: str) -> str | None:
    """The interpreter named by a console script's shebang (``#!/opt/venv/bin/python3``), or None for a
    native executable: a Python tool's runtime is importable by it."""
    done = transport.run(f"head -c 256 {shlex.quote(executable)}", timeout_s=30)
    line = done.stdout.splitlines()[0] if done.returncode == 0 and done.stdout else ""
    return line[2:].strip() if line.startswith("#!") and "python" in line else None


def run_companion(transport: Transport, tool: BenchmarkTool, check: CheckIO, model: str, threads: int,
                  footprint: bool = False) -> tuple[str | None, int | None]:
    """Write the check's outputs to ``check.output_path`` with the tool's COMPANION, run on the device by the
    tool's own interpreter on the check's input files: (why it failed, or None; with ``footprint``, the
    model's memory footprint the companion measured, or None)."""
    script = f"{check.folder}/{tool.COMPANION}"
    transport.push(COMPANIONS / tool.COMPANION, script)
    inputs = [f"--input={check.input_path(k)}:{','.join(map(str, spec.dims))}" for k, spec in enumerate(check.inputs)]
    argv = [script, "--model", model, "--output", check.output_path, *inputs, *tool.companion_args(threads),
            *(["--footprint"] if footprint else [])]
    done = transport.run(f"{check.python} {shlex.join(argv)}", timeout_s=COMPANION_TIMEOUT_S)
    if done.returncode != 0:
        tail = " | ".join(line.strip() for line in (done.stdout + done.stderr).strip().splitlines()[-3:])
        return f"{tool.COMPANION} ({check.python}) exited with status {done.returncode}: {tail or 'no output'}", None
    if not footprint:
        return None, None
    try:
        return None, int(json.loads(done.stdout.strip().splitlines()[-1])["footprint_bytes"])
    except (ValueError, KeyError, TypeError, IndexError):
        return None, None  # a kernel that keeps no /proc/self/status: no figure, as the tool gives none
