"""How much memory an ONNX model's activations need at a batch size, before a runtime allocates them.

``--batch-size 100000`` on an NB-201 cell grew an agent to 22 GB and the kernel killed it mid-job. The
inputs alone were checked (an eighth of memory); the activations, hundreds of times larger, were not. The
estimate here reads the tensor shapes the model declares (graph inputs, outputs and ``value_info``; the
controller's export declares every CG tensor) and walks the nodes in their (topological) order, each tensor
held from the node that makes it to its last reader: the peak of that walk is what a memory planner that
frees each tensor after its last use holds at once. Runtimes reuse buffers as well as that, or a little
worse, and add workspace, so the estimate is a floor on what the run needs: a run it refuses would not fit.
Symbolic dimensions (``batch``) take the value the request gives the input that names them.

Read with hwnas's copy of the ONNX schema (``hwnas.protos.onnx_format``): no ``onnx`` package on the agent.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from hwnas.protos.onnx_format.onnx_ml_pb2 import ModelProto, TensorProto, ValueInfoProto

# ONNX element type -> bytes per element (the types models carry activations in).
_ELEMENT_BYTES = {TensorProto.FLOAT: 4, TensorProto.FLOAT16: 2, TensorProto.BFLOAT16: 2, TensorProto.DOUBLE: 8,
                  TensorProto.INT64: 8, TensorProto.INT32: 4, TensorProto.INT16: 2, TensorProto.INT8: 1,
                  TensorProto.UINT8: 1, TensorProto.BOOL: 1}
MIN_KNOWN_SHARE = 0.5  # below this share of node outputs with a known size the model says too little to judge


@dataclass(frozen=True)
class ActivationEstimate:
    peak_bytes: int  # the most bytes of activations (inputs included) held at once
    known_outputs: int  # node outputs whose size the model declares
    node_outputs: int


def _sizes(model: ModelProto, input_shapes: Mapping[str, tuple[int, ...]]) -> dict[str, int]:
    """Bytes of every tensor whose element type and every dimension are known."""
    symbols: dict[str, int] = {}
    for info in model.graph.input:  # a symbolic dim takes the size the request gives the input naming it
        given = input_shapes.get(info.name)
        dims = info.type.tensor_type.shape.dim
        if given is not None and len(given) == len(dims):
            symbols.update({d.dim_param: int(v) for d, v in zip(dims, given, strict=True) if d.dim_param})
    sizes = {}
    infos: list[ValueInfoProto] = [*model.graph.input, *model.graph.value_info, *model.graph.output]
    for info in infos:
        tensor = info.type.tensor_type
        per_element = _ELEMENT_BYTES.get(tensor.elem_type)
        if per_element is None or not tensor.HasField("shape"):
            continue
        if info.name in input_shapes:
            dims = list(input_shapes[info.name])
        else:
            dims = [d.dim_value if d.HasField("dim_value") else symbols.get(d.dim_param, -1) for d in tensor.shape.dim]
        if all(d >= 0 for d in dims):
            sizes[info.name] = per_element * math.prod(dims)
    return sizes


def estimate(model_path: Path, input_shapes: Mapping[str, tuple[int, ...]]) -> ActivationEstimate | None:
    """The peak of live activation bytes at ``input_shapes``; None when the model declares too few shapes."""
    model = ModelProto()
    try:
        model.ParseFromString(model_path.read_bytes())
    except Exception:  # not an ONNX protobuf: the runtime says so in its own words
        return None
    sizes = _sizes(model, input_shapes)
    weights = {t.name for t in model.graph.initializer}
    nodes = model.graph.node
    outputs = [name for node in nodes for name in node.output if name]
    known = sum(1 for name in outputs if name in sizes)
    if not outputs or known < MIN_KNOWN_SHARE * len(outputs):
        return None
    last_read: dict[str, int] = {}
    for index, node in enumerate(nodes):
        for name in node.input:
            last_read[name] = index
    kept = {info.name for info in model.graph.output}
    live = {info.name: sizes.get(info.name, 0) for info in model.graph.input if info.name not in weights}
    held, peak = sum(live.values()), 0
    for index, node in enumerate(nodes):
        for name in node.output:
            if name and name not in live:
                live[name] = sizes.get(name, 0)
                held += live[name]
        peak = max(peak, held)
        for name in set(node.input) | set(node.output):
            if name in live and name not in kept and last_read.get(name, -1) <= index:
                held -= live.pop(name)
    return ActivationEstimate(peak, known, len(outputs))
