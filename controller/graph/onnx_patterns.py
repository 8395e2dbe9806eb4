"""Decomposed ops folded back into the op they compute, before import.

Exporters at older opsets write LayerNorm and GELU as primitives: torch at opset 13 writes LayerNorm as
``ReduceMean, Sub, Pow 2, ReduceMean, Add eps, Sqrt, Div, Mul gamma, Add beta`` (opset 17 has
LayerNormalization), and GELU as ``Div sqrt2, Erf, Add 1, Mul x, Mul 0.5`` below opset 20 (which has Gelu).
torch's dynamo exporter writes ``x.view`` of a tensor that is not contiguous as ``as_strided``: a Reshape to
one axis, then a Gather of constant indices; indices 0, 1, 2, ... in order put every element back where it
was, which is a Reshape to the indices' shape. timm's attention moves the batch axis to pick q, k and v
(``qkv.permute(2, 0, 3, 1, 4).unbind(0)``): each pick becomes a Gather of the source's axis and the rest of
the permutation, so the batch axis stays first. Each pattern found is replaced by the single ONNX op, so one
network imports to one CG at every opset and from either exporter. A pattern whose intermediate values are
read elsewhere, or whose constants differ, is left alone (and then reported as unsupported ops by name).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import onnx
from onnx import helper, numpy_helper

Consts = Mapping[str, np.ndarray]


class _Graph:
    def __init__(self, nodes: Sequence[onnx.NodeProto], consts: Consts, outputs: set[str]) -> None:
        self.nodes = list(nodes)
        self.consts = dict(consts)
        for node in self.nodes:  # exporters alias shared weights through Identity (all LayerNorms' ones)
            if node.op_type == "Identity" and node.input[0] in self.consts:
                self.consts[node.output[0]] = self.consts[node.input[0]]
        self.outputs = outputs
        self.producer = {out: node for node in self.nodes for out in node.output}
        self.readers: dict[str, list[onnx.NodeProto]] = defaultdict(list)
        for node in self.nodes:
            for value in node.input:
                self.readers[value].append(node)

    def only_reader(self, value: str, op_type: str) -> onnx.NodeProto | None:
        """The one node reading ``value``, if it is an ``op_type`` and nothing else (no graph output) reads it."""
        readers = self.readers.get(value, [])
        if len(readers) == 1 and readers[0].op_type == op_type and value not in self.outputs:
            return readers[0]
        return None

    def const(self, node: onnx.NodeProto, other: str) -> np.ndarray | None:
        """The constant operand of a binary ``node`` whose other operand is ``other``."""
        names = [v for v in node.input if v != other]
        return self.consts.get(names[0]) if len(names) == 1 and len(node.input) == 2 else None


def _scalar(value: np.ndarray | None, expected: float, tolerance: float = 1e-4) -> bool:
    return value is not None and value.size == 1 and abs(float(value.reshape(-1)[0]) - expected) <= tolerance


def _last_axis(node: onnx.NodeProto, consts: Consts) -> bool:
    """A ReduceMean over the last axis only, keeping it (axes as attribute before opset 18, input after)."""
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    axes = attrs.get("axes")
    if axes is None and len(node.input) > 1:
        axes = consts.get(node.input[1])
    return axes is not None and list(np.asarray(axes).reshape(-1)) == [-1] and attrs.get("keepdims", 1) == 1


def _layer_norm(g: _Graph, sub: onnx.NodeProto) -> tuple[list[onnx.NodeProto], onnx.NodeProto] | None:
    x, mean = sub.input[0], sub.input[1]
    first = g.producer.get(mean)
    if first is None or first.op_type != "ReduceMean" or first.input[0] != x or not _last_axis(first, g.consts):
        return None
    centred = sub.output[0]
    readers = g.readers.get(centred, [])
    pow_ = next((r for r in readers if r.op_type == "Pow" and _scalar(g.const(r, centred), 2.0)), None)
    div = next((r for r in readers if r.op_type == "Div" and r.input[0] == centred), None)
    if len(readers) != 2 or pow_ is None or div is None or centred in g.outputs:
        return None
    var = g.only_reader(pow_.output[0], "ReduceMean")
    add_eps = var and _last_axis(var, g.consts) and g.only_reader(var.output[0], "Add")
    eps = add_eps and g.const(add_eps, var.output[0])
    sqrt = add_eps and eps is not None and eps.size == 1 and g.only_reader(add_eps.output[0], "Sqrt")
    if not sqrt or div.input[1] != sqrt.output[0] or g.only_reader(sqrt.output[0], "Div") is not div:
        return None
    mul = g.only_reader(div.output[0], "Mul")
    gamma = mul and g.const(mul, div.output[0])
    add = mul is not None and gamma is not None and g.only_reader(mul.output[0], "Add")
    beta = add and g.const(add, mul.output[0])
    if not add or beta is None:
        return None
    names = [n for n in (mul.input[0], mul.input[1], add.input[0], add.input[1]) if n in g.consts]
    fused = helper.make_node("LayerNormalization", [x, *names], [add.output[0]], name=f"{sub.name}.fused",
                             axis=-1, epsilon=float(eps.reshape(-1)[0]))
    return [first, sub, pow_, var, add_eps, sqrt, div, mul, add], fused


def _gelu(g: _Graph, erf: onnx.NodeProto) -> tuple[list[onnx.NodeProto], onnx.NodeProto] | None:
    div = g.producer.get(erf.input[0])
    if div is None or div.op_type != "Div" or not _scalar(g.consts.get(div.input[1]), float(np.sqrt(2.0))):
        return None
    x = div.input[0]
    if g.only_reader(div.output[0], "Erf") is not erf:
        return None
    add = g.only_reader(erf.output[0], "Add")
    if add is None or not _scalar(g.const(add, erf.output[0]), 1.0):
        return None
    mul = g.only_reader(add.output[0], "Mul")
    if mul is None or sorted(mul.input) != sorted([x, add.output[0]]):
        return None
    half = g.only_reader(mul.output[0], "Mul")
    if half is None or not _scalar(g.const(half, mul.output[0]), 0.5):
        return None
    return [div, erf, add, mul, half], helper.make_node("Gelu", [x], [half.output[0]], name=f"{erf.name}.fused")


def _as_strided(g: _Graph, gather: onnx.NodeProto) -> tuple[list[onnx.NodeProto], list[onnx.NodeProto]] | None:
    flat = g.producer.get(gather.input[0])
    if flat is None or flat.op_type != "Reshape" or g.only_reader(gather.input[0], "Gather") is not gather:
        return None
    target, indices = g.consts.get(flat.input[1]), g.consts.get(gather.input[1])
    axis = {a.name: helper.get_attribute_value(a) for a in gather.attribute}.get("axis", 0)
    if (target is None or list(target.reshape(-1)) != [-1] or indices is None or axis != 0
            or not np.array_equal(indices.reshape(-1), np.arange(indices.size))):
        return None
    # a Reshape to a count of elements other than x's is refused by the importer's shape check, as it should be
    shape = helper.make_node("Constant", [], [f"{gather.output[0]}.shape"],
                             value=numpy_helper.from_array(np.array(indices.shape, dtype=np.int64)))
    reshape = helper.make_node("Reshape", [flat.input[0], shape.output[0]], [gather.output[0]],
                               name=f"{gather.name}.fused")
    return [flat, gather], [shape, reshape]


def _attr(node: onnx.NodeProto, name: str, default=None):
    return next((helper.get_attribute_value(a) for a in node.attribute if a.name == name), default)


def _picks(g: _Graph, value: str) -> list[tuple[int, onnx.NodeProto, list[onnx.NodeProto]]] | None:
    """Every reader of ``value`` takes one position of its axis 0: (position, the node whose output is that
    position, the nodes that took it), or None. Readers: Gather(axis 0) of a constant scalar, or one Split
    of axis 0 into parts of one (``unbind``) each read by a Squeeze of axis 0 only."""
    if value in g.outputs or not g.readers.get(value):
        return None
    picks = []
    for reader in g.readers[value]:
        if reader.op_type == "Gather":
            index = g.consts.get(reader.input[1])
            if _attr(reader, "axis", 0) != 0 or index is None or index.ndim != 0:
                return None
            picks.append((int(index), reader, [reader]))
        elif reader.op_type == "Split" and _attr(reader, "axis", 0) == 0:
            sizes = _attr(reader, "split")
            if sizes is None and len(reader.input) > 1 and reader.input[1]:
                sizes = g.consts.get(reader.input[1])
            if sizes is not None and any(int(v) != 1 for v in np.asarray(sizes).ravel()):
                return None
            for position, part in enumerate(reader.output):
                squeeze = g.only_reader(part, "Squeeze")
                axes = None if squeeze is None else _attr(squeeze, "axes")
                if squeeze is not None and axes is None and len(squeeze.input) > 1:
                    axes = g.consts.get(squeeze.input[1])
                if axes is None or [int(v) for v in np.asarray(axes).ravel()] != [0]:
                    return None
                picks.append((position, squeeze, [reader, squeeze] if position == 0 else [squeeze]))
        else:
            return None
    return picks


def _unbind_of_moved_axis(g: _Graph, transpose: onnx.NodeProto) -> tuple[list[onnx.NodeProto], dict] | None:
    """timm's attention takes q, k and v as ``qkv.permute(2, 0, 3, 1, 4).unbind(0)``: a Transpose that moves
    the batch axis away from the front, read only by picks of single positions of its new axis 0. Each pick
    is the same position of the source's axis ``perm[0]`` (a Gather there), then the rest of the
    permutation, which keeps the batch first: the batch axis never moves."""
    perm = [int(v) for v in _attr(transpose, "perm", [])]
    if not perm or perm[0] == 0:
        return None
    picks = _picks(g, transpose.output[0])
    if picks is None:
        return None
    moved = perm[0]
    rest = [v - (v > moved) for v in perm[1:]]
    placed: dict[int, list[onnx.NodeProto]] = {}
    members = [transpose]
    for position, last, taken in picks:
        out = last.output[0]
        index = helper.make_node("Constant", [], [f"{out}.index"],
                                 value=numpy_helper.from_array(np.array(position, dtype=np.int64)))
        gather = helper.make_node("Gather", [transpose.input[0], index.output[0]],
                                  [out if rest == sorted(rest) else f"{out}.picked"], axis=moved,
                                  name=f"{last.name}.unmoved")
        fused = [index, gather]
        if rest != sorted(rest):
            fused.append(helper.make_node("Transpose", [gather.output[0]], [out], perm=rest, name=f"{last.name}.perm"))
        members += taken
        placed[id(last)] = fused
    return members, placed


# (the op a match starts from, the matcher): each returns (the nodes it replaces, what replaces them) or None;
# what replaces them goes where the last of them was, or, given as {id(member): nodes}, where each member was
PATTERNS: tuple[tuple[str, Callable[[_Graph, onnx.NodeProto], tuple | None]], ...] = (
    ("Sub", _layer_norm), ("Erf", _gelu), ("Gather", _as_strided), ("Transpose", _unbind_of_moved_axis))


def fuse(nodes: Sequence[onnx.NodeProto], consts: Consts, outputs: set[str]) -> list[onnx.NodeProto]:
    """``nodes`` with every decomposed pattern replaced by its single op, in topological order."""
    g = _Graph(nodes, consts, outputs)
    replaced: dict[int, list[onnx.NodeProto]] = {}
    for node in g.nodes:
        for op_type, match in PATTERNS:
            if node.op_type != op_type or id(node) in replaced:
                continue
            found = match(g, node)
            if found is None or any(id(n) in replaced for n in found[0]):
                continue
            members, fused = found
            for member in members:
                replaced[id(member)] = []
            if isinstance(fused, dict):  # each part where the value it makes used to be made
                replaced.update(fused)
            else:  # where its output used to be made: readers still follow it
                replaced[id(members[-1])] = fused if isinstance(fused, list) else [fused]
    return [new for node in g.nodes for new in replaced.get(id(node), [node])]
