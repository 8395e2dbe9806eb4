"""Separate an ONNX model's structure from its weights.

Hundreds of MB of weights (VGG-16: 550 MB) make copying, checking and shape
inference slow, while structure only needs their shapes and dtypes.
"""

from __future__ import annotations

import math

import numpy as np
import onnx
from onnx import numpy_helper

LARGE_TENSOR = 4096  # elements; bigger initializers are weights, needed for their shape only


def split_weights(model: onnx.ModelProto, values: bool = True) -> tuple[dict[str, np.ndarray], onnx.ModelProto]:
    """Initializer values (large ones as zero-stride views of the right shape) and a weight-free copy.

    Copying and shape-inferring hundreds of MB of weights (VGG-16: 550 MB) is what made imports slow; in
    the skeleton each large initializer becomes a typed graph input, which is all shape inference needs.
    ``values=False`` skips decoding the small initializers (a structure check needs none).
    """
    consts: dict[str, np.ndarray] = {}
    skeleton = onnx.ModelProto(ir_version=model.ir_version)
    skeleton.opset_import.extend(model.opset_import)
    graph = skeleton.graph
    graph.name = model.graph.name
    graph.node.extend(model.graph.node)
    graph.input.extend(model.graph.input)
    graph.output.extend(model.graph.output)
    declared = {value.name for value in model.graph.input}
    for init in model.graph.initializer:
        dims = tuple(init.dims)
        if math.prod(dims) > LARGE_TENSOR:
            dtype = onnx.helper.tensor_dtype_to_np_dtype(init.data_type)
            if values:
                consts[init.name] = np.broadcast_to(np.zeros((), dtype), dims)
            if init.name not in declared:
                graph.input.append(onnx.helper.make_tensor_value_info(init.name, init.data_type, dims))
        else:
            if values:
                consts[init.name] = numpy_helper.to_array(init)
            graph.initializer.append(init)
    return consts, skeleton
