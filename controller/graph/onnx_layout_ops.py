"""ONNX ops that move or reshape data, as CG nodes: Squeeze/Unsqueeze, Gather, Flatten, Reshape,
ReduceMean, Resize, Slice, Split, Transpose and DepthToSpace (each checked against the shapes ONNX inferred,
refused by name where the IR has no equivalent)."""

from __future__ import annotations

import numpy as np

from hwnas.controller.graph.onnx_context import ImportContext, decode


def squeeze(ctx: ImportContext, node, a) -> int | None:
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


def gather(ctx: ImportContext, node, a) -> int | None:
    """One position of an axis other than the batch (ViT's class token, x[:, 0]): a slice and a reshape."""
    index = ctx.consts.get(node.input[1])
    shape = ctx.builder.shape(ctx.node_of(node.input[0])) if node.input[0] in ctx.value_to_node else ()
    axis = a.get("axis", 0) % len(shape) if shape else 0
    if index is None or index.ndim != 0 or axis == 0:
        ctx.unsupported["Gather(other than one position of a non-batch axis)"] += 1
        return None
    position = int(index) % shape[axis]
    sliced = slice_axis(ctx, ctx.node_of(node.input[0]), axis, position, position + 1)
    return ctx.builder.reshape(sliced, [*shape[:axis], *shape[axis + 1:]])


def flatten(ctx: ImportContext, node, a) -> int | None:
    if a.get("axis", 1) != 1:
        ctx.unsupported[f"Flatten(axis={a.get('axis')})"] += 1
        return None
    return ctx.builder.add_node("flatten", [ctx.node_of(node.input[0])])


def reshape(ctx: ImportContext, node, a) -> int | None:
    """To a constant target (0 copies an axis, -1 takes the rest). The leading axis may fold windows or
    patch positions into the batch and unfold them again (timm's Swin and MobileViT): every leading axis is
    the batch times a count of the sample's own, which ``ComputationGraph.with_batch`` scales."""
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
    batch = ctx.builder.shape(0)[0]
    if any(d <= 0 for d in target) or int(np.prod(target)) != int(np.prod(shape)) or target[0] % batch:
        ctx.unsupported["Reshape(moving the batch axis or to a bad target)"] += 1
        return None
    if tuple(target) == tuple(shape):
        return src  # computes nothing (the dynamo exporter's as_strided of a map already in order)
    if len(target) == 2 and target[1] == int(np.prod(shape[1:])):
        return ctx.builder.add_node("flatten", [src])  # torch's x.view(n, -1)
    return ctx.builder.add_node("reshape", [src], shape=tuple(target))


def reduce_mean(ctx: ImportContext, node, a) -> int | None:
    axes = a.get("axes")
    if axes is None and len(node.input) > 1:
        axes = ctx.consts[node.input[1]].tolist()
    rank = len(ctx.shapes[node.input[0]])
    if sorted(x % rank for x in axes or []) != [2, 3]:
        ctx.unsupported[f"ReduceMean(axes={axes})"] += 1
        return None
    gap = ctx.builder.add_node("global_avgpool", [ctx.node_of(node.input[0])])
    return gap if a.get("keepdims", 1) else ctx.builder.add_node("flatten", [gap])


def resize(ctx: ImportContext, node, a) -> int | None:
    in_shape, out_shape = ctx.shapes[node.input[0]], ctx.shapes.get(node.output[0])
    mode = decode(a.get("mode", "nearest"))
    if out_shape is None or mode not in ("nearest", "linear") or len(in_shape) != 4:
        ctx.unsupported[f"{node.op_type}(mode={mode})"] += 1
        return None
    scale_h, scale_w = out_shape[2] / in_shape[2], out_shape[3] / in_shape[3]
    if scale_h != scale_w or not scale_h.is_integer() or out_shape[:2] != in_shape[:2]:
        ctx.unsupported[f"{node.op_type}(non-integer or anisotropic scale)"] += 1
        return None
    return ctx.builder.add_node("upsample", [ctx.node_of(node.input[0])], scale=int(scale_h),
                                mode="nearest" if mode == "nearest" else "bilinear")


def slice_axis(ctx: ImportContext, x: int, axis: int, start: int, end: int, step: int = 1) -> int | None:
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


def slice(ctx: ImportContext, node, a) -> int | None:
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
        sliced = slice_axis(ctx, x, int(axis) % rank, int(start), int(min(end, 2**62)), int(step))
        if sliced is None:
            ctx.unsupported[f"Slice(axis {axis}, {start}:{end}:{step})"] += 1
            return None
        x = sliced
    return x


def split(ctx: ImportContext, node, a) -> list[int] | None:
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
        sliced = slice_axis(ctx, x, axis, start, start + size)
        if sliced is None:
            ctx.unsupported[f"Split(axis {axis}, sizes {sizes})"] += 1
            return None
        outputs.append(sliced)
        start += size
    return outputs


def transpose(ctx: ImportContext, node, a) -> int | None:
    perm = [int(p) for p in a.get("perm", [])] or list(reversed(range(len(ctx.shapes[node.input[0]]))))
    if perm[0] != 0:
        ctx.unsupported["Transpose(moving the batch axis)"] += 1
        return None
    return ctx.builder.add_node("transpose", [ctx.node_of(node.input[0])], perm=tuple(perm))


def depth_to_space(ctx: ImportContext, node, a) -> int | None:
    if decode(a.get("mode", "DCR")) != "CRD":
        ctx.unsupported["DepthToSpace(mode=DCR)"] += 1
        return None
    return ctx.builder.add_node("pixel_shuffle", [ctx.node_of(node.input[0])], upscale=int(a["blocksize"]))


