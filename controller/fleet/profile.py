"""One model file on one agent (``hwnas profile``, the demo's first step).

The backend is the one asked for or the best the agent runs for the file's format; when it runs another
format, the ONNX file is converted on the controller (ONNX -> CG -> e.g. TFLite) as campaigns convert their
candidates; the model is uploaded only if the agent lacks it, then profiled as the ``ProfileSpec`` says.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from controller.fleet.client import AgentClient, ProfileRecord, ProfileSpec
from controller.graph.model_formats import BACKEND_FORMATS, check_exportable, format_for, model_format


@dataclass(frozen=True)
class Profiled:
    """What profiling a file did: the agent's record, whether the model was uploaded, the format sent."""

    record: ProfileRecord
    uploaded: bool
    model_format: str
    converted: bool


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


def model_for(path: Path, backend: str, requested_format: str | None,
              input_shape: tuple[int, ...] | None) -> tuple[bytes, str, str]:
    """(bytes, wire format, model format) to send: the file as is when the backend runs its format, else the
    ONNX file converted on the controller."""
    data = path.read_bytes()
    own = file_format(path)
    wanted = format_for(backend, requested_format)
    if wanted == own:
        return data, own, own
    if own != "onnx":
        raise ValueError(f"backend {backend!r} runs {wanted}; only ONNX files can be converted (this is {own})")
    check_exportable(wanted)
    from controller.graph.onnx_import import from_onnx

    graph = from_onnx(data, input_shape=input_shape)
    return model_format(wanted).export(graph, {}), model_format(wanted).wire_format, wanted


def profile_file(client: AgentClient, path: Path, spec: ProfileSpec, backend: str | None = None,
                 requested_format: str | None = None) -> Profiled:
    """Profile the file on the client's agent; ``spec.backend`` is replaced by the backend chosen."""
    chosen = choose_backend(backend, list(client.device_info().backends), file_format(path))
    shape = next(iter(spec.input_shapes.values()), None)
    data, wire, fmt = model_for(path, chosen, requested_format, shape)
    sha, uploaded = client.ensure_model(data, wire)
    record = client.profile(sha, dataclasses.replace(spec, backend=chosen))
    return Profiled(record, uploaded, fmt, fmt != file_format(path))
