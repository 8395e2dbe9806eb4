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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper, shape_inference

from controller.graph import onnx_patterns
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
    initializers: dict[str, onnx.TensorProto] = field(default_factory=dict)
    folded: dict[str, tuple[onnx.NodeProto, int]] = field(default_factory=dict)  # constant -> (node, output)
    opset: int = 17
    # learnt values by builder node, under the suffixes the export names them by (weight, bias, scale, ...),
    # computed only when asked for (``import_onnx``): ``consts`` holds large weights as zero-stride stand-ins
    weights: dict[int, dict[str, Callable[[], np.ndarray]]] = field(default_factory=dict)

    def keep(self, index: int, **values: Callable[[], np.ndarray] | float | None) -> int:
        kept = self.weights.setdefault(index, {})
        for key, value in values.items():
            if value is not None:
                kept[key] = value if callable(value) else (lambda v=value: np.float32(v))
        return index

    def lazy(self, value: str, transform: Callable[[np.ndarray], np.ndarray] = lambda v: v
             ) -> Callable[[], np.ndarray] | None:
        """The real value of the constant ``value`` (transformed), computed when asked; None for no value."""
        return (lambda: transform(self.value(value))) if value else None

    def value(self, name: str) -> np.ndarray:
        """A constant's real value: decoded from its initializer, or recomputed from the real values of what
        it was folded from (an exporter's Identity or Unsqueeze on a weight)."""
        if name in self.initializers:
            return numpy_helper.to_array(self.initializers[name])
        if name in self.folded:
            node, position = self.folded[name]
            inputs = {v: self.value(v) for v in node.input if v}
            return evaluate_constant(node, inputs, self.opset)[position]
        return self.consts[name]

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


Handler = Callable[[_Ctx, onnx.NodeProto, dict], int | list[int] | None]  # a CG node per ONNX output


def _conv(ctx: _Ctx, node, a) -> int | None:
    weight = ctx.consts.get(node.input[1])
    if weight is None or len(weight.shape) != 4:
        ctx.unsupported["Conv(non-constant or non-2D weight)"] += 1
        return None
    a = _auto_pad(node, {**a, "kernel_shape": a.get("kernel_shape", list(weight.shape[2:]))},
                  ctx.shapes[node.input[0]])
    bias = node.input[2] if len(node.input) > 2 else ""
    return ctx.keep(ctx.builder.add_node(
        "conv", [ctx.node_of(node.input[0])], out_channels=int(weight.shape[0]), **_window(a),
        dilation=tuple(a.get("dilations", [1, 1])), groups=int(a.get("group", 1)), bias=bool(bias),
    ), weight=ctx.lazy(node.input[1]), bias=ctx.lazy(bias))


def _conv_transpose(ctx: _Ctx, node, a) -> int | None:
    weight = ctx.consts.get(node.input[1])
    if weight is None or len(weight.shape) != 4 or "output_shape" in a \
            or _decode(a.get("auto_pad", "NOTSET")) != "NOTSET":
        ctx.unsupported["ConvTranspose(non-constant weight, output_shape or auto_pad)"] += 1
        return None
    groups = int(a.get("group", 1))
    a = {**a, "kernel_shape": a.get("kernel_shape", list(weight.shape[2:]))}
    bias = node.input[2] if len(node.input) > 2 else ""
    return ctx.keep(ctx.builder.add_node(
        "conv_transpose", [ctx.node_of(node.input[0])], out_channels=int(weight.shape[1]) * groups, **_window(a),
        dilation=tuple(a.get("dilations", [1, 1])), groups=groups, bias=bool(bias),
        output_padding=tuple(a.get("output_padding", [0, 0])),
    ), weight=ctx.lazy(node.input[1]), bias=ctx.lazy(bias))


def _prelu(ctx: _Ctx, node, a) -> int | None:
    slope = ctx.consts.get(node.input[1])
    channels = ctx.shapes[node.input[0]][1]
    if slope is None or slope.size not in (1, channels):
        ctx.unsupported["PRelu(non-constant or non-per-channel slope)"] += 1
        return None
    return ctx.keep(ctx.builder.add_node("prelu", [ctx.node_of(node.input[0])]),
                    slope=ctx.lazy(node.input[1], lambda v: np.broadcast_to(v.reshape(-1, 1, 1), (channels, 1, 1))))


def _batchnorm(ctx: _Ctx, node, a) -> int | None:
    scale, bias, mean, var = (ctx.lazy(v) for v in node.input[1:5])
    return ctx.keep(ctx.builder.add_node("batchnorm", [ctx.node_of(node.input[0])]), scale=scale, bias=bias,
                    mean=mean, var=var, epsilon=a.get("epsilon", 1e-5))


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


_SELF_GATED = {"sigmoid": "silu", "hardsigmoid": "hardswish"}


def _binary(op: str) -> Handler:
    def handle(ctx: _Ctx, node, a) -> int | None:
        x, y = node.input[0], node.input[1]
        if ctx.is_const(x) or ctx.is_const(y):
            return _fold_constant_operand(ctx, node, op)
        if op == "mul":  # x * sigmoid(x) is SiLU; x * hardsigmoid(x) hard-swish (as opsets before 14 write it)
            for gate, other in ((x, y), (y, x)):
                g = ctx.builder.node(ctx.node_of(gate))
                if g.op in _SELF_GATED and g.inputs == (ctx.node_of(other),):
                    return ctx.builder.add_node(_SELF_GATED[g.op], [ctx.node_of(other)])
        return ctx.builder.add_node(op, [ctx.node_of(x), ctx.node_of(y)])

    return handle


def _fold_constant_operand(ctx: _Ctx, node, op: str) -> int | None:
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


def _div(ctx: _Ctx, node, a) -> int | None:
    """x / c for a constant scalar c (BERT's scores / sqrt(d)) is a fixed factor 1/c."""
    divisor = ctx.consts.get(node.input[1])
    if node.input[0] not in ctx.value_to_node or divisor is None or divisor.size != 1 or not divisor.any():
        ctx.unsupported["Div(other than by a constant scalar)"] += 1
        return None
    return ctx.builder.add_node("scalar_mul", [ctx.node_of(node.input[0])],
                                value=float(np.float32(1.0 / divisor.reshape(-1)[0])))


def _gemm(ctx: _Ctx, node, a) -> int | None:
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


def _matmul(ctx: _Ctx, node, a) -> int | None:
    """A product with a constant matrix is a linear layer over the last axis, at any rank."""
    if node.input[1] in ctx.value_to_node:
        return _matmul_computed(ctx, node, a)
    weight = ctx.consts.get(node.input[1])
    if weight is None or weight.ndim != 2 or len(ctx.shapes[node.input[0]]) < 2:
        ctx.unsupported["MatMul(by a constant that is not a matrix)"] += 1
        return None
    rank = len(ctx.shapes[node.input[0]])  # exported as Gemm's (out, in) at rank 2, MatMul's (in, out) above
    return ctx.keep(ctx.builder.add_node("linear", [ctx.node_of(node.input[0])], out_features=int(weight.shape[1]),
                                         bias=False),
                    weight=ctx.lazy(node.input[1], (lambda v: v.T) if rank == 2 else (lambda v: v)))


def _concat(ctx: _Ctx, node, a) -> int | None:
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


def _matmul_computed(ctx: _Ctx, node, a) -> int | None:
    """A product of two computed tensors: attention's q @ k^T and scores @ v."""
    return ctx.builder.add_node("matmul", [ctx.node_of(node.input[0]), ctx.node_of(node.input[1])])


def _softmax(ctx: _Ctx, node, a) -> int | None:
    rank = len(ctx.shapes[node.input[0]])
    axis = a.get("axis", -1 if ctx.opset >= 13 else 1) % rank
    if axis != rank - 1:
        ctx.unsupported[f"Softmax(axis={a.get('axis')}, not the last)"] += 1
        return None
    return ctx.builder.add_node("softmax", [ctx.node_of(node.input[0])])


def _squeeze(ctx: _Ctx, node, a) -> int | None:
    """Squeeze and Unsqueeze only rename the axes: a reshape that keeps the batch first."""
    x = ctx.node_of(node.input[0])
    shape = list(ctx.builder.shape(x))
    axes = a.get("axes")
    if axes is None and len(node.input) > 1 and node.input[1]:
        axes = ctx.consts[node.input[1]].reshape(-1).tolist()
    if node.op_type == "Squeeze":
        drop = {int(k) % len(shape) for k in axes} if axes is not None else {k for k, d in enumerate(shape) if d == 1}
        out = [d for k, d in enumerate(shape) if k not in drop]
    else:
        out = list(shape)
        rank = len(shape) + len(axes)
        for k in sorted(int(k) % rank for k in axes):
            out.insert(k, 1)
    if not out or out[0] != shape[0] or (node.op_type == "Squeeze" and 0 in drop):
        ctx.unsupported[f"{node.op_type}(of the batch axis)"] += 1
        return None
    return ctx.builder.reshape(x, out)


def _gather(ctx: _Ctx, node, a) -> int | None:
    """One position of an axis other than the batch (ViT's class token, x[:, 0]): a slice and a reshape."""
    index = ctx.consts.get(node.input[1])
    shape = ctx.builder.shape(ctx.node_of(node.input[0])) if node.input[0] in ctx.value_to_node else ()
    axis = a.get("axis", 0) % len(shape) if shape else 0
    if index is None or index.ndim != 0 or axis == 0:
        ctx.unsupported["Gather(other than one position of a non-batch axis)"] += 1
        return None
    position = int(index) % shape[axis]
    sliced = _slice_axis(ctx, ctx.node_of(node.input[0]), axis, position, position + 1)
    return ctx.builder.reshape(sliced, [*shape[:axis], *shape[axis + 1:]])


def _flatten(ctx: _Ctx, node, a) -> int | None:
    if a.get("axis", 1) != 1:
        ctx.unsupported[f"Flatten(axis={a.get('axis')})"] += 1
        return None
    return ctx.builder.add_node("flatten", [ctx.node_of(node.input[0])])


def _reshape(ctx: _Ctx, node, a) -> int | None:
    """To a constant target (0 copies an axis, -1 takes the rest), the batch kept first."""
    if node.input[1] not in ctx.consts:
        ctx.unsupported["Reshape(dynamic target)"] += 1
        return None
    src = ctx.node_of(node.input[0])
    shape = ctx.builder.shape(src)
    target = [shape[k] if d == 0 and not a.get("allowzero", 0) else int(d)
              for k, d in enumerate(ctx.consts[node.input[1]].reshape(-1).tolist())]
    if target.count(-1) == 1:
        known = int(np.prod([d for d in target if d != -1]))
        target[target.index(-1)] = int(np.prod(shape)) // max(known, 1)
    if any(d <= 0 for d in target) or int(np.prod(target)) != int(np.prod(shape)) or target[0] != shape[0]:
        ctx.unsupported["Reshape(moving the batch axis or to a bad target)"] += 1
        return None
    if len(target) == 2 and target[1] == int(np.prod(shape[1:])):
        return ctx.builder.add_node("flatten", [src])  # torch's x.view(n, -1)
    return ctx.builder.add_node("reshape", [src], shape=tuple(target))


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


def _slice_axis(ctx: _Ctx, x: int, axis: int, start: int, end: int, step: int = 1) -> int | None:
    """One CG slice of ``x``: ``channel_slice`` where it keeps the first channels (the form NB-101's
    truncation has always had), else ``slice``; None for a negative step or an empty or batch-axis slice."""
    shape = ctx.builder.shape(x)
    axis = axis % len(shape)
    size = shape[axis]
    start, end = (max(0, min(size, v + size if v < 0 else v)) for v in (start, end))
    if step <= 0 or axis == 0 or start >= end:
        return None
    if (start, end, step) == (0, size, 1):
        return x
    if axis == 1 and start == 0 and step == 1:
        return ctx.builder.add_node("channel_slice", [x], channels=end)
    return ctx.builder.add_node("slice", [x], axis=axis, start=start, end=end, step=step)


def _slice(ctx: _Ctx, node, a) -> int | None:
    """A Slice with constant bounds, one CG slice per axis it cuts."""
    values = [ctx.consts.get(name) if name else None for name in node.input[1:]]
    if len(values) < 2 or any(v is None for v in values[:2]) or any(
            name and v is None for name, v in zip(node.input[3:], values[2:], strict=False)):
        ctx.unsupported["Slice(dynamic bounds)"] += 1
        return None
    starts, ends = (np.asarray(v).ravel().tolist() for v in values[:2])
    rank = len(ctx.shapes[node.input[0]])
    axes = np.asarray(values[2]).ravel().tolist() if len(values) > 2 and values[2] is not None \
        else list(range(len(starts)))
    steps = np.asarray(values[3]).ravel().tolist() if len(values) > 3 and values[3] is not None else [1] * len(axes)
    x = ctx.node_of(node.input[0])
    for axis, start, end, step in zip(axes, starts, ends, steps, strict=True):
        sliced = _slice_axis(ctx, x, int(axis) % rank, int(start), int(min(end, 2**62)), int(step))
        if sliced is None:
            ctx.unsupported[f"Slice(axis {axis}, {start}:{end}:{step})"] += 1
            return None
        x = sliced
    return x


def _split(ctx: _Ctx, node, a) -> list[int] | None:
    """A Split into parts of a constant size (``x.chunk``), one slice per output."""
    shape = ctx.shapes[node.input[0]]
    axis = a.get("axis", 0) % len(shape)
    sizes = a.get("split")
    if sizes is None and len(node.input) > 1 and node.input[1]:
        sizes = ctx.consts.get(node.input[1])
        if sizes is None:
            ctx.unsupported["Split(dynamic sizes)"] += 1
            return None
    if sizes is None:  # equal parts: as many as outputs (num_outputs from opset 18), the last one smaller
        parts = int(a.get("num_outputs", len(node.output)))
        step = -(-shape[axis] // parts)
        sizes = [min(step, shape[axis] - k * step) for k in range(parts)]
    sizes = [int(v) for v in np.asarray(sizes).ravel()]
    x, start, outputs = ctx.node_of(node.input[0]), 0, []
    for size in sizes:
        sliced = _slice_axis(ctx, x, axis, start, start + size)
        if sliced is None:
            ctx.unsupported[f"Split(axis {axis}, sizes {sizes})"] += 1
            return None
        outputs.append(sliced)
        start += size
    return outputs


def _layer_norm(ctx: _Ctx, node, a) -> int | None:
    """LayerNormalization over the last axis with a learnt scale (and bias); CG's layernorm has both."""
    rank = len(ctx.shapes[node.input[0]])
    if a.get("axis", -1) % rank != rank - 1 or any(v and v not in ctx.consts for v in node.input[1:]):
        ctx.unsupported[f"LayerNormalization(axis={a.get('axis', -1)} or computed scale)"] += 1
        return None
    bias = node.input[2] if len(node.input) > 2 else ""
    return ctx.keep(ctx.builder.add_node("layernorm", [ctx.node_of(node.input[0])]), scale=ctx.lazy(node.input[1]),
                    bias=ctx.lazy(bias) or ctx.lazy(node.input[1], np.zeros_like), epsilon=a.get("epsilon", 1e-5))


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
    "BatchNormalization": _batchnorm,
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
    "Split": _split,
    "Softmax": _softmax,
    "Squeeze": _squeeze,
    "Unsqueeze": _squeeze,
    "Gather": _gather,
    "Div": _div,
    "LayerNormalization": _layer_norm,
    "Resize": _resize,
    "Upsample": _resize,
    "DepthToSpace": _depth_to_space,
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
            input_shape: Sequence[int] | None) -> tuple[ComputationGraph, dict[int, int], _Ctx]:
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
            consts[node.output[0]] = numpy_helper.to_array(_attrs(node)["value"])

    names = list(inputs)
    builder = GraphBuilder(inputs[names[0]])
    nodes_of_inputs = {names[0]: builder.input, **{name: builder.add_input(inputs[name]) for name in names[1:]}}
    ctx = _Ctx(builder, consts, nodes_of_inputs, shapes,
               initializers={init.name: init for init in model.graph.initializer}, opset=opset)
    for node in onnx_patterns.fuse(model.graph.node, consts, {o.name for o in model.graph.output}):
        if node.op_type == "Constant":
            continue
        if node.op_type == "Shape" and node.input[0] in ctx.value_to_node:  # known once the input's is fixed
            a = _attrs(node)
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
        made = handler(ctx, node, _attrs(node))
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
