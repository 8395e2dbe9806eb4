"""Segments: subgraphs of a CG cut out with their ports, stored as shape-free templates.

A segment is a run of consecutive nodes of a CG in topological order (what a BPE piece of the CG's
sequence covers). Tensors it reads from outside are its *input ports*; nodes whose output is read outside
(or is a graph output) are its *output ports*. A node of a template refers to its inputs by
``k >= 0`` (the segment's node k) or ``-(p + 1)`` (input port p).

Templates keep what a mutation carries over (op, kernel, stride, padding, depthwise-ness, bias) and drop
what resolution propagation decides: a conv's output channels (a token linear's output features) are kept
only as a ratio to input port 0's channels (features) in the network the segment came from.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from hwnas.controller.graph.ir import ComputationGraph, Node

Shape = tuple[int, ...]

# Ops a mutation may place or remove, in the two kinds of tensor resolution propagation models: NCHW feature
# maps (channels on axis 1, a spatial size that strides halve) and token sequences (B, T, D: a transformer's
# features on the last axis, T never changes). Pointwise ops and ``add`` go in either; convs, norms over
# channels, pools and concat only in maps; ``linear`` and ``layernorm`` only on tokens (a token MLP, where
# ``linear`` resizes D as a 1x1 conv resizes C). Heads (flatten, a linear on (N, F)), attention (matmul,
# softmax, the reshapes to heads), SE-style broadcasts, resamplers and the graph input stay where they are.
POINTWISE_OPS = frozenset({"relu", "relu6", "hardswish", "hardsigmoid", "sigmoid", "silu", "gelu", "identity", "add"})
MAP_OPS = frozenset({"conv", "batchnorm", "prelu", "concat", "avgpool", "maxpool"})
TOKEN_OPS = frozenset({"linear", "layernorm"})
BODY_OPS = POINTWISE_OPS | MAP_OPS  # what a feature map's mutation may hold
DOMAIN_OPS = {"map": BODY_OPS, "tokens": POINTWISE_OPS | TOKEN_OPS}
DOMAIN_RANKS = {4: "map", 3: "tokens"}  # the rank of a node's output (batch included) -> its domain


def domain_of(node: Node) -> str | None:
    """``map`` or ``tokens`` where a mutation may replace the node, else None."""
    domain = DOMAIN_RANKS.get(len(node.out_shape))
    return domain if domain is not None and node.op in DOMAIN_OPS[domain] else None


def channels(shape: Shape) -> int:
    """The axis mutations resize, of a shape without its batch: C of (C, H, W), D of (T, D)."""
    return shape[0] if len(shape) == 3 else shape[-1]


def size(shape: Shape) -> int:
    """The axis strides may halve, of a shape without its batch: H of (C, H, W), T of (T, D) (never halved)."""
    return shape[1] if len(shape) == 3 else shape[0]


def op_token(node: Node, in_channels: int | None = None) -> str:
    """The op as BPE sees it: the op, its kernel, and ``dw`` for a depthwise convolution."""
    token = node.op
    kernel = node.attrs.get("kernel")
    if kernel is not None:
        token += f"{kernel[0]}x{kernel[1]}"
    if node.op == "conv" and node.attrs["groups"] > 1:
        token += "dw" if node.attrs["groups"] == in_channels == node.out_shape[1] else f"g{node.attrs['groups']}"
    return token


def is_depthwise(node: Node, in_channels: int) -> bool:
    return node.op == "conv" and node.attrs["groups"] == in_channels == node.out_shape[1] and in_channels > 1


@dataclass(frozen=True)
class TemplateNode:
    op: str
    inputs: tuple[int, ...]  # k >= 0: node k of the segment; -(p + 1): input port p
    attrs: Mapping[str, Any] = field(default_factory=dict)  # without out_channels/groups (see channel_ratio)
    channel_ratio: float = 1.0  # conv: output channels / channels of input port 0 where the segment came from
    depthwise: bool = False

    @property
    def token(self) -> str:
        kernel = self.attrs.get("kernel")
        return self.op + (f"{kernel[0]}x{kernel[1]}" if kernel else "") + ("dw" if self.depthwise else "")

    def to_dict(self) -> dict[str, Any]:
        return {"op": self.op, "inputs": list(self.inputs), "attrs": {k: _json(v) for k, v in self.attrs.items()},
                "channel_ratio": self.channel_ratio, "depthwise": self.depthwise}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TemplateNode:
        attrs = {k: tuple(v) if isinstance(v, list) else v for k, v in data["attrs"].items()}
        return cls(data["op"], tuple(data["inputs"]), attrs, float(data["channel_ratio"]), bool(data["depthwise"]))


@dataclass(frozen=True)
class Segment:
    """A shape-free subgraph template with ``n_inputs`` input ports and ``outputs`` as output ports."""

    nodes: tuple[TemplateNode, ...]
    outputs: tuple[int, ...]
    n_inputs: int
    input_shapes: tuple[Shape, ...] = ()  # in the network the segment came from (C, H, W per port)
    output_shapes: tuple[Shape, ...] = ()
    macs: int = 0  # in that network
    source: str = ""  # where it was mined (family name)

    @property
    def n_outputs(self) -> int:
        return len(self.outputs)

    @property
    def domains(self) -> frozenset[str]:
        """Where it can be placed: ``map`` and/or ``tokens``, by its ops (none: it mixes both, or holds an op
        resolution propagation does not model)."""
        return frozenset(d for d, allowed in DOMAIN_OPS.items() if all(n.op in allowed for n in self.nodes))

    @property
    def mutable(self) -> bool:
        """Whether resolution propagation can place it: a domain's ops only, and convs it knows how to resize."""
        return bool(self.domains) and all(_window_ok(n) for n in self.nodes)

    @property
    def op_types(self) -> list[str]:
        return sorted({n.op for n in self.nodes})

    def structure_graph(self) -> nx.DiGraph:
        """Nodes labelled by op token, ports as their own nodes: what isomorphism is checked on."""
        g = nx.DiGraph()
        for p in range(self.n_inputs):
            g.add_node(("in", p), label="in")
        for k, node in enumerate(self.nodes):
            g.add_node(k, label=node.token + ("|out" if k in self.outputs else ""))
            for ref in node.inputs:
                g.add_edge(("in", -ref - 1) if ref < 0 else ref, k)
        return g

    def invariant(self) -> str:
        """Equal for isomorphic segments: each node's label with its producers' and consumers' labels."""
        g = self.structure_graph()
        label = nx.get_node_attributes(g, "label")
        rows = sorted(f"{label[n]}<{','.join(sorted(label[p] for p in g.predecessors(n)))}"
                      f">{','.join(sorted(label[c] for c in g.successors(n)))}" for n in g)
        return hashlib.sha256(";".join(rows).encode()).hexdigest()

    def isomorphic(self, other: Segment) -> bool:
        return (self.n_inputs == other.n_inputs and self.n_outputs == other.n_outputs
                and nx.is_isomorphic(self.structure_graph(), other.structure_graph(),
                                     node_match=lambda a, b: a["label"] == b["label"]))

    def to_dict(self) -> dict[str, Any]:
        return {"n_inputs": self.n_inputs, "n_outputs": self.n_outputs, "node_count": len(self.nodes),
                "op_types": self.op_types, "nodes": [n.to_dict() for n in self.nodes], "outputs": list(self.outputs),
                "input_shapes": [list(s) for s in self.input_shapes],
                "output_shapes": [list(s) for s in self.output_shapes], "macs": self.macs, "source": self.source}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Segment:
        return cls(tuple(TemplateNode.from_dict(n) for n in data["nodes"]), tuple(data["outputs"]),
                   int(data["n_inputs"]), tuple(tuple(s) for s in data["input_shapes"]),
                   tuple(tuple(s) for s in data["output_shapes"]), int(data["macs"]), str(data.get("source", "")))



def _window_ok(node: TemplateNode) -> bool:
    """Resolution propagation sets strides 1 or 2 with 'same' padding: odd kernels, or 2x2 pooling at stride 2."""
    kernel = node.attrs.get("kernel")
    if "groups" in node.attrs:  # a grouped (not depthwise) conv keeps its groups: channels cannot move freely
        return False
    if kernel is None:
        return True
    if kernel[0] != kernel[1] or node.attrs.get("dilation", (1, 1)) != (1, 1):
        return False
    return kernel[0] % 2 == 1 or (kernel[0] == 2 and node.op in ("maxpool", "avgpool"))


def _json(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


@dataclass(frozen=True)
class Region:
    """Where a run of nodes sits in a graph: its nodes, the tensors it reads and the ones it hands on."""

    nodes: tuple[int, ...]  # consecutive node indices of the graph
    inputs: tuple[int, ...]  # producers outside the region, ascending
    outputs: tuple[int, ...]  # region nodes read outside it or graph outputs, ascending


def region(graph: ComputationGraph, start: int, stop: int, users: Sequence[Sequence[int]] | None = None) -> Region:
    """The region of nodes ``start .. stop - 1`` (a contiguous run in topological order)."""
    users = users if users is not None else graph.consumers()
    inside = range(start, stop)
    inputs = sorted({i for k in inside for i in graph.nodes[k].inputs if not start <= i < stop})
    outputs = [k for k in inside if k in graph.outputs or any(u >= stop for u in users[k])]
    return Region(tuple(inside), tuple(inputs), tuple(outputs))


def extract(graph: ComputationGraph, where: Region, source: str = "") -> Segment:
    """The template of a region of ``graph`` (ports in ascending order of the producing node)."""
    port = {producer: p for p, producer in enumerate(where.inputs)}
    local = {k: j for j, k in enumerate(where.nodes)}
    base = channels(graph.nodes[where.inputs[0]].out_shape[1:]) if where.inputs else 1
    nodes = []
    for k in where.nodes:
        node = graph.nodes[k]
        refs = tuple(local[i] if i in local else -port[i] - 1 for i in node.inputs)
        attrs = {a: v for a, v in node.attrs.items() if a not in ("out_channels", "groups", "out_features")}
        in_channels = graph.nodes[node.inputs[0]].out_shape[1] if node.inputs else 0
        depthwise = is_depthwise(node, in_channels)
        resized = (node.op == "conv" and len(node.out_shape) == 4) or (node.op == "linear" and len(node.out_shape) == 3)
        ratio = channels(node.out_shape[1:]) / base if resized else 1.0
        if node.op == "conv" and node.attrs["groups"] > 1 and not depthwise:
            attrs["groups"] = node.attrs["groups"]  # grouped (not depthwise): kept, and not mutable
        nodes.append(TemplateNode(node.op, refs, attrs, ratio, depthwise))
    macs = sum(graph.node_macs(k) for k in where.nodes)
    return Segment(tuple(nodes), tuple(local[k] for k in where.outputs), len(where.inputs),
                   tuple(graph.nodes[i].out_shape[1:] for i in where.inputs),
                   tuple(graph.nodes[k].out_shape[1:] for k in where.outputs), macs, source)

