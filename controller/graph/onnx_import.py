"""ONNX -> CG for ordinary CNNs (torchvision-style classifiers, super-resolution nets).

Weights are not kept: a CG describes computation, not trained values.
Initializers and Constant nodes are read only where they carry structure
(Clip bounds, Reshape targets, Resize scales, a bias folded into a linear
layer). Shapes come from ONNX shape inference after the input's shape is
fixed, and every imported node's shape is checked against it.

Patterns folded back into single CG ops: ``x * sigmoid(x)`` -> silu,
``Clip(0, 6)`` -> relu6, ``MatMul + Add(bias)`` -> linear, ``ReduceMean`` over
H and W -> global_avgpool. Any op outside the IR is reported by name (with a
count) in one error; nothing is ever dropped silently.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper, shape_inference

from controller.graph.ir import ComputationGraph, GraphBuilder
from controller.graph.onnx_reading import GROWING, MAX_FOLDED_ELEMENTS, evaluate_constant, foldable, load_model
from controller.graph.onnx_weights import split_weights


class UnsupportedOpsError(ValueError):
    """The model uses ops the CG IR does not represent; ``ops`` counts them by name."""

    def __init__(self, ops: Counter[str]) -> None:
        self.ops = ops
        listed = ", ".join(f"{name} x{n}" for name, n in sorted(ops.items()))
        super().__init__(f"unsupported ONNX ops: {listed}")


@dataclass
class _Ctx:
    builder: GraphBuilder
    consts: dict[str, np.ndarray]
    value_to_node: dict[str, int]
    shapes: dict[str, tuple[int, ...]]
    unsupported: Counter[str] = field(default_factory=Counter)

    def node_of(self, value: str) -> int:
        return self.value_to_node[value]

    def is_const(self, value: str) -> bool:
        return value in self.consts


def _attrs(node: onnx.NodeProto) -> dict:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _decode(value):
    return value.decode() if isinstance(value, bytes) else value


def _window(a: dict, rank: int = 2) -> dict:
    kernel = tuple(a["kernel_shape"])
    pads = tuple(a.get("pads", [0] * (2 * rank)))
    top, left, bottom, right = pads[0], pads[1], pads[2], pads[3]
    return dict(kernel=kernel, stride=tuple(a.get("strides", [1, 1])), padding=(top, left, bottom, right))


def _auto_pad(node: onnx.NodeProto, a: dict, in_shape: tuple[int, ...]) -> dict:
    """Turn SAME_UPPER/SAME_LOWER into explicit pads (torch exports explicit pads; TF converters do not)."""
    mode = _decode(a.get("auto_pad", "NOTSET"))
    if mode in ("NOTSET", "VALID"):
        return a
    pads_begin, pads_end = [], []
    for axis, size in enumerate(in_shape[2:]):
        k, s = a["kernel_shape"][axis], a.get("strides", [1, 1])[axis]
        d = a.get("dilations", [1, 1])[axis]
        out = -(-size // s)
        total = max(0, (out - 1) * s + d * (k - 1) + 1 - size)
        small, large = total // 2, total - total // 2
        pads_begin.append(small if mode == "SAME_UPPER" else large)
        pads_end.append(large if mode == "SAME_UPPER" else small)
    return {**a, "pads": pads_begin + pads_end}


Handler = Callable[[_Ctx, onnx.NodeProto, dict], int | None]


def _conv(ctx: _Ctx, node, a) -> int | None:
    weight = ctx.consts.get(node.input[1])
    if weight is None or len(weight.shape) != 4:
        ctx.unsupported["Conv(non-constant or non-2D weight)"] += 1
        return None
    a = _auto_pad(node, {**a, "kernel_shape": a.get("kernel_shape", list(weight.shape[2:]))},
                  ctx.shapes[node.input[0]])
    return ctx.builder.add_node(
        "conv", [ctx.node_of(node.input[0])], out_channels=int(weight.shape[0]), **_window(a),
        dilation=tuple(a.get("dilations", [1, 1])), groups=int(a.get("group", 1)),
        bias=len(node.input) > 2 and bool(node.input[2]),
    )


def _conv_transpose(ctx: _Ctx, node, a) -> int | None:
    weight = ctx.consts.get(node.input[1])
    if weight is None or len(weight.shape) != 4 or "output_shape" in a \
            or _decode(a.get("auto_pad", "NOTSET")) != "NOTSET":
        ctx.unsupported["ConvTranspose(non-constant weight, output_shape or auto_pad)"] += 1
        return None
    groups = int(a.get("group", 1))
    a = {**a, "kernel_shape": a.get("kernel_shape", list(weight.shape[2:]))}
    return ctx.builder.add_node(
        "conv_transpose", [ctx.node_of(node.input[0])], out_channels=int(weight.shape[1]) * groups, **_window(a),
        dilation=tuple(a.get("dilations", [1, 1])), groups=groups, bias=len(node.input) > 2 and bool(node.input[2]),
        output_padding=tuple(a.get("output_padding", [0, 0])),
    )


def _prelu(ctx: _Ctx, node, a) -> int | None:
    slope = ctx.consts.get(node.input[1])
    channels = ctx.shapes[node.input[0]][1]
    if slope is None or slope.size not in (1, channels):
        ctx.unsupported["PRelu(non-constant or non-per-channel slope)"] += 1
        return None
    return ctx.builder.add_node("prelu", [ctx.node_of(node.input[0])])


def _pool(kind: str) -> Handler:
    def handle(ctx: _Ctx, node, a) -> int | None:
        a = _auto_pad(node, a, ctx.shapes[node.input[0]])
        if kind == "maxpool" and any(d != 1 for d in a.get("dilations", [1, 1])):
            ctx.unsupported["MaxPool(dilated)"] += 1
            return None
        extra = {"count_include_pad": bool(a.get("count_include_pad", 0))} if kind == "avgpool" else {}
        return ctx.builder.add_node(kind, [ctx.node_of(node.input[0])], **_window(a),
                                    ceil_mode=bool(a.get("ceil_mode", 0)), **extra)

    return handle


def _unary(op: str) -> Handler:
    return lambda ctx, node, a: ctx.builder.add_node(op, [ctx.node_of(node.input[0])])


def _clip(ctx: _Ctx, node, a) -> int | None:
    lo = a.get("min", ctx.consts[node.input[1]].item() if len(node.input) > 1 and node.input[1] else None)
    hi = a.get("max", ctx.consts[node.input[2]].item() if len(node.input) > 2 and node.input[2] else None)
    if lo == 0 and hi == 6:
        return ctx.builder.add_node("relu6", [ctx.node_of(node.input[0])])
    if lo == 0 and hi is None:
        return ctx.builder.add_node("relu", [ctx.node_of(node.input[0])])
    ctx.unsupported[f"Clip(min={lo}, max={hi})"] += 1
    return None


def _hardsigmoid(ctx: _Ctx, node, a) -> int | None:
    if abs(a.get("alpha", 0.2) - 1 / 6) > 1e-6 or abs(a.get("beta", 0.5) - 0.5) > 1e-6:
        ctx.unsupported[f"HardSigmoid(alpha={a.get('alpha', 0.2):g})"] += 1
        return None
    return ctx.builder.add_node("hardsigmoid", [ctx.node_of(node.input[0])])


def _binary(op: str) -> Handler:
    def handle(ctx: _Ctx, node, a) -> int | None:
        x, y = node.input[0], node.input[1]
        if ctx.is_const(x) or ctx.is_const(y):
            return _fold_constant_operand(ctx, node, op)
        if op == "mul":  # x * sigmoid(x) is SiLU
            for gate, other in ((x, y), (y, x)):
                g = ctx.builder.node(ctx.node_of(gate))
                if g.op == "sigmoid" and g.inputs == (ctx.node_of(other),):
                    return ctx.builder.add_node("silu", [ctx.node_of(other)])
        return ctx.builder.add_node(op, [ctx.node_of(x), ctx.node_of(y)])

    return handle


def _fold_constant_operand(ctx: _Ctx, node, op: str) -> int | None:
    """Add of a constant right after a bias-less linear layer is that layer's bias; anything else is refused."""
    tensor = node.input[1] if ctx.is_const(node.input[1]) else node.input[0]
    value = node.input[0] if tensor == node.input[1] else node.input[1]
    if value in ctx.value_to_node:
        producer = ctx.node_of(value)
        prev = ctx.builder.node(producer)
        if op == "add" and prev.op == "linear" and not prev.attrs["bias"] \
                and ctx.consts[tensor].size == prev.out_shape[1]:
            ctx.builder.set_attrs(producer, bias=True)
            return producer
    ctx.unsupported[f"{node.op_type}(by a constant)"] += 1
    return None


def _gemm(ctx: _Ctx, node, a) -> int | None:
    weight = ctx.consts.get(node.input[1])
    if weight is None or a.get("transA", 0) or a.get("alpha", 1.0) != 1.0:
        ctx.unsupported["Gemm(non-constant weight or transA/alpha)"] += 1
        return None
    out_features = weight.shape[0] if a.get("transB", 0) else weight.shape[1]
    bias = len(node.input) > 2 and bool(node.input[2]) and a.get("beta", 1.0) != 0
    return ctx.builder.add_node("linear", [ctx.node_of(node.input[0])], out_features=int(out_features), bias=bias)


def _matmul(ctx: _Ctx, node, a) -> int | None:
    weight = ctx.consts.get(node.input[1])
    if weight is None or weight.ndim != 2 or len(ctx.shapes[node.input[0]]) != 2:
        ctx.unsupported["MatMul(non-constant or batched)"] += 1
        return None
    return ctx.builder.add_node("linear", [ctx.node_of(node.input[0])], out_features=int(weight.shape[1]),
                                bias=False)


def _concat(ctx: _Ctx, node, a) -> int | None:
    rank = len(ctx.shapes[node.input[0]])
    if a.get("axis") not in (1, 1 - rank):
        ctx.unsupported[f"Concat(axis={a.get('axis')})"] += 1
        return None
    return ctx.builder.add_node("concat", [ctx.node_of(v) for v in node.input])


def _flatten(ctx: _Ctx, node, a) -> int | None:
    if a.get("axis", 1) != 1:
        ctx.unsupported[f"Flatten(axis={a.get('axis')})"] += 1
        return None
    return ctx.builder.add_node("flatten", [ctx.node_of(node.input[0])])


def _reshape(ctx: _Ctx, node, a) -> int | None:
    out = ctx.shapes.get(node.output[0])
    if node.input[1] not in ctx.consts or out is None:
        ctx.unsupported["Reshape(dynamic target)"] += 1
        return None
    src = ctx.node_of(node.input[0])
    if len(out) == 2 and out[1] == int(np.prod(ctx.shapes[node.input[0]][1:])):
        return ctx.builder.add_node("flatten", [src])  # torch's x.view(n, -1)
    return ctx.builder.add_node("reshape", [src], shape=tuple(out))


def _reduce_mean(ctx: _Ctx, node, a) -> int | None:
    axes = a.get("axes")
    if axes is None and len(node.input) > 1:
        axes = ctx.consts[node.input[1]].tolist()
    rank = len(ctx.shapes[node.input[0]])
    if sorted(x % rank for x in axes or []) != [2, 3]:
        ctx.unsupported[f"ReduceMean(axes={axes})"] += 1
        return None
    gap = ctx.builder.add_node("global_avgpool", [ctx.node_of(node.input[0])])
    return gap if a.get("keepdims", 1) else ctx.builder.add_node("flatten", [gap])


def _resize(ctx: _Ctx, node, a) -> int | None:
    in_shape, out_shape = ctx.shapes[node.input[0]], ctx.shapes.get(node.output[0])
    mode = _decode(a.get("mode", "nearest"))
    if out_shape is None or mode not in ("nearest", "linear") or len(in_shape) != 4:
        ctx.unsupported[f"{node.op_type}(mode={mode})"] += 1
        return None
    scale_h, scale_w = out_shape[2] / in_shape[2], out_shape[3] / in_shape[3]
    if scale_h != scale_w or not scale_h.is_integer() or out_shape[:2] != in_shape[:2]:
        ctx.unsupported[f"{node.op_type}(non-integer or anisotropic scale)"] += 1
        return None
    return ctx.builder.add_node("upsample", [ctx.node_of(node.input[0])], scale=int(scale_h),
                                mode="nearest" if mode == "nearest" else "bilinear")


def _slice(ctx: _Ctx, node, a) -> int | None:
    """A Slice keeping the first channels (axis 1, from 0, step 1); anything else is reported unsupported."""
    values = [ctx.consts.get(name) for name in node.input[1:]]
    if len(values) < 3 or any(v is None for v in values[:3]) or (len(values) > 3 and values[3] is None):
        ctx.unsupported["Slice(dynamic bounds)"] += 1
        return None
    starts, ends, axes = (np.asarray(v).ravel().tolist() for v in values[:3])
    steps = np.asarray(values[3]).ravel().tolist() if len(values) > 3 else [1]
    in_channels = ctx.shapes[node.input[0]][1]
    if axes not in ([1], [-3]) or starts != [0] or steps != [1]:
        ctx.unsupported["Slice(other than the first channels)"] += 1
        return None
    return ctx.builder.add_node("channel_slice", [ctx.node_of(node.input[0])], channels=min(ends[0], in_channels))


def _transpose(ctx: _Ctx, node, a) -> int | None:
    perm = [int(p) for p in a.get("perm", [])] or list(reversed(range(len(ctx.shapes[node.input[0]]))))
    if perm[0] != 0:
        ctx.unsupported["Transpose(moving the batch axis)"] += 1
        return None
    return ctx.builder.add_node("transpose", [ctx.node_of(node.input[0])], perm=tuple(perm))


def _depth_to_space(ctx: _Ctx, node, a) -> int | None:
    if _decode(a.get("mode", "DCR")) != "CRD":
        ctx.unsupported["DepthToSpace(mode=DCR)"] += 1
        return None
    return ctx.builder.add_node("pixel_shuffle", [ctx.node_of(node.input[0])], upscale=int(a["blocksize"]))


HANDLERS: dict[str, Handler] = {
    "Conv": _conv,
    "ConvTranspose": _conv_transpose,
    "PRelu": _prelu,
    "BatchNormalization": _unary("batchnorm"),
    "Relu": _unary("relu"),
    "Clip": _clip,
    "HardSwish": _unary("hardswish"),
    "HardSigmoid": _hardsigmoid,
    "Sigmoid": _unary("sigmoid"),
    "Gelu": _unary("gelu"),
    "Identity": _unary("identity"),
    "Dropout": _unary("identity"),
    "Add": _binary("add"),
    "Mul": _binary("mul"),
    "Concat": _concat,
    "AveragePool": _pool("avgpool"),
    "MaxPool": _pool("maxpool"),
    "GlobalAveragePool": _unary("global_avgpool"),
    "ReduceMean": _reduce_mean,
    "Gemm": _gemm,
    "MatMul": _matmul,
    "Flatten": _flatten,
    "Reshape": _reshape,
    "Transpose": _transpose,
    "Slice": _slice,
    "Resize": _resize,
    "Upsample": _resize,
    "DepthToSpace": _depth_to_space,
}


def _input_shape(graph: onnx.GraphProto, given: Sequence[int] | None) -> tuple[str, tuple[int, ...]]:
    inits = {i.name for i in graph.initializer}
    inputs = [i for i in graph.input if i.name not in inits]
    if len(inputs) != 1:
        raise ValueError(f"only single-input models import; this one has inputs {[i.name for i in inputs]}")
    value = inputs[0]
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


def from_onnx(model: onnx.ModelProto | bytes | str | Path,
              input_shape: Sequence[int] | None = None) -> ComputationGraph:
    """Import a CNN; raises UnsupportedOpsError naming every op the IR lacks."""
    model = load_model(model)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 17)
    newest = onnx.defs.onnx_opset_version()
    if not 1 <= opset <= newest:
        raise ValueError(f"the model imports ONNX opset {opset}; this onnx knows opsets 1 to {newest} "
                         "(re-export it at a known opset)")
    input_name, shape = _input_shape(model.graph, input_shape)
    consts, skeleton = split_weights(model)
    for value in skeleton.graph.input:
        if value.name == input_name:
            for dim, size in zip(value.type.tensor_type.shape.dim, shape, strict=True):
                dim.Clear()
                dim.dim_value = size
    inferred = shape_inference.infer_shapes(skeleton, data_prop=True)
    shapes: dict[str, tuple[int, ...]] = {input_name: shape}
    for value in [*inferred.graph.value_info, *inferred.graph.output]:
        dims = value.type.tensor_type.shape.dim
        if dims and all(d.HasField("dim_value") for d in dims):
            shapes[value.name] = tuple(d.dim_value for d in dims)
    for node in model.graph.node:
        if node.op_type == "Constant":
            consts[node.output[0]] = numpy_helper.to_array(_attrs(node)["value"])

    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 17)
    builder = GraphBuilder(shape)
    ctx = _Ctx(builder, consts, {input_name: builder.input}, shapes)
    for node in model.graph.node:
        if node.op_type == "Constant":
            continue
        if node.input and all(v in consts for v in node.input if v):
            if not foldable(node, consts):
                if node.op_type in HANDLERS or node.op_type in GROWING:
                    raise ValueError(f"{node.op_type} {node.name!r} computes a constant of more than "
                                     f"{MAX_FOLDED_ELEMENTS} elements (or of an unknown size); not imported")
                ctx.unsupported[node.op_type] += 1  # control flow (Loop, If, Scan) over constants
                continue
            # Exporters reshape or pass weights through small ops (Identity, Unsqueeze): fold them.
            for name, value in zip(node.output, evaluate_constant(node, consts, opset), strict=True):
                consts[name] = value
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
        index = handler(ctx, node, _attrs(node))
        if index is None:
            continue
        ctx.value_to_node[node.output[0]] = index
        expected = shapes.get(node.output[0])
        got = builder.shape(index)
        if expected is not None and tuple(expected) != tuple(got):
            raise ValueError(f"{node.op_type} {node.name!r}: the CG infers {list(got)}, ONNX infers {list(expected)}")
    if ctx.unsupported:
        raise UnsupportedOpsError(ctx.unsupported)
    outputs = [ctx.node_of(o.name) for o in model.graph.output]
    return builder.build(*outputs)
