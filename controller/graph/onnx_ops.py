"""ONNX ops that compute, as CG nodes: convolutions, pools, activations, element-wise arithmetic (with the
patterns folded back: x*sigmoid(x) -> silu, a product with a learnt tensor -> scale, MatMul + Add -> linear),
matrix products, softmax and LayerNorm."""

from __future__ import annotations

import numpy as np
import onnx

from hwnas.controller.graph.onnx_context import Handler, ImportContext, decode


def window(a: dict, rank: int = 2) -> dict:
    kernel = tuple(a["kernel_shape"])
    pads = tuple(a.get("pads", [0] * (2 * rank)))
    top, left, bottom, right = pads[0], pads[1], pads[2], pads[3]
    return dict(kernel=kernel, stride=tuple(a.get("strides", [1, 1])), padding=(top, left, bottom, right))


def auto_pad(node: onnx.NodeProto, a: dict, in_shape: tuple[int, ...]) -> dict:
    """Turn SAME_UPPER/SAME_LOWER into explicit pads (torch exports explicit pads; TF converters do not)."""
    mode = decode(a.get("auto_pad", "NOTSET"))
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



def conv(ctx: ImportContext, node, a) -> int | None:
    weight = ctx.consts.get(node.input[1])
    if weight is None or len(weight.shape) != 4:
        ctx.unsupported["Conv(non-constant or non-2D weight)"] += 1
        return None
    a = auto_pad(node, {**a, "kernel_shape": a.get("kernel_shape", list(weight.shape[2:]))},
                  ctx.shapes[node.input[0]])
    bias = node.input[2] if len(node.input) > 2 else ""
    return ctx.keep(ctx.builder.add_node(
        "conv", [ctx.node_of(node.input[0])], out_channels=int(weight.shape[0]), **window(a),
        dilation=tuple(a.get("dilations", [1, 1])), groups=int(a.get("group", 1)), bias=bool(bias),
    ), weight=ctx.lazy(node.input[1]), bias=ctx.lazy(bias))


def conv_transpose(ctx: ImportContext, node, a) -> int | None:
    weight = ctx.consts.get(node.input[1])
    if weight is None or len(weight.shape) != 4 or "output_shape" in a \
            or decode(a.get("auto_pad", "NOTSET")) != "NOTSET":
        ctx.unsupported["ConvTranspose(non-constant weight, output_shape or auto_pad)"] += 1
        return None
    groups = int(a.get("group", 1))
    a = {**a, "kernel_shape": a.get("kernel_shape", list(weight.shape[2:]))}
    bias = node.input[2] if len(node.input) > 2 else ""
    return ctx.keep(ctx.builder.add_node(
        "conv_transpose", [ctx.node_of(node.input[0])], out_channels=int(weight.shape[1]) * groups, **window(a),
        dilation=tuple(a.get("dilations", [1, 1])), groups=groups, bias=bool(bias),
        output_padding=tuple(a.get("output_padding", [0, 0])),
    ), weight=ctx.lazy(node.input[1]), bias=ctx.lazy(bias))


def prelu(ctx: ImportContext, node, a) -> int | None:
    slope = ctx.consts.get(node.input[1])
    channels = ctx.shapes[node.input[0]][1]
    if slope is None or slope.size not in (1, channels):
        ctx.unsupported["PRelu(non-constant or non-per-channel slope)"] += 1
        return None
    return ctx.keep(ctx.builder.add_node("prelu", [ctx.node_of(node.input[0])]),
                    slope=ctx.lazy(node.input[1], lambda v: np.broadcast_to(v.reshape(-1, 1, 1), (channels, 1, 1))))


def batchnorm(ctx: ImportContext, node, a) -> int | None:
    scale, bias, mean, var = (ctx.lazy(v) for v in node.input[1:5])
    return ctx.keep(ctx.builder.add_node("batchnorm", [ctx.node_of(node.input[0])]), scale=scale, bias=bias,
                    mean=mean, var=var, epsilon=a.get("epsilon", 1e-5))


def pool(kind: str) -> Handler:
    def handle(ctx: ImportContext, node, a) -> int | None:
        a = auto_pad(node, a, ctx.shapes[node.input[0]])
        if kind == "maxpool" and any(d != 1 for d in a.get("dilations", [1, 1])):
            ctx.unsupported["MaxPool(dilated)"] += 1
            return None
        extra = {"count_include_pad": bool(a.get("count_include_pad", 0))} if kind == "avgpool" else {}
        return ctx.builder.add_node(kind, [ctx.node_of(node.input[0])], **window(a),
                                    ceil_mode=bool(a.get("ceil_mode", 0)), **extra)

    return handle


def unary(op: str) -> Handler:
    return lambda ctx, node, a: ctx.builder.add_node(op, [ctx.node_of(node.input[0])])


def clip(ctx: ImportContext, node, a) -> int | None:
    lo = a.get("min", ctx.consts[node.input[1]].item() if len(node.input) > 1 and node.input[1] else None)
    hi = a.get("max", ctx.consts[node.input[2]].item() if len(node.input) > 2 and node.input[2] else None)
    if lo == 0 and hi == 6:
        return ctx.builder.add_node("relu6", [ctx.node_of(node.input[0])])
    if lo == 0 and hi is None:
        return ctx.builder.add_node("relu", [ctx.node_of(node.input[0])])
    ctx.unsupported[f"Clip(min={lo}, max={hi})"] += 1
    return None


def hardsigmoid(ctx: ImportContext, node, a) -> int | None:
    if abs(a.get("alpha", 0.2) - 1 / 6) > 1e-6 or abs(a.get("beta", 0.5) - 0.5) > 1e-6:
        ctx.unsupported[f"HardSigmoid(alpha={a.get('alpha', 0.2):g})"] += 1
        return None
    return ctx.builder.add_node("hardsigmoid", [ctx.node_of(node.input[0])])


SELF_GATED = {"sigmoid": "silu", "hardsigmoid": "hardswish"}


def binary(op: str) -> Handler:
    def handle(ctx: ImportContext, node, a) -> int | None:
        x, y = node.input[0], node.input[1]
        if ctx.is_const(x) or ctx.is_const(y):
            return fold_constant_operand(ctx, node, op)
        if op == "mul":  # x * sigmoid(x) is SiLU; x * hardsigmoid(x) hard-swish (as opsets before 14 write it)
            for gate, other in ((x, y), (y, x)):
                g = ctx.builder.node(ctx.node_of(gate))
                if g.op in SELF_GATED and g.inputs == (ctx.node_of(other),):
                    return ctx.builder.add_node(SELF_GATED[g.op], [ctx.node_of(other)])
        return ctx.builder.add_node(op, [ctx.node_of(x), ctx.node_of(y)])

    return handle


def fold_constant_operand(ctx: ImportContext, node, op: str) -> int | None:
    """Add of a constant right after a bias-less linear layer is that layer's bias; a product with a learnt
    tensor that does not grow the input is a scale (ConvNeXt's layer scale); anything else is refused."""
    tensor = node.input[1] if ctx.is_const(node.input[1]) else node.input[0]
    value = node.input[0] if tensor == node.input[1] else node.input[1]
    if value in ctx.value_to_node:
        producer = ctx.node_of(value)
        prev = ctx.builder.node(producer)
        constant = ctx.consts[tensor]
        if op == "add" and prev.op == "linear" and not prev.attrs["bias"] and constant.size == prev.out_shape[-1]:
            ctx.builder.set_attrs(producer, bias=True)
            return ctx.keep(producer, bias=ctx.lazy(tensor, lambda v: v.reshape(-1)))
        shape = tuple(int(d) for d in constant.shape)
        while shape and shape[0] == 1 and len(shape) > 1:
            shape = shape[1:]
        x = prev.out_shape
        if op == "mul" and constant.size == 1:  # a fixed factor: attention's 1/sqrt(d)
            return ctx.builder.add_node("scalar_mul", [producer], value=float(constant.reshape(-1)[0]))
        grows = len(shape) > len(x) - 1 or any(c not in (1, d) for c, d in zip(reversed(shape), reversed(x),
                                                                                 strict=False))
        if op in ("mul", "add") and not grows:  # a layer scale; a position embedding or attention bias
            kind, key = ("scale", "scale") if op == "mul" else ("bias", "bias")
            return ctx.keep(ctx.builder.add_node(kind, [producer], weight_shape=shape),
                            **{key: ctx.lazy(tensor, lambda v: v.reshape(shape))})
    ctx.unsupported[f"{node.op_type}(by a constant)"] += 1
    return None


def div(ctx: ImportContext, node, a) -> int | None:
    """x / c for a constant scalar c (BERT's scores / sqrt(d)) is a fixed factor 1/c."""
    divisor = ctx.consts.get(node.input[1])
    if node.input[0] not in ctx.value_to_node or divisor is None or divisor.size != 1 or not divisor.any():
        ctx.unsupported["Div(other than by a constant scalar)"] += 1
        return None
    return ctx.builder.add_node("scalar_mul", [ctx.node_of(node.input[0])],
                                value=float(np.float32(1.0 / divisor.reshape(-1)[0])))


def gemm(ctx: ImportContext, node, a) -> int | None:
    weight = ctx.consts.get(node.input[1])
    if weight is None or a.get("transA", 0) or a.get("alpha", 1.0) != 1.0:
        ctx.unsupported["Gemm(non-constant weight or transA/alpha)"] += 1
        return None
    out_features = weight.shape[0] if a.get("transB", 0) else weight.shape[1]
    bias = len(node.input) > 2 and bool(node.input[2]) and a.get("beta", 1.0) != 0
    beta = a.get("beta", 1.0)
    return ctx.keep(ctx.builder.add_node("linear", [ctx.node_of(node.input[0])], out_features=int(out_features),
                                         bias=bias),
                    weight=ctx.lazy(node.input[1], (lambda v: v) if a.get("transB", 0) else (lambda v: v.T)),
                    bias=ctx.lazy(node.input[2] if bias else "",  # the export's Gemm takes (out, in)
                                  lambda v: np.broadcast_to(v.reshape(-1) * beta, (int(out_features),))))


def matmul(ctx: ImportContext, node, a) -> int | None:
    """A product with a constant matrix is a linear layer over the last axis, at any rank."""
    if node.input[1] in ctx.value_to_node:
        return matmul_computed(ctx, node, a)
    weight = ctx.consts.get(node.input[1])
    if weight is None or weight.ndim != 2 or len(ctx.shapes[node.input[0]]) < 2:
        ctx.unsupported["MatMul(by a constant that is not a matrix)"] += 1
        return None
    rank = len(ctx.shapes[node.input[0]])  # exported as Gemm's (out, in) at rank 2, MatMul's (in, out) above
    return ctx.keep(ctx.builder.add_node("linear", [ctx.node_of(node.input[0])], out_features=int(weight.shape[1]),
                                         bias=False),
                    weight=ctx.lazy(node.input[1], (lambda v: v.T) if rank == 2 else (lambda v: v)))


def concat(ctx: ImportContext, node, a) -> int | None:
    """Along any axis but the batch (the channel axis needs no attribute); learnt tokens concatenated before
    a sequence (ViT's class token) are a prepend."""
    rank = max(ctx.consts[v].ndim if ctx.is_const(v) else len(ctx.builder.shape(ctx.node_of(v))) for v in node.input)
    axis = a.get("axis", 1) % rank
    constants = [v for v in node.input if ctx.is_const(v)]
    if constants:
        first = ctx.consts[node.input[0]] if ctx.is_const(node.input[0]) else None
        if len(node.input) == 2 and first is not None and axis == 1 and rank == 3 and \
                node.input[1] in ctx.value_to_node:
            tokens = first.shape[1]
            return ctx.keep(ctx.builder.add_node("prepend", [ctx.node_of(node.input[1])], tokens=int(tokens)),
                            tokens=ctx.lazy(node.input[0], lambda v: v[:1]))
        ctx.unsupported["Concat(with a constant other than tokens before a sequence)"] += 1
        return None
    if axis == 0:
        ctx.unsupported["Concat(axis 0, the batch)"] += 1
        return None
    return ctx.builder.add_node("concat", [ctx.node_of(v) for v in node.input], **({"axis": axis} if axis != 1 else {}))


def matmul_computed(ctx: ImportContext, node, a) -> int | None:
    """A product of two computed tensors: attention's q @ k^T and scores @ v."""
    return ctx.builder.add_node("matmul", [ctx.node_of(node.input[0]), ctx.node_of(node.input[1])])


def softmax(ctx: ImportContext, node, a) -> int | None:
    rank = len(ctx.shapes[node.input[0]])
    axis = a.get("axis", -1 if ctx.opset >= 13 else 1) % rank
    if axis != rank - 1:
        ctx.unsupported[f"Softmax(axis={a.get('axis')}, not the last)"] += 1
        return None
    return ctx.builder.add_node("softmax", [ctx.node_of(node.input[0])])



def layer_norm(ctx: ImportContext, node, a) -> int | None:
    """LayerNormalization over the last axis with a learnt scale (and bias); CG's layernorm has both."""
    rank = len(ctx.shapes[node.input[0]])
    if a.get("axis", -1) % rank != rank - 1 or any(v and v not in ctx.consts for v in node.input[1:]):
        ctx.unsupported[f"LayerNormalization(axis={a.get('axis', -1)} or computed scale)"] += 1
        return None
    bias = node.input[2] if len(node.input) > 2 else ""
    return ctx.keep(ctx.builder.add_node("layernorm", [ctx.node_of(node.input[0])]), scale=ctx.lazy(node.input[1]),
                    bias=ctx.lazy(bias) or ctx.lazy(node.input[1], np.zeros_like), epsilon=a.get("epsilon", 1e-5))


