"""One model on one agent, outside the queue (``Fleet.profile``: ``hwnas profile``, the demo's first step).

The backend is the one asked for or the best the agent runs for the model's format; when it runs another
format, the ONNX model is converted on the controller (ONNX -> CG -> e.g. TFLite) as campaigns convert their
candidates; the model is uploaded only if the agent lacks it, then profiled as the ``ProfileSpec`` says,
and its outputs checked against onnxruntime at fp32 when the spec asks (an ONNX file is its own reference).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from hwnas.controller.fleet.client import AgentClient, ProfileRecord, ProfileSpec
from hwnas.controller.fleet.output_check import OutputCheck, verdict
from hwnas.controller.graph.model_formats import BACKEND_FORMATS, check_exportable, format_for, model_format
from hwnas.protos.hwnas.v1.agent_pb2 import DeviceInfo


@dataclass(frozen=True)
class Profiled:
    """What profiling a file did: the agent's record, whether the model was uploaded, the format sent, and
    the output check's verdict where the spec asked for one."""

    record: ProfileRecord
    uploaded: bool
    model_format: str
    converted: bool
    check: OutputCheck | None = None


def file_format(path: Path) -> str:
    return "tflite" if path.suffix == ".tflite" else "onnx"


def choose_backend(requested: str | None, enabled: list[str], own_format: str) -> str:
    """The backend to profile on: the one asked for, else onnxruntime for ONNX if enabled, else what runs the
    file's format, else the agent's first backend (a LiteRT-only Raspberry Pi gets litert)."""
    if requested:
        return requested
    if own_format == "onnx" and "onnxruntime" in enabled:
        return "onnxruntime"
    for name in enabled:
        if any(fmt == own_format or fmt.startswith(own_format) for fmt in BACKEND_FORMATS.get(name, ())):
            return name
    if not enabled:
        raise ValueError("the agent reports no enabled backend")
    return enabled[0]


def model_for(data: bytes, own: str, backend: str, requested_format: str | None,
              input_shape: tuple[int, ...] | None) -> tuple[bytes, str, str]:
    """(bytes, wire format, model format) to send: the model as is when the backend runs its format ``own``,
    else the ONNX model converted on the controller."""
    wanted = format_for(backend, requested_format)
    if wanted == own:
        return data, own, own
    if own != "onnx":
        raise ValueError(f"backend {backend!r} runs {wanted}; only ONNX models can be converted (this is {own})")
    check_exportable(wanted)
    from hwnas.controller.graph.onnx_import import from_onnx

    graph = from_onnx(data, input_shape=input_shape)
    return model_format(wanted).export(graph, {}), model_format(wanted).wire_format, wanted


def profile_model(client: AgentClient, info: DeviceInfo, data: bytes, own_format: str, spec: ProfileSpec,
                  backend: str | None = None, requested_format: str | None = None) -> Profiled:
    """Profile the model (bytes in ``own_format``) on the client's agent, whose ``DeviceInfo`` is ``info``;
    ``spec.backend`` is replaced by the backend chosen."""
    chosen = choose_backend(backend, list(info.backends), own_format)
    shape = next(iter(spec.input_shapes.values()), None)
    sent, wire, fmt = model_for(data, own_format, chosen, requested_format, shape)
    sha, uploaded = client.ensure_model(sent, wire)
    record = client.profile(sha, dataclasses.replace(spec, backend=chosen))
    check = checked_output(data, own_format, record, fmt) if spec.output_check else None
    return Profiled(record, uploaded, fmt, fmt != own_format, check)


def checked_output(data: bytes, own_format: str, record: ProfileRecord, sent_format: str) -> OutputCheck:
    """The device's outputs against onnxruntime at fp32 on the check's input; the reference runs ONNX."""
    if own_format != "onnx":
        return OutputCheck("skipped", detail="the reference runs ONNX files; this one is not")
    shapes = [shape["dims"] for shape in record.result["input_shapes"]]
    return verdict(record.result["outputs"], data, shapes, sent_format)
