"""Did the device compute the right answer? The agent's outputs against the controller's fp32 reference.

A delegate with a bug, a quantised model or a corrupted cache gives fast wrong answers that latency alone
never shows. With ``output_check`` the agent runs the model once on the seeded input of
``hwnas.protos.output_check`` and returns each output's values at the check's positions; here the same network's
ONNX runs in onnxruntime at fp32 on the same input, and the values must agree within the tolerance of the
format the device ran: fp32 formats to 1e-3 of the reference's largest magnitude (plus 1e-4), int8 ones to
a tenth of the reference's range. A mismatch is ``wrong_answer``; such records are stored and exported, and
left out of predictors and searches.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hwnas.protos import output_check

FP32_RELATIVE, FP32_ABSOLUTE = 1e-3, 1e-4
INT8_SHARE_OF_RANGE = 0.1
QUANTISED_FORMATS = ("tflite-int8", "tflite-int8-full", "edgetpu")
NO_OUTPUTS = "the agent returned no outputs (the record's warnings say why)"


@dataclass(frozen=True)
class OutputCheck:
    status: str  # ok | wrong_answer | skipped
    max_abs_error: float | None = None
    detail: str = ""


def reference(onnx_model: bytes, input_shapes: Sequence[Sequence[int]]) -> list[tuple[str, list[int], list[float]]]:
    """The network's outputs at the check's positions, from onnxruntime at fp32 on the check's input."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(onnx_model, options, providers=["CPUExecutionProvider"])
    feed = {arg.name: output_check.check_input(shape, k)
            for k, (arg, shape) in enumerate(zip(session.get_inputs(), input_shapes, strict=True))}
    names = [o.name for o in session.get_outputs()]
    return output_check.sample(dict(zip(names, session.run(names, feed), strict=True)))


def verdict(device: Sequence[Mapping[str, Any]], onnx_model: bytes, input_shapes: Sequence[Sequence[int]],
            model_format: str) -> OutputCheck:
    """The device's outputs against the reference of ``onnx_model`` at the record's input shapes; the
    reference runs only where the device returned outputs (a tool that writes none records no shapes)."""
    if not device:
        return OutputCheck("skipped", detail=NO_OUTPUTS)
    return compare(device, reference(onnx_model, input_shapes), model_format)


def compare(device: Sequence[Mapping[str, Any]], expected: Sequence[tuple[str, list[int], list[float]]],
            model_format: str) -> OutputCheck:
    """The device's outputs (``ProfileResult.outputs`` as dicts) against the reference, output by output."""
    if not device:
        return OutputCheck("skipped", detail=NO_OUTPUTS)
    if len(device) != len(expected):
        return OutputCheck("skipped", detail=f"{len(device)} outputs on the device, {len(expected)} in the reference")
    worst = 0.0
    for got, (name, dims, want) in zip(device, expected, strict=True):
        if int(np.prod(got["dims"])) != int(np.prod(dims)) or list(got["dims"]) != list(dims):
            return OutputCheck("skipped", detail=f"output {name}: dims {list(got['dims'])} on the device, {dims} in "
                                                 "the reference (another layout)")
        reference_values, values = np.asarray(want), np.asarray(got["values"], dtype=np.float64)
        if model_format in QUANTISED_FORMATS:
            allowed = INT8_SHARE_OF_RANGE * float(np.ptp(reference_values)) + FP32_ABSOLUTE
        else:
            allowed = FP32_RELATIVE * float(np.max(np.abs(reference_values), initial=0.0)) + FP32_ABSOLUTE
        error = float(np.max(np.abs(values - reference_values), initial=0.0)) if values.size else 0.0
        if not np.all(np.isfinite(values)):
            return OutputCheck("wrong_answer", None, f"output {name} holds NaN or inf")
        worst = max(worst, error)
        if error > allowed:
            return OutputCheck("wrong_answer", worst, f"output {name}: max abs error {error:.4g} > {allowed:.4g} "
                                                      f"allowed for {model_format}")
    return OutputCheck("ok", worst)
