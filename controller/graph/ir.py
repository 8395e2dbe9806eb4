"""The computation graph (CG): the one architecture representation of hwnas.

A CG is a DAG of primitive ops (see ``ops.OPS``); every node knows its op,
attributes, producers and output shape, so input shapes, FLOPs and
parameters follow. Graphs are immutable once built. The canonical JSON form
orders nodes by a structural signature, so two graphs that compute the same
thing in the same way serialize identically however they were built or
imported; its sha256 is the ``arch_id`` that keys the dataset.
"""

from __future__ import annotations

import functools
import hashlib
import heapq
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hwnas.controller.graph.ops import OPS, Shape, ShapeError, op_spec

CANONICAL_FORMAT = "hwnas.cg/1"


@dataclass(frozen=True)
class Node:
    op: str
    inputs: tuple[int, ...]
    out_shape: Shape
    attrs: Mapping[str, Any] = field(default_factory=dict)


def _norm_attr(value: Any) -> Any:
    """JSON-ready and type-stable: tuples become lists, integral floats ints."""
    if isinstance(value, (list, tuple)):
        return [_norm_attr(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


class ComputationGraph:
    """An immutable DAG of primitive ops with one input node and one or more outputs."""

    def __init__(self, nodes: Sequence[Node], outputs: Sequence[int]) -> None:
        self.nodes: tuple[Node, ...] = tuple(nodes)
        self.outputs: tuple[int, ...] = tuple(outputs)
        self._validate()

    def _validate(self) -> None:
        if not self.nodes or self.nodes[0].op != "input":
            raise ValueError("a computation graph starts with an input node")
        inputs = [n for n in self.nodes if n.op == "input"]
        positions = sorted(n.attrs.get("position", -1) for n in inputs)
        if len(inputs) > 1 and positions != list(range(len(inputs))):
            raise ValueError(f"a graph of {len(inputs)} inputs numbers them 0 to {len(inputs) - 1} by their "
                             f"'position' attribute, got {positions}")
        if len(inputs) == 1 and "position" in inputs[0].attrs:
            raise ValueError("a graph's only input carries no 'position' (one canonical form per network)")
        for index, node in enumerate(self.nodes):
            spec = op_spec(node.op)
            if any(not 0 <= i < index for i in node.inputs):
                raise ValueError(f"node {index} ({node.op}) reads {list(node.inputs)}: inputs must come earlier")
            if spec.arity is not None and len(node.inputs) != spec.arity:
                raise ValueError(f"node {index}: {node.op} takes {spec.arity} input(s), got {len(node.inputs)}")
            if spec.arity is None and not node.inputs:
                raise ValueError(f"node {index}: {node.op} needs at least one input")
            missing = set(spec.attrs) - set(node.attrs)
            if missing:
                raise ValueError(f"node {index}: {node.op} lacks attribute(s) {sorted(missing)}")
            try:
                inferred = spec.infer([self.nodes[i].out_shape for i in node.inputs], node.attrs)
            except ShapeError as exc:
                raise ShapeError(f"node {index} ({node.op}): {exc}") from None
            if tuple(inferred) != tuple(node.out_shape):
                raise ShapeError(f"node {index} ({node.op}) declares {list(node.out_shape)}, infers {list(inferred)}")
        if not self.outputs or any(not 0 <= o < len(self.nodes) for o in self.outputs):
            raise ValueError(f"outputs {list(self.outputs)} must name nodes of the graph")
        dead = sorted(set(range(len(self.nodes))) - ancestors(self.nodes, self.outputs))
        if dead:
            raise ValueError(f"nodes {dead} do not lead to any output (GraphBuilder.build prunes them)")

    # -- views -----------------------------------------------------------------------------------
    @property
    def input_nodes(self) -> tuple[int, ...]:
        """The input nodes in the order the network takes its inputs (``position``): one for most networks,
        two for an encoder-decoder (source and target sequences)."""
        found = [i for i, n in enumerate(self.nodes) if n.op == "input"]
        return tuple(sorted(found, key=lambda i: self.nodes[i].attrs.get("position", 0)))

    @property
    def input_shapes(self) -> tuple[Shape, ...]:
        return tuple(self.nodes[i].out_shape for i in self.input_nodes)

    @property
    def input_shape(self) -> Shape:
        """The (first) input's shape."""
        return self.input_shapes[0]

    def in_shapes(self, index: int) -> list[Shape]:
        return [self.nodes[i].out_shape for i in self.nodes[index].inputs]

    def consumers(self) -> list[list[int]]:
        users: list[list[int]] = [[] for _ in self.nodes]
        for index, node in enumerate(self.nodes):
            for i in node.inputs:
                users[i].append(index)
        return users

    def op_counts(self) -> Counter[str]:
        return Counter(n.op for n in self.nodes if n.op != "input")

    def macs(self) -> int:
        """Multiply-accumulates of convolutions and linear layers (the usual 'FLOPs')."""
        return sum(self.node_macs(i) for i in range(len(self.nodes)))

    def node_macs(self, index: int) -> int:
        node = self.nodes[index]
        return OPS[node.op].macs(self.in_shapes(index), node.out_shape, node.attrs)

    def params(self) -> int:
        """Learnable parameters: weights and biases of conv/linear, affine of batchnorm."""
        return sum(OPS[n.op].params(self.in_shapes(i), n.out_shape, n.attrs) for i, n in enumerate(self.nodes))

    # -- canonical form ----------------------------------------------------------------------------
    def _signatures(self) -> list[str]:
        """A hash per node of its op, attributes, shape per sample and its producers' signatures.

        Only orders nodes (never stored), so a fast repr-based payload suffices; attribute values are
        ints, bools, strings and tuples of them, whose repr is stable across processes. Leading axes are
        taken per sample (divided by the batch), so a graph and its ``with_batch`` copies order their
        nodes alike: an imported network's weights, keyed by canonical position, fit every batch.
        """
        batch = self.input_shapes[0][0]

        def per_sample(shape: Sequence[int]) -> tuple[int, ...]:
            return (shape[0] // batch, *shape[1:]) if shape else ()

        sigs: list[str] = []
        for node in self.nodes:
            inputs = [sigs[i] for i in node.inputs]
            if OPS[node.op].commutative:
                inputs.sort()
            attrs = {**node.attrs, "shape": per_sample(node.attrs["shape"])} if "shape" in node.attrs else node.attrs
            payload = repr((node.op, _attrs_json(attrs), per_sample(node.out_shape), inputs))
            sigs.append(hashlib.blake2b(payload.encode(), digest_size=16).hexdigest())
        return sigs

    def canonical(self) -> ComputationGraph:
        """The same graph with nodes in canonical order (topological, ties broken by signature).

        Computed once per graph (graphs are immutable; its arch_id and every export ask for it), and a
        canonical graph is its own canonical form: signatures do not depend on the order of the nodes.
        """
        return self._canonical

    def canonical_positions(self) -> dict[int, int]:
        """Where each node of this graph lands in its canonical form (what carries per-node data, such as an
        imported network's weights, over to the canonical graph every export writes)."""
        return {old: new for new, old in enumerate(self._canonical_order[1])}

    @functools.cached_property
    def _canonical_order(self) -> tuple[list[str], list[int]]:
        """The nodes' signatures, and their indices in canonical order."""
        sigs = self._signatures()
        users = self.consumers()
        pending = [len(n.inputs) for n in self.nodes]
        ready = [(sigs[i], i) for i, n in enumerate(self.nodes) if not n.inputs]
        heapq.heapify(ready)
        order: list[int] = []
        while ready:
            _, index = heapq.heappop(ready)
            order.append(index)
            for user in users[index]:
                pending[user] -= 1
                if pending[user] == 0:
                    heapq.heappush(ready, (sigs[user], user))
        return sigs, order

    @functools.cached_property
    def _canonical(self) -> ComputationGraph:
        sigs, order = self._canonical_order
        new_index = {old: new for new, old in enumerate(order)}
        nodes = []
        for old in order:
            node = self.nodes[old]
            inputs = [new_index[i] for i in node.inputs]
            if OPS[node.op].commutative:
                inputs.sort(key=lambda i: sigs[order[i]])
            nodes.append(Node(node.op, tuple(inputs), node.out_shape, node.attrs))
        graph = ComputationGraph._unchecked(nodes, [new_index[o] for o in self.outputs])
        graph.__dict__["_canonical"] = graph
        return graph

    @classmethod
    def _unchecked(cls, nodes: Sequence[Node], outputs: Sequence[int]) -> ComputationGraph:
        """A graph not validated again: a topological renumbering of one that was (its canonical form)."""
        graph = cls.__new__(cls)
        graph.nodes, graph.outputs = tuple(nodes), tuple(outputs)
        return graph

    def with_batch(self, batch: int) -> ComputationGraph:
        """The same network taking ``batch`` samples at once: the leading axis of every shape scales.

        Every CG shape is batch-first: its leading axis is the batch times a count of the sample's own
        (1 for NCHW maps and (N, F) features; the windows or patch positions a network folds into the batch
        axis, as timm's Swin and MobileViT do, reshaping (B, H, W, C) to (B * windows, 7, 7, C)). Transposes
        keep that axis first, and a reshape keeps each sample's elements together in it, so scaling the
        leading axis of every shape by ``batch`` over the graph's own batch is exact. The arch_id of a
        network is that of its batch-1 graph; other batches are export-time.
        """
        if batch < 1:
            raise ValueError(f"batch must be >= 1, got {batch}")
        own = self.input_shapes[0][0]
        if own == batch and all(shape[0] == batch for shape in self.input_shapes):
            return self
        if any(node.out_shape[0] % own for node in self.nodes):
            raise ValueError(f"a leading axis of this graph is not a multiple of its batch {own}")

        def scaled(lead: int) -> int:
            return lead // own * batch

        nodes = []
        for node in self.nodes:
            attrs = dict(node.attrs)
            if "shape" in attrs:  # input and reshape name a full shape, batch first
                attrs["shape"] = (scaled(attrs["shape"][0]), *tuple(attrs["shape"])[1:])
            nodes.append(Node(node.op, node.inputs, (scaled(node.out_shape[0]), *node.out_shape[1:]), attrs))
        return ComputationGraph(nodes, self.outputs)

    def to_dict(self) -> dict[str, Any]:
        """Canonical, JSON-ready form."""
        graph = self.canonical()
        return {
            "format": CANONICAL_FORMAT,
            "nodes": [
                {"op": n.op, "inputs": list(n.inputs), "out_shape": list(n.out_shape), **_attrs_json(n.attrs)}
                for n in graph.nodes
            ],
            "outputs": list(graph.outputs),
        }

    def to_json(self, indent: int | None = None) -> str:
        if indent is None:
            return self._compact_json
        return json.dumps(self.to_dict(), sort_keys=True, indent=indent)

    @functools.cached_property
    def _compact_json(self) -> str:
        """The canonical form, computed once: graphs are immutable and it is asked for often."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @functools.cached_property
    def arch_id(self) -> str:
        """sha256 of the canonical JSON: the dataset key of this architecture."""
        return hashlib.sha256(self._compact_json.encode()).hexdigest()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ComputationGraph:
        if data.get("format") != CANONICAL_FORMAT:
            raise ValueError(f"format must be {CANONICAL_FORMAT!r}, got {data.get('format')!r}")
        nodes = []
        for index, raw in enumerate(data["nodes"]):
            raw = dict(raw)
            try:
                op, inputs, shape = raw.pop("op"), raw.pop("inputs"), raw.pop("out_shape")
            except KeyError as exc:
                raise ValueError(f"nodes[{index}] lacks field {exc.args[0]!r}") from None
            attrs = {k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()}
            nodes.append(Node(op, tuple(inputs), tuple(shape), attrs))
        return cls(nodes, data["outputs"])

    @classmethod
    def from_json(cls, text: str) -> ComputationGraph:
        return cls.from_dict(json.loads(text))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ComputationGraph) and self.to_json() == other.to_json()

    def __hash__(self) -> int:
        return hash(self.arch_id)

    def __repr__(self) -> str:
        counts = ", ".join(f"{op}={n}" for op, n in sorted(self.op_counts().items()))
        return f"ComputationGraph({len(self.nodes)} nodes, input {list(self.input_shape)}: {counts})"


def ancestors(nodes: Sequence[Node], outputs: Sequence[int]) -> set[int]:
    """The nodes that lead to ``outputs`` (themselves included)."""
    seen: set[int] = set()
    stack = list(outputs)
    while stack:
        index = stack.pop()
        if index not in seen:
            seen.add(index)
            stack.extend(nodes[index].inputs)
    return seen


def prune(nodes: Sequence[Node], outputs: Sequence[int]) -> ComputationGraph:
    """The graph of the nodes that lead to ``outputs``, renumbered; the rest is dropped."""
    keep = sorted(ancestors(nodes, outputs))
    new_index = {old: new for new, old in enumerate(keep)}
    kept = [Node(nodes[i].op, tuple(new_index[j] for j in nodes[i].inputs), nodes[i].out_shape, nodes[i].attrs)
            for i in keep]
    return ComputationGraph(kept, [new_index[o] for o in outputs])


def _attrs_json(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """The attributes, sorted and normalised; read-only (shared between nodes with equal attributes).

    A network repeats a few attribute sets hundreds of times and its arch_id normalises each twice (node
    signatures, canonical JSON), so equal sets are normalised once; unhashable values are normalised afresh.
    """
    items = tuple(sorted(attrs.items()))
    try:
        return _normalised_attrs(items)
    except TypeError:
        return {k: _norm_attr(v) for k, v in items}


@functools.lru_cache(maxsize=4096)
def _normalised_attrs(items: tuple[tuple[str, Any], ...]) -> dict[str, Any]:
    return {k: _norm_attr(v) for k, v in items}
