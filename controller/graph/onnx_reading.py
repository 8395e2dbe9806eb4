"""Reading an ONNX file nobody vouches for: loading within protobuf's limits, and computing the constants an
exporter left as small ops (Identity, Unsqueeze on weights) only where their size is known and bounded."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from google.protobuf.message import DecodeError

MAX_MODEL_BYTES = 2 << 30  # protobuf's own limit for one message
MAX_FOLDED_ELEMENTS = 1 << 26  # a constant the import computes: 64 M elements (256 MB of float32)
# Ops whose output can be far larger than their inputs: folded only when the output size is known and bounded.
GROWING = {"ConstantOfShape", "Expand", "Tile", "Range"}


def load_model(model: onnx.ModelProto | bytes | str | Path) -> onnx.ModelProto:
    """The model, or ValueError saying why these bytes or this file are not one (external data included)."""
    if isinstance(model, onnx.ModelProto):
        return model
    size = len(model) if isinstance(model, bytes) else Path(model).stat().st_size
    if size > MAX_MODEL_BYTES:
        raise ValueError(f"the model is {size / 2**30:.1f} GiB; ONNX protobufs stop at 2 GiB (store the weights as "
                         "external data beside the model)")
    try:
        return onnx.load_from_string(model) if isinstance(model, bytes) else onnx.load(str(model))
    except DecodeError as exc:
        raise ValueError(f"not an ONNX model (garbage or truncated bytes): {exc}") from None
    except onnx.checker.ValidationError as exc:  # e.g. external data that points outside the model's folder
        raise ValueError(f"the model's external data is refused: {exc}") from None
    except MemoryError:
        raise ValueError(f"not enough memory to load a {size / 2**20:.0f} MB model") from None
    except OSError as exc:  # external data files that are missing or unreadable
        raise ValueError(f"cannot read the model or its external data: {exc}") from None


def foldable(node: onnx.NodeProto, consts: dict[str, np.ndarray]) -> bool:
    """Whether the import may compute this constant node now: no control flow, a bounded output size.

    A Loop of 10^9 iterations over constants (or a ConstantOfShape of 10^12 elements) must never run here.
    """
    if any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for a in node.attribute):
        return False
    if node.op_type not in GROWING:
        return True
    inputs = [consts[v] for v in node.input if v]
    try:
        if node.op_type == "ConstantOfShape":
            size = int(np.prod(inputs[0]))
        elif node.op_type == "Expand":
            size = int(np.prod(np.broadcast_shapes(inputs[0].shape, tuple(int(d) for d in inputs[1]))))
        elif node.op_type == "Tile":
            size = int(inputs[0].size * np.prod(inputs[1]))
        else:  # Range
            start, limit, delta = (float(np.asarray(v).reshape(-1)[0]) for v in inputs)
            size = int(np.ceil((limit - start) / delta)) if delta else -1
    except (ValueError, IndexError, OverflowError):
        return False
    return 0 <= size <= MAX_FOLDED_ELEMENTS


def evaluate_constant(node: onnx.NodeProto, consts: dict[str, np.ndarray], opset: int) -> list[np.ndarray]:
    from onnx.reference import ReferenceEvaluator

    evaluator = ReferenceEvaluator(node, opsets={"": opset})
    return list(evaluator.run(None, {v: consts[v] for v in node.input if v}))
