"""What the agent knows of a model's input or output tensor, whoever read it: a runtime backend, or the
agent's own readers of ONNX and TFLite bytes (``onnx_metadata``, ``tflite_metadata``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class InputSpec:
    name: str
    dims: tuple[int | None, ...]  # None marks a dynamic dimension
    dtype: str  # numpy dtype name
