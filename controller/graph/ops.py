"""The primitive operations of the computation-graph IR, one registry entry each.

An entry knows how many inputs the op takes, which attributes it carries, how
to infer its output shape, and what it costs (multiply-accumulates and
learnable parameters). Shapes are NCHW for feature maps and (N, F) after
flatten/linear; linear and layernorm act on the last axis of any rank (tokens, or a map permuted channels
last, as ConvNeXt does). MACs count convolutions (transposed too) and linear layers, the convention of
published FLOPs figures (ResNet-50: 4.1 G); element-wise ops, pooling and
normalisation count zero MACs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

Shape = tuple[int, ...]
Attrs = Mapping[str, Any]


class ShapeError(ValueError):
    """An op cannot take inputs of these shapes."""


def _conv_out(size: int, k: int, s: int, p0: int, p1: int, d: int, ceil: bool = False) -> int:
    span = size + p0 + p1 - d * (k - 1) - 1
    out = (math.ceil(span / s) if ceil else span // s) + 1
    if ceil and (out - 1) * s >= size + p0:  # the last window must start inside the input or left pad
        out -= 1
    if out <= 0:
        raise ShapeError(f"window {k} (dilation {d}, stride {s}) does not fit input size {size} with padding")
    return out


def _spatial(shape: Shape, attrs: Attrs, ceil: bool = False) -> tuple[int, int]:
    kh, kw = attrs["kernel"]
    sh, sw = attrs["stride"]
    pt, pl, pb, pr = attrs["padding"]
    dh, dw = attrs.get("dilation", (1, 1))
    return (
        _conv_out(shape[2], kh, sh, pt, pb, dh, ceil),
        _conv_out(shape[3], kw, sw, pl, pr, dw, ceil),
    )


def _need_rank(shape: Shape, rank: int, op: str) -> None:
    if len(shape) != rank:
        raise ShapeError(f"{op} needs a rank-{rank} input, got {list(shape)}")


def _infer_conv(ins: list[Shape], a: Attrs) -> Shape:
    (x,) = ins
    _need_rank(x, 4, "conv")
    groups = a["groups"]
    if x[1] % groups or a["out_channels"] % groups:
        raise ShapeError(f"conv groups={groups} must divide in ({x[1]}) and out ({a['out_channels']}) channels")
    return (x[0], a["out_channels"], *_spatial(x, a))


def _infer_conv_transpose(ins: list[Shape], a: Attrs) -> Shape:
    (x,) = ins
    _need_rank(x, 4, "conv_transpose")
    if x[1] % a["groups"] or a["out_channels"] % a["groups"]:
        raise ShapeError(f"conv_transpose groups={a['groups']} must divide in and out channels")
    (kh, kw), (sh, sw), (pt, pl, pb, pr) = a["kernel"], a["stride"], a["padding"]
    (dh, dw), (oph, opw) = a["dilation"], a["output_padding"]
    out_h = (x[2] - 1) * sh - pt - pb + dh * (kh - 1) + oph + 1
    out_w = (x[3] - 1) * sw - pl - pr + dw * (kw - 1) + opw + 1
    if out_h <= 0 or out_w <= 0:
        raise ShapeError(f"conv_transpose of {list(x)} gives a non-positive size")
    return (x[0], a["out_channels"], out_h, out_w)


def _infer_pool(ins: list[Shape], a: Attrs) -> Shape:
    (x,) = ins
    _need_rank(x, 4, "pool")
    return (x[0], x[1], *_spatial(x, a, a.get("ceil_mode", False)))


def _same(ins: list[Shape], a: Attrs) -> Shape:
    return ins[0]


def _broadcast(ins: list[Shape], a: Attrs) -> Shape:
    first, second = ins
    if len(first) != len(second):
        raise ShapeError(f"element-wise inputs differ in rank: {list(first)} vs {list(second)}")
    out = []
    for x, y in zip(first, second, strict=True):
        if x != y and 1 not in (x, y):
            raise ShapeError(f"element-wise inputs do not broadcast: {list(first)} vs {list(second)}")
        out.append(max(x, y))
    return tuple(out)


def _infer_add(ins: list[Shape], a: Attrs) -> Shape:
    if ins[0] != ins[1]:
        raise ShapeError(f"add inputs must have equal shapes: {list(ins[0])} vs {list(ins[1])}")
    return ins[0]


def _infer_concat(ins: list[Shape], a: Attrs) -> Shape:
    """Along the channel axis (1), or along ``axis`` where a node names one (a shifted window, patch merging)."""
    first, axis = ins[0], a.get("axis", 1)
    if not 0 < axis < len(first):
        raise ShapeError(f"concat axis {axis} must be an axis of {list(first)} other than the batch")
    for other in ins[1:]:
        if len(other) != len(first) or other[:axis] != first[:axis] or other[axis + 1:] != first[axis + 1:]:
            raise ShapeError(f"concat inputs differ outside axis {axis}: {[list(s) for s in ins]}")
    return (*first[:axis], sum(s[axis] for s in ins), *first[axis + 1:])


def _infer_matmul(ins: list[Shape], a: Attrs) -> Shape:
    """A batched product of two computed tensors (attention's q @ k^T, scores @ v): (..., n, k) @ (..., k, m),
    leading axes equal or 1 in the second."""
    x, y = ins
    if len(x) != len(y) or len(x) < 3 or x[-1] != y[-2] or \
            any(d2 not in (1, d1) for d1, d2 in zip(x[:-2], y[:-2], strict=True)):
        raise ShapeError(f"matmul of {list(x)} and {list(y)}: needs (..., n, k) and (..., k, m) of one rank")
    return (*x[:-1], y[-1])


def _infer_prepend(ins: list[Shape], a: Attrs) -> Shape:
    """``tokens`` learnt vectors put before the sequence (ViT's class token), along axis 1."""
    (x,) = ins
    if len(x) != 3 or a["tokens"] < 1:
        raise ShapeError(f"prepend puts tokens before a (batch, tokens, dim) sequence, got {list(x)}")
    return (x[0], x[1] + a["tokens"], x[2])


def _infer_gap(ins: list[Shape], a: Attrs) -> Shape:
    (x,) = ins
    _need_rank(x, 4, "global_avgpool")
    return (x[0], x[1], 1, 1)


def _infer_linear(ins: list[Shape], a: Attrs) -> Shape:
    """Over the last axis, for (N, F) features and for tokens or channels-last maps alike."""
    (x,) = ins
    if len(x) < 2:
        raise ShapeError(f"linear needs an input of rank 2 or more, got {list(x)}")
    return (*x[:-1], a["out_features"])


def _over_last_axis(op: str) -> Callable[[list[Shape], Attrs], Shape]:
    """An op over the last axis (layernorm over a token's features or a channels-last map's channels,
    softmax over attention scores): the shape is kept."""
    def infer(ins: list[Shape], a: Attrs) -> Shape:
        (x,) = ins
        if len(x) < 2:
            raise ShapeError(f"{op} needs an input of rank 2 or more, got {list(x)}")
        return x

    return infer


def _infer_weighted(ins: list[Shape], a: Attrs) -> Shape:
    """x with a learnt tensor of ``weight_shape`` that broadcasts to it without growing it (scale, bias)."""
    (x,) = ins
    shape = tuple(a["weight_shape"])
    if len(shape) > len(x) or any(s not in (1, d) for s, d in zip(reversed(shape), reversed(x), strict=False)):
        raise ShapeError(f"a learnt tensor of shape {list(shape)} does not broadcast to {list(x)}")
    return x


def _infer_slice(ins: list[Shape], a: Attrs) -> Shape:
    """Elements ``start:end:step`` of one axis other than the batch (DARTS' one-pixel shift, a channel split)."""
    (x,) = ins
    axis, start, end, step = a["axis"], a["start"], a["end"], a["step"]
    if not 0 < axis < len(x) or step <= 0 or not 0 <= start < end <= x[axis]:
        raise ShapeError(f"slice {start}:{end}:{step} of axis {axis} does not fit {list(x)} (0 <= start < end <= "
                         "size, step > 0, not the batch axis)")
    return (*x[:axis], len(range(start, end, step)), *x[axis + 1:])


def _infer_flatten(ins: list[Shape], a: Attrs) -> Shape:
    (x,) = ins
    return (x[0], math.prod(x[1:]))


def _infer_reshape(ins: list[Shape], a: Attrs) -> Shape:
    (x,) = ins
    target = tuple(a["shape"])
    if math.prod(target) != math.prod(x) or min(target, default=0) <= 0:
        raise ShapeError(f"cannot reshape {list(x)} to {list(target)} (the element count must match)")
    return target


def _infer_transpose(ins: list[Shape], a: Attrs) -> Shape:
    """A permutation of the axes that keeps the batch first (a channel shuffle's middle step)."""
    (x,) = ins
    perm = tuple(a["perm"])
    if sorted(perm) != list(range(len(x))) or perm[0] != 0:
        raise ShapeError(f"transpose perm {list(perm)} must permute the {len(x)} axes of {list(x)} keeping axis 0 "
                         "(the batch) first")
    return tuple(x[p] for p in perm)


def _infer_channel_slice(ins: list[Shape], a: Attrs) -> Shape:
    """The first ``channels`` channels (NB-101 truncates a wider vertex output this way)."""
    (x,) = ins
    if len(x) < 2 or not 0 < a["channels"] <= x[1]:
        raise ShapeError(f"channel_slice keeps 1 to {x[1] if len(x) > 1 else 0} channels of {list(x)}, "
                         f"not {a['channels']}")
    return (x[0], a["channels"], *x[2:])


def _infer_upsample(ins: list[Shape], a: Attrs) -> Shape:
    (x,) = ins
    _need_rank(x, 4, "upsample")
    return (x[0], x[1], x[2] * a["scale"], x[3] * a["scale"])


def _infer_pixel_shuffle(ins: list[Shape], a: Attrs) -> Shape:
    (x,) = ins
    _need_rank(x, 4, "pixel_shuffle")
    r = a["upscale"]
    if x[1] % (r * r):
        raise ShapeError(f"pixel_shuffle by {r} needs channels divisible by {r * r}, got {x[1]}")
    return (x[0], x[1] // (r * r), x[2] * r, x[3] * r)


def _conv_macs(ins: list[Shape], out: Shape, a: Attrs) -> int:
    kh, kw = a["kernel"]
    return math.prod(out) * (ins[0][1] // a["groups"]) * kh * kw


def _conv_params(ins: list[Shape], out: Shape, a: Attrs) -> int:
    kh, kw = a["kernel"]
    return out[1] * (ins[0][1] // a["groups"]) * kh * kw + (out[1] if a["bias"] else 0)


def _conv_transpose_macs(ins: list[Shape], out: Shape, a: Attrs) -> int:
    kh, kw = a["kernel"]
    return math.prod(ins[0]) * (out[1] // a["groups"]) * kh * kw


def _conv_transpose_params(ins: list[Shape], out: Shape, a: Attrs) -> int:
    kh, kw = a["kernel"]
    return ins[0][1] * (out[1] // a["groups"]) * kh * kw + (out[1] if a["bias"] else 0)


def _matmul_macs(ins: list[Shape], out: Shape, a: Attrs) -> int:
    return math.prod(out) * ins[0][-1]


def _linear_macs(ins: list[Shape], out: Shape, a: Attrs) -> int:
    return math.prod(out[:-1]) * ins[0][-1] * out[-1]


def _linear_params(ins: list[Shape], out: Shape, a: Attrs) -> int:
    return ins[0][-1] * out[-1] + (out[-1] if a["bias"] else 0)


def _zero(ins: list[Shape], out: Shape, a: Attrs) -> int:
    return 0


@dataclass(frozen=True)
class OpSpec:
    name: str
    arity: int | None  # None: one or more inputs
    attrs: tuple[str, ...]
    infer: Callable[[list[Shape], Attrs], Shape]
    macs: Callable[[list[Shape], Shape, Attrs], int] = _zero
    params: Callable[[list[Shape], Shape, Attrs], int] = _zero
    commutative: bool = False


_WINDOW = ("kernel", "stride", "padding")
OPS: dict[str, OpSpec] = {
    spec.name: spec
    for spec in (
        OpSpec("input", 0, ("shape",), lambda ins, a: tuple(a["shape"])),
        OpSpec("conv", 1, ("out_channels", *_WINDOW, "dilation", "groups", "bias"), _infer_conv,
               _conv_macs, _conv_params),
        OpSpec("conv_transpose", 1, ("out_channels", *_WINDOW, "dilation", "groups", "bias", "output_padding"),
               _infer_conv_transpose, _conv_transpose_macs, _conv_transpose_params),
        OpSpec("batchnorm", 1, (), _same, params=lambda ins, out, a: 2 * ins[0][1]),
        OpSpec("prelu", 1, (), _same, params=lambda ins, out, a: ins[0][1]),
        *(OpSpec(act, 1, (), _same) for act in
          ("relu", "relu6", "hardswish", "hardsigmoid", "sigmoid", "silu", "gelu", "identity")),
        OpSpec("add", 2, (), _infer_add, commutative=True),
        OpSpec("mul", 2, (), _broadcast, commutative=True),
        OpSpec("concat", None, (), _infer_concat),
        OpSpec("avgpool", 1, (*_WINDOW, "ceil_mode", "count_include_pad"), _infer_pool),
        OpSpec("maxpool", 1, (*_WINDOW, "ceil_mode"), _infer_pool),
        OpSpec("global_avgpool", 1, (), _infer_gap),
        OpSpec("linear", 1, ("out_features", "bias"), _infer_linear, _linear_macs, _linear_params),
        OpSpec("layernorm", 1, (), _over_last_axis("layernorm"), params=lambda ins, out, a: 2 * ins[0][-1]),
        OpSpec("scale", 1, ("weight_shape",), _infer_weighted,
               params=lambda ins, out, a: math.prod(a["weight_shape"])),
        OpSpec("slice", 1, ("axis", "start", "end", "step"), _infer_slice),
        OpSpec("matmul", 2, (), _infer_matmul, _matmul_macs),
        OpSpec("softmax", 1, (), _over_last_axis("softmax")),  # over the last axis, as attention takes it
        OpSpec("scalar_mul", 1, ("value",), _same),  # a fixed factor (attention's 1/sqrt(d)), not learnt
        OpSpec("bias", 1, ("weight_shape",), _infer_weighted,  # x plus a learnt tensor (position embeddings)
               params=lambda ins, out, a: math.prod(a["weight_shape"])),
        OpSpec("prepend", 1, ("tokens",), _infer_prepend, params=lambda ins, out, a: a["tokens"] * ins[0][-1]),
        OpSpec("flatten", 1, (), _infer_flatten),
        OpSpec("reshape", 1, ("shape",), _infer_reshape),
        OpSpec("transpose", 1, ("perm",), _infer_transpose),
        OpSpec("channel_slice", 1, ("channels",), _infer_channel_slice),
        OpSpec("upsample", 1, ("scale", "mode"), _infer_upsample),
        OpSpec("pixel_shuffle", 1, ("upscale",), _infer_pixel_shuffle),
    )
}


def op_spec(name: str) -> OpSpec:
    try:
        return OPS[name]
    except KeyError:
        raise ValueError(f"unknown op {name!r}; known: {sorted(OPS)}") from None
