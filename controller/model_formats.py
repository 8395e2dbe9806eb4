"""Model formats the controller sends to agents, one registry entry each: CG (+ identity) -> bytes.

A job names its format; the agent's backend must be able to run it (``BACKEND_FORMATS``). ONNX carries the
architecture's identity in its metadata (the replay backend reads it). TFLite goes through PyTorch: the CG
becomes a torch module and ``litert-torch`` converts it, in fp32 or with dynamic-range int8 weights
(PT2E dynamic quantisation, per-channel symmetric). Converters load lazily: a controller that only sends
ONNX never imports ``litert_torch``.
"""

from __future__ import annotations

import contextlib
import os
import threading
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from controller.graph.ir import ComputationGraph
from controller.graph.onnx_export import to_onnx_bytes

Metadata = Mapping[str, str]


@dataclass(frozen=True)
class ModelFormat:
    name: str
    wire_format: str  # UploadHeader.format: "onnx" or "tflite"
    export: Callable[[ComputationGraph, Metadata], bytes]
    summary: str


class FormatUnavailable(RuntimeError):
    """The converter this format needs is not installed."""


def _onnx(graph: ComputationGraph, metadata: Metadata) -> bytes:
    return to_onnx_bytes(graph, metadata=metadata)


def _litert_torch():
    # The converter's C++ logs an INFO line per model; a campaign converting thousands keeps WARNING and up.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import litert_torch
    except ImportError as exc:
        raise FormatUnavailable(
            f"TFLite export needs litert-torch ({exc}); install it with: pip install 'hwnas[tflite]'") from None
    litert_torch.config.show_progress = False  # a progress tree per model would bury the campaign's bars
    return litert_torch


# torch.export and the converter keep global state; campaign workers convert one model at a time.
_CONVERT_LOCK = threading.Lock()


@contextlib.contextmanager
def _converting():
    """One conversion at a time, without the FutureWarnings torch.export raises on every model."""
    with _CONVERT_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        yield


def _tflite(graph: ComputationGraph, metadata: Metadata) -> bytes:
    import torch

    from controller.graph.torch_module import to_torch

    litert_torch = _litert_torch()
    module = to_torch(graph)
    sample = (torch.zeros(graph.input_shape),)
    with _converting():
        return litert_torch.convert(module, sample).model_content()


def _tflite_int8(graph: ComputationGraph, metadata: Metadata) -> bytes:
    """Dynamic-range int8: int8 weights, float activations quantised on the fly by the kernels."""
    import torch

    from controller.graph.torch_module import to_torch

    litert_torch = _litert_torch()
    from litert_torch.quantize import pt2e_quantizer, quant_config
    from torchao.quantization.pt2e import quantize_pt2e

    sample = (torch.zeros(graph.input_shape),)
    quantizer = pt2e_quantizer.PT2EQuantizer().set_global(
        pt2e_quantizer.get_symmetric_quantization_config(is_per_channel=True, is_dynamic=True))
    with _converting():
        exported = torch.export.export(to_torch(graph), sample).module()
        prepared = quantize_pt2e.prepare_pt2e(exported, quantizer)
        prepared(*sample)
        quantized = quantize_pt2e.convert_pt2e(prepared, fold_quantize=False)
        return litert_torch.convert(quantized, sample,
                                    quant_config=quant_config.QuantConfig(pt2e_quantizer=quantizer)).model_content()


FORMATS: dict[str, ModelFormat] = {f.name: f for f in (
    ModelFormat("onnx", "onnx", _onnx, "ONNX opset 20, seeded random weights, identity in metadata_props"),
    ModelFormat("tflite", "tflite", _tflite, "TFLite fp32 via litert-torch"),
    ModelFormat("tflite-int8", "tflite", _tflite_int8, "TFLite with dynamic-range int8 weights via litert-torch"),
)}

# What each agent backend runs; the first is the default when a plan names none.
BACKEND_FORMATS: dict[str, tuple[str, ...]] = {
    "onnxruntime": ("onnx",),
    "onnxruntime-cuda": ("onnx",),
    "torch": ("onnx",),
    "replay": ("onnx",),
    "simulator": ("onnx",),
    "instant": ("onnx",),
    "litert": ("tflite", "tflite-int8"),
}


def model_format(name: str) -> ModelFormat:
    try:
        return FORMATS[name]
    except KeyError:
        raise ValueError(f"unknown model format {name!r}; known: {sorted(FORMATS)}") from None


def format_for(backend: str, requested: str | None = None) -> str:
    """The format a job for ``backend`` sends: ``requested`` if that backend runs it, else its default.

    A backend this controller does not know (a lab's own) gets ONNX unless told otherwise.
    """
    accepted = BACKEND_FORMATS.get(backend)
    if requested is None:
        return accepted[0] if accepted else "onnx"
    model_format(requested)
    if accepted is not None and requested not in accepted:
        raise ValueError(f"backend {backend!r} runs {list(accepted)}, not {requested!r}")
    return requested
