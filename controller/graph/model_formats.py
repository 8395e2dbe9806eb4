"""Model formats the controller sends to agents, one registry entry each: CG (+ identity) -> bytes.

A job names its format; the agent's backend must be able to run it (``BACKEND_FORMATS``). ONNX carries the
architecture's identity in its metadata (the replay backend reads it). TFLite goes through PyTorch: the CG
becomes a torch module and ``litert-torch`` converts it, in fp32, with dynamic-range int8 weights, or fully
in int8 (PT2E quantisation, per-channel symmetric); the Edge TPU format compiles the full-integer model
with Coral's ``edgetpu_compiler``. Converters load lazily: a controller that only sends ONNX never imports
``litert_torch``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import shutil
import subprocess
import tempfile
import threading
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from hwnas.controller.graph.backend_formats import BACKEND_FORMATS
from hwnas.controller.graph.ir import ComputationGraph
from hwnas.controller.graph.onnx_export import to_onnx_bytes

Metadata = Mapping[str, str]


def identity(space: str, arch: str, arch_id: str) -> dict[str, str]:
    """The metadata every exported model carries: which architecture it is (the replay backend reads it)."""
    return {"hwnas.space": space, "hwnas.arch": arch, "hwnas.arch_id": arch_id}


@dataclass(frozen=True)
class ModelFormat:
    name: str
    wire_format: str  # UploadHeader.format: "onnx" or "tflite"
    export: Callable[[ComputationGraph, Metadata], bytes]
    summary: str
    missing: Callable[[], str | None] = lambda: None  # why this host cannot export the format, if it cannot


class FormatUnavailable(RuntimeError):
    """The converter this format needs is not installed."""


def _onnx(graph: ComputationGraph, metadata: Metadata) -> bytes:
    return to_onnx_bytes(graph, metadata=metadata)


# Loggers that warn while litert-torch imports, about nothing a user can act on: torchao's optional CUDA
# kernels that a CPU host cannot load, and torch's deprecation of an Enum registration torchao makes.
_IMPORT_NOISE = ("torchao", "torch.utils._pytree")


@contextlib.contextmanager
def _quiet(logger_names: tuple[str, ...]):
    loggers = [logging.getLogger(name) for name in logger_names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _litert_torch():
    # The converter's C++ logs an INFO line per model; a campaign converting thousands keeps WARNING and up.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        with _quiet(_IMPORT_NOISE):
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

    from hwnas.controller.graph.torch_module import to_torch

    litert_torch = _litert_torch()
    module = to_torch(graph)
    sample = tuple(torch.zeros(shape) for shape in graph.input_shapes)
    with _converting():
        return litert_torch.convert(module, sample).model_content()


def _quantized(graph: ComputationGraph, dynamic: bool) -> bytes:
    """PT2E int8, per-channel symmetric weights, converted by litert-torch.

    ``dynamic``: int8 weights, float activations quantised on the fly by the kernels. Otherwise full
    integer: activations too, with ranges calibrated on seeded random inputs (timing needs representative
    ranges, not accurate ones), and int8 inputs and outputs, as the Edge TPU compiler requires.
    """
    import torch

    from hwnas.controller.graph.torch_module import to_torch

    litert_torch = _litert_torch()
    from litert_torch.quantize import pt2e_quantizer, quant_config
    from torchao.quantization.pt2e import quantize_pt2e

    sample = tuple(torch.zeros(shape) for shape in graph.input_shapes)
    quantizer = pt2e_quantizer.PT2EQuantizer().set_global(
        pt2e_quantizer.get_symmetric_quantization_config(is_per_channel=True, is_dynamic=dynamic))
    generator = torch.Generator().manual_seed(0)
    calibration = [sample] if dynamic else [
        tuple(torch.randn(shape, generator=generator) for shape in graph.input_shapes)
        for _ in range(CALIBRATION_BATCHES)]
    with _converting():
        prepared = quantize_pt2e.prepare_pt2e(torch.export.export(to_torch(graph), sample).module(), quantizer)
        for batch in calibration:
            prepared(*batch)
        quantized = quantize_pt2e.convert_pt2e(prepared, fold_quantize=False)
        # Exported from an eval-mode module, the graph computes inference; the flag litert-torch reads (and
        # warns about on every conversion) is a fresh GraphModule's default.
        for module in quantized.modules():
            module.training = False
        return litert_torch.convert(quantized, sample,
                                    quant_config=quant_config.QuantConfig(pt2e_quantizer=quantizer)).model_content()


def _no_litert_torch() -> str | None:
    if importlib.util.find_spec("litert_torch") is None:
        return "TFLite export needs litert-torch: pip install 'hwnas[tflite]'"
    return None


def _no_edgetpu_compiler() -> str | None:
    if shutil.which("edgetpu_compiler") is None:
        return ("edgetpu_compiler is not on PATH; install it from Coral's apt repository (x86-64 Linux): see "
                "docs/devices.md")
    return None


def _edgetpu(graph: ComputationGraph, metadata: Metadata) -> bytes:
    """Full-integer TFLite compiled by Coral's ``edgetpu_compiler`` (x86-64 Linux, from Coral's apt repository)."""
    reason = _no_edgetpu_compiler()
    if reason:
        raise FormatUnavailable(reason)
    compiler = shutil.which("edgetpu_compiler")
    with tempfile.TemporaryDirectory(prefix="hwnas-edgetpu-") as tmp:
        source = Path(tmp) / "model.tflite"
        source.write_bytes(_quantized(graph, dynamic=False))
        done = subprocess.run([compiler, "--out_dir", tmp, str(source)], capture_output=True, text=True, timeout=600)
        compiled = Path(tmp) / "model_edgetpu.tflite"
        if done.returncode != 0 or not compiled.exists():
            raise ValueError(f"edgetpu_compiler failed: {(done.stderr or done.stdout).strip()[-500:]}")
        return compiled.read_bytes()


CALIBRATION_BATCHES = 8

FORMATS: dict[str, ModelFormat] = {f.name: f for f in (
    ModelFormat("onnx", "onnx", _onnx, "ONNX opset 20, seeded random weights, identity in metadata_props"),
    ModelFormat("tflite", "tflite", _tflite, "TFLite fp32 via litert-torch", _no_litert_torch),
    ModelFormat("tflite-int8", "tflite", lambda g, m: _quantized(g, dynamic=True),
                "TFLite with dynamic-range int8 weights via litert-torch", _no_litert_torch),
    ModelFormat("tflite-int8-full", "tflite", lambda g, m: _quantized(g, dynamic=False),
                "TFLite with int8 weights, activations, inputs and outputs (calibrated on random inputs)",
                _no_litert_torch),
    ModelFormat("edgetpu", "tflite", _edgetpu, "tflite-int8-full compiled by edgetpu_compiler",
                lambda: _no_litert_torch() or _no_edgetpu_compiler()),
)}

def model_format(name: str) -> ModelFormat:
    try:
        return FORMATS[name]
    except KeyError:
        raise ValueError(f"unknown model format {name!r}; known: {sorted(FORMATS)}") from None


def check_exportable(name: str) -> None:
    """Refuse, before any job is queued, a format this controller cannot produce (a converter is missing)."""
    reason = model_format(name).missing()
    if reason:
        raise FormatUnavailable(reason)


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
