"""Which model formats each agent backend runs: a registry light enough for command-line help to list the
backends without loading the exporters (``model_formats`` builds on it)."""

from __future__ import annotations

# What each agent backend runs; the first is the default when a plan names none.
BACKEND_FORMATS: dict[str, tuple[str, ...]] = {
    "onnxruntime": ("onnx",),
    "onnxruntime-cuda": ("onnx",),
    "torch": ("onnx",),
    "replay": ("onnx",),
    "simulator": ("onnx",),
    "instant": ("onnx",),
    "openvino": ("onnx",),
    "litert": ("tflite", "tflite-int8", "tflite-int8-full"),
    "edgetpu": ("edgetpu",),
    # Vendor benchmark tools (device_agent.tools): LiteRT's benchmark_model runs TFLite, the others ONNX.
    "benchmark-model": ("tflite", "tflite-int8", "tflite-int8-full"),
    "trtexec": ("onnx",),
    "benchmark-app": ("onnx",),
}


def backend_names() -> str:
    """The backends, for help texts: ``onnxruntime, onnxruntime-cuda, torch, ...``."""
    return ", ".join(BACKEND_FORMATS)
