"""ONNX -> CG for ordinary CNNs (torchvision-style classifiers, super-resolution nets).

A CG describes computation, not trained values; ``import_onnx`` also hands
back the network's learnt values under the names the CG's ONNX export gives
them (``n7.weight``), so that export can compute what the original computed
(the round trip the corpus tests check). Other initializers and Constant
nodes are read only where they carry structure (Clip bounds, Reshape targets,
Resize scales). Shapes come from ONNX shape inference after the input's shape is
fixed, and every imported node's shape is checked against it.

Patterns folded back into single CG ops: ``x * sigmoid(x)`` -> silu,
``x * hardsigmoid(x)`` -> hardswish, ``Clip(0, 6)`` -> relu6, ``MatMul + Add(bias)`` -> linear, ``ReduceMean`` over
H and W -> global_avgpool, a product with a learnt tensor -> scale, older
opsets' decomposed LayerNorm and GELU -> layernorm, gelu (``onnx_patterns``).
``Shape`` of a tensor is a constant once the input's shape is fixed, so the
arithmetic exporters build on it (``x.chunk``'s split points) folds away. A
Slice or Split of any axis but the batch becomes slices (``channel_slice``
where it keeps the first channels). Any op outside the IR is reported by name
(with a count) in one error; nothing is ever dropped silently.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper, shape_inference

from hwnas.controller.graph import onnx_layout_ops as layout
from hwnas.controller.graph import onnx_ops as ops
from hwnas.controller.graph import onnx_patterns
from hwnas.controller.graph.builder import GraphBuilder
from hwnas.controller.graph.ir import ComputationGraph
from hwnas.controller.graph.onnx_context import Handler, ImportContext, attrs
from hwnas.controller.graph.onnx_reading import GROWING, MAX_FOLDED_ELEMENTS, evaluate_constant, foldable, load_model
from hwnas.controller.graph.onnx_weights import split_weights


class UnsupportedOpsError(ValueError):
    """The model uses ops the CG IR does not represent; ``ops`` counts them by name."""

    def __init__(self, counts: Counter[str]) -> None:
        self.ops = counts
        listed = ", ".join(f"{name} x{n}" for name, n in sorted(counts.items()))
        super().__init__(f"unsupported ONNX ops: {listed}")


HANDLERS: dict[str, Handler] = {
    "Conv": ops.conv,
    "ConvTranspose": ops.conv_transpose,
    "PRelu": ops.prelu,
    "BatchNormalization": ops.batchnorm,
    "Relu": ops.unary("relu"),
    "Clip": ops.clip,
    "HardSwish": ops.unary("hardswish"),
    "HardSigmoid": ops.hardsigmoid,
    "Sigmoid": ops.unary("sigmoid"),
    "Gelu": ops.unary("gelu"),
    "Identity": ops.unary("identity"),
    "Dropout": ops.unary("identity"),
    "Add": ops.binary("add"),
    "Mul": ops.binary("mul"),
    "Concat": ops.concat,
    "AveragePool": ops.pool("avgpool"),
    "MaxPool": ops.pool("maxpool"),
    "GlobalAveragePool": ops.unary("global_avgpool"),
    "ReduceMean": layout.reduce_mean,
    "Gemm": ops.gemm,
    "MatMul": ops.matmul,
    "Flatten": layout.flatten,
    "Reshape": layout.reshape,
    "Transpose": layout.transpose,
    "Slice": layout.slice,
    "Split": layout.split,
    "Softmax": ops.softmax,
    "Squeeze": layout.squeeze,
    "Unsqueeze": layout.squeeze,
    "Gather": layout.gather,
    "Div": ops.div,
    "LayerNormalization": ops.layer_norm,
    "Resize": layout.resize,
    "Upsample": layout.resize,
    "DepthToSpace": layout.depth_to_space,
}



def _input_shapes(graph: onnx.GraphProto, given: Sequence[int] | None) -> list[tuple[str, tuple[int, ...]]]:
    """(name, shape) of every input the model takes, in its order; ``given`` fixes a single input's shape."""
    inits = {i.name for i in graph.initializer}
    inputs = [i for i in graph.input if i.name not in inits]
    if not inputs:
        raise ValueError("the model takes no input")
    if len(inputs) > 1 and given is not None:
        raise ValueError(f"an input shape fixes a single input; this model takes {[i.name for i in inputs]}, which "
                         "must declare fixed shapes")
    return [_input_shape(value, given) for value in inputs]


def _input_shape(value: onnx.ValueInfoProto, given: Sequence[int] | None) -> tuple[str, tuple[int, ...]]:
    declared = value.type.tensor_type.shape.dim
    negative = [d.dim_value for d in declared if d.HasField("dim_value") and d.dim_value < 0]
    if negative:
        raise ValueError(f"input {value.name!r} declares negative dims {negative}: not a valid ONNX shape")
    dims = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in declared]
    if given is not None:
        given = tuple(int(d) for d in given)
        if any(g <= 0 for g in given):
            raise ValueError(f"the input shape {list(given)} must be positive dims (e.g. 1,3,224,224)")
        if len(given) != len(dims) or any(d is not None and d != g for d, g in zip(dims, given, strict=False)):
            raise ValueError(f"input {value.name!r} has shape {['?' if d is None else d for d in dims]}; "
                             f"the given input shape {list(given)} does not fit it")
        return value.name, given
    if any(d is None for d in dims):
        raise ValueError(f"input {value.name!r} has dynamic dims {['?' if d is None else d for d in dims]}; "
                         "give an input shape (e.g. 1,3,224,224)")
    return value.name, tuple(dims)  # type: ignore[arg-type]


@dataclass(frozen=True)
class ImportedNetwork:
    graph: ComputationGraph
    # the original's learnt values under the names the CG's ONNX export gives them ("n7.weight", "n7.bias"):
    # ``to_onnx_bytes(graph, weights=...)`` then computes what the original computed
    weights: dict[str, np.ndarray]


def from_onnx(model: onnx.ModelProto | bytes | str | Path,
              input_shape: Sequence[int] | None = None) -> ComputationGraph:
    """Import a network; raises UnsupportedOpsError naming every op the IR lacks."""
    return _import(model, input_shape)[0]


def import_onnx(model: onnx.ModelProto | bytes | str | Path,
                input_shape: Sequence[int] | None = None) -> ImportedNetwork:
    """Import a network and keep its learnt values; raises UnsupportedOpsError naming every op the IR lacks."""
    graph, positions, ctx = _import(model, input_shape)
    weights = {f"n{positions[index]}.{key}": np.asarray(value(), dtype=np.float32)
               for index, values in ctx.weights.items() if index in positions for key, value in values.items()}
    return ImportedNetwork(graph, weights)


def _import(model: onnx.ModelProto | bytes | str | Path,
            input_shape: Sequence[int] | None) -> tuple[ComputationGraph, dict[int, int], ImportContext]:
    model = load_model(model)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 17)
    newest = onnx.defs.onnx_opset_version()
    if not 1 <= opset <= newest:
        raise ValueError(f"the model imports ONNX opset {opset}; this onnx knows opsets 1 to {newest} "
                         "(re-export it at a known opset)")
    inputs = dict(_input_shapes(model.graph, input_shape))
    consts, skeleton = split_weights(model)
    for value in skeleton.graph.input:
        if value.name in inputs:
            for dim, size in zip(value.type.tensor_type.shape.dim, inputs[value.name], strict=True):
                dim.Clear()
                dim.dim_value = size
    inferred = shape_inference.infer_shapes(skeleton, data_prop=True)
    shapes: dict[str, tuple[int, ...]] = dict(inputs)
    for value in [*inferred.graph.value_info, *inferred.graph.output]:
        dims = value.type.tensor_type.shape.dim
        if dims and all(d.HasField("dim_value") for d in dims):
            shapes[value.name] = tuple(d.dim_value for d in dims)
    for node in model.graph.node:
        if node.op_type == "Constant":
            consts[node.output[0]] = numpy_helper.to_array(attrs(node)["value"])

    names = list(inputs)
    builder = GraphBuilder(inputs[names[0]])
    nodes_of_inputs = {names[0]: builder.input, **{name: builder.add_input(inputs[name]) for name in names[1:]}}
    ctx = ImportContext(builder, consts, nodes_of_inputs, shapes,
               initializers={init.name: init for init in model.graph.initializer}, opset=opset)
    for node in onnx_patterns.fuse(model.graph.node, consts, {o.name for o in model.graph.output}):
        if node.op_type == "Constant":  # read above, or made by a pattern folded back (``onnx_patterns``)
            consts[node.output[0]] = numpy_helper.to_array(attrs(node)["value"])
            continue
        if node.op_type == "Shape" and node.input[0] in ctx.value_to_node:  # known once the input's is fixed
            a = attrs(node)
            dims = np.array(builder.shape(ctx.node_of(node.input[0])), dtype=np.int64)
            consts[node.output[0]] = dims[a.get("start", 0):a.get("end", len(dims))]
            continue
        if node.input and all(v in consts for v in node.input if v):
            if not foldable(node, consts):
                if node.op_type in HANDLERS or node.op_type in GROWING:
                    raise ValueError(f"{node.op_type} {node.name!r} computes a constant of more than "
                                     f"{MAX_FOLDED_ELEMENTS} elements (or of an unknown size); not imported")
                ctx.unsupported[node.op_type] += 1  # control flow (Loop, If, Scan) over constants
                continue
            # Exporters reshape or pass weights through small ops (Identity, Unsqueeze): fold them.
            for position, (name, value) in enumerate(zip(node.output, evaluate_constant(node, consts, opset),
                                                          strict=True)):
                consts[name] = value
                ctx.folded[name] = (node, position)
            continue
        handler = HANDLERS.get(node.op_type)
        if handler is None:
            ctx.unsupported[node.op_type] += 1
            continue
        if ctx.unsupported or any(v not in ctx.value_to_node and v not in consts for v in node.input if v):
            # After an unsupported op, keep scanning for other unsupported op types only.
            if not ctx.unsupported:
                missing = [v for v in node.input if v and v not in ctx.value_to_node and v not in consts]
                raise ValueError(f"node {node.name or node.op_type} reads {missing}, which nothing produces")
            continue
        made = handler(ctx, node, attrs(node))
        if made is None:
            continue
        for output, index in zip(node.output, made if isinstance(made, list) else [made], strict=True):
            ctx.value_to_node[output] = index
            expected = shapes.get(output)
            got = builder.shape(index)
            if expected is None:  # ONNX's inference stopped at bounds computed from a Shape; the CG's did not
                shapes[output] = got
            elif tuple(expected) != tuple(got):
                raise ValueError(f"{node.op_type} {node.name!r}: the CG infers {list(got)}, ONNX infers "
                                 f"{list(expected)}")
    if ctx.unsupported:
        raise UnsupportedOpsError(ctx.unsupported)
    graph, positions = builder.build_with_positions(*[ctx.node_of(o.name) for o in model.graph.output])
    return graph, positions, ctx
