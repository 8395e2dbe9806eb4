"""Resolution propagation: fit a replacement segment between a predecessor and a successor, as a MILP.

Given the tensors the segment reads (channels C, height H per input port) and the ones its successor
expects (per output port), choose for every mutable node (conv, pool) whether it halves, keeps or doubles
its template's output channels (a conv) and whether it keeps H and W or halves them (stride 2), so that
shapes propagate: immutable ops forward their input's shape, ``add`` needs equal inputs, ``concat`` sums
channels. Token sequences (B, T, D) are the same problem with D as the channels and T as a size nothing
halves: a token ``linear`` chooses its output features as a 1x1 conv chooses its channels. The objective is
the number of changes to the template. Spatial sizes are variables on the log-2 scale (halvings from the
largest size in play), channels on the linear scale, so every constraint is linear. OR-Tools' CP-SAT solves
it; no solution means this mutation is dropped.

A conv only ever downsamples (stride 1 or 2); doubling H and W needs an upsampling op, which AutoGO's
mutations do not insert, so a segment whose context needs it is infeasible. Rounding on odd sizes (a 7x7
map halves to 4 by a padded conv and to 3 by a 2x2 pool) is not modelled: the stitched graph's shapes are
inferred exactly afterwards and a mismatch drops the mutation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from hwnas.controller.autogo.segment import Segment, channels, size

Shape = tuple[int, ...]
CHANNEL_FACTORS = (0.5, 1.0, 2.0)  # halve, keep, double the template's channels
MAX_LEVEL = 16


@dataclass(frozen=True)
class Resolution:
    channels: tuple[int, ...]  # output channels of every segment node
    strides: tuple[int, ...]  # 1 or 2 for convs and pools, 1 elsewhere
    changes: int  # the MILP's objective: channel and stride changes to the template


def _level(size: int, reference: int) -> int | None:
    ratio = math.log2(reference / size)
    level = round(ratio)
    return level if abs(ratio - level) < 0.3 and 0 <= level <= MAX_LEVEL else None  # ceil(7/2) = 4: ~0.8 log2


def template_channels(segment: Segment, base_channels: int) -> list[int]:
    """Each node's channels as the template has them, scaled to the channels of the new input port 0."""
    return [max(1, round(node.channel_ratio * base_channels)) for node in segment.nodes]


def resolve(segment: Segment, in_shapes: Sequence[Shape], out_shapes: Sequence[Shape],
            time_limit_s: float = 2.0) -> Resolution | None:
    """The fewest changes that make ``segment`` map ``in_shapes`` to ``out_shapes`` (each (C, H, W) of a
    feature map or (T, D) of tokens), or None."""
    from ortools.sat.python import cp_model

    if len(in_shapes) != segment.n_inputs or len(out_shapes) != segment.n_outputs:
        raise ValueError(f"the segment has {segment.n_inputs} input(s) and {segment.n_outputs} output(s), "
                         f"got {len(in_shapes)} and {len(out_shapes)} shapes")
    if len({len(s) for s in (*in_shapes, *out_shapes)}) != 1:
        return None  # a feature map on one port and tokens on another
    reference = max(size(s) for s in (*in_shapes, *out_shapes))
    in_levels = [_level(size(s), reference) for s in in_shapes]
    out_levels = [_level(size(s), reference) for s in out_shapes]
    if None in in_levels or None in out_levels:
        return None
    base = template_channels(segment, channels(in_shapes[0]))
    c_max = 4 * max(max(base), *(channels(s) for s in (*in_shapes, *out_shapes))) * max(1, len(segment.nodes))
    model = cp_model.CpModel()
    port_c = [model.new_constant(channels(s)) for s in in_shapes]
    port_l = [model.new_constant(level) for level in in_levels]
    c_vars, l_vars, stride_vars, cost = [], [], [], []

    def channel(ref: int):
        return port_c[-ref - 1] if ref < 0 else c_vars[ref]

    def level(ref: int):
        return port_l[-ref - 1] if ref < 0 else l_vars[ref]

    for k, node in enumerate(segment.nodes):
        c = model.new_int_var(1, c_max, f"c{k}")
        lv = model.new_int_var(0, MAX_LEVEL, f"l{k}")
        c_vars.append(c)
        l_vars.append(lv)
        first = node.inputs[0]
        stride = None
        if (node.op == "conv" and not node.depthwise) or node.op == "linear":
            values = sorted({max(1, round(base[k] * f)) for f in CHANNEL_FACTORS})
            picks = [model.new_bool_var(f"c{k}={v}") for v in values]
            model.add_exactly_one(picks)
            model.add(c == sum(v * p for v, p in zip(values, picks, strict=True)))
            cost += [p for v, p in zip(values, picks, strict=True) if v != base[k]]
        elif node.op == "concat":
            model.add(c == sum(channel(r) for r in node.inputs))
        else:
            model.add(c == channel(first))
        if node.op in ("conv", "maxpool", "avgpool"):
            stride = model.new_bool_var(f"s{k}")  # 1: stride 2 (one halving)
            if node.attrs["kernel"][0] % 2 == 0:
                model.add(stride == 1)  # an even window only tiles at stride 2
            template_halves = node.attrs["stride"][0] == 2
            cost.append(stride.Not() if template_halves else stride)
            model.add(lv == level(first) + stride)
        else:
            model.add(lv == level(first))
        if node.op in ("add", "mul", "concat"):
            for ref in node.inputs[1:]:
                model.add(level(ref) == level(first))
                if node.op != "concat":
                    model.add(channel(ref) == channel(first))
        stride_vars.append(stride)
    for k, shape, out_level in zip(segment.outputs, out_shapes, out_levels, strict=True):
        model.add(c_vars[k] == channels(shape))
        model.add(l_vars[k] == out_level)
    model.minimize(sum(cost))
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = 1
    solver.parameters.max_time_in_seconds = time_limit_s
    status = solver.solve(model)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None
    return Resolution(tuple(int(solver.value(c)) for c in c_vars),
                      tuple(2 if s is not None and solver.boolean_value(s) else 1 for s in stride_vars),
                      int(round(solver.objective_value)))
