"""Layer and kernel latencies read from whole networks' per-op profiles (issue #37).

``hwnas predictor layers`` times each layer as a model of its own, so the device runs it alone and unfused.
A per-op profile (``--op-profile``) times the same layers inside the networks the device really runs, as
the runtime fused them, at no extra job. Two views of a device key's profiles feed the layer-wise
predictor's one scale factor (``hwnas.predictors.linear``) as its layer sum:

- **profiled layers** (BRP-NAS's layer-wise predictor): a layer's time is the median, over every profiled
  network it occurs in, of the kernel it led (a fused kernel's time goes to its member with the most MACs, the
  others count 0: a batchnorm folded into its conv costs nothing of its own). A layer no profile saw has none.
- **kernels** (nn-Meter's kernel view): the profiles' kernels teach which op pairs the runtime fuses and what
  each kernel type costs (``hwnas.predictors.kernel_model``); a network is cut into kernels by those fusions and
  its sum is its kernels' predicted times, so it reaches layers and shapes no profile saw.

A profile names its ops after the exporter's node names (``graph.onnx_export.node_of_name``); an op that
names no CG node (a layout reorder) is the runtime's own and counts for no layer. A CG node the profile does
not name was fused: into its only consumer when it does the work (a conv whose batchnorm names the kernel),
else into its only producer (an activation after a conv).
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from hwnas.controller.graph import ComputationGraph
from hwnas.controller.graph.onnx_export import node_of_name
from hwnas.controller.learning.layer_latency import NOT_LAYERS, layer_at
from hwnas.predictors.kernel_model import KernelModel

# (graph, its op profile: {name, op_type, time_ms} per op); any graph, canonicalised here
Profiled = tuple[ComputationGraph, Sequence[Mapping]]


@dataclass(frozen=True)
class Kernel:
    """One unit the runtime executed: the CG nodes (canonical indices, in order) it ran, and its time."""

    members: tuple[int, ...]
    time_ms: float


def profile_kernels(graph: ComputationGraph, op_profile: Sequence[Mapping]) -> tuple[list[Kernel], float]:
    """The kernels of one profiled run of ``graph``, and the profile's time that names no CG node (ms)."""
    graph = graph.canonical()
    kernel_of: dict[int, int] = {}
    times: list[float] = []
    unclaimed = 0.0
    for op in op_profile:
        node = node_of_name(str(op.get("name", "")), graph.outputs)
        time_ms = float(op["time_ms"])
        if node is None or node >= len(graph.nodes) or graph.nodes[node].op in NOT_LAYERS:
            unclaimed += time_ms
        elif node in kernel_of:  # one node the runtime ran in parts
            times[kernel_of[node]] += time_ms
        else:
            kernel_of[node] = len(times)
            times.append(time_ms)
    _fuse_unnamed(graph, kernel_of, times)
    members: dict[int, list[int]] = {}
    for node, kernel in sorted(kernel_of.items()):
        members.setdefault(kernel, []).append(node)
    return [Kernel(tuple(nodes), times[kernel]) for kernel, nodes in members.items()], unclaimed


def _fuse_unnamed(graph: ComputationGraph, kernel_of: dict[int, int], times: list[float]) -> None:
    """Put each node the profile does not name into the kernel it was fused into (kernels are numbered in the
    order they ran); one the runtime elided, with no neighbour to be fused into, becomes a kernel of 0 ms.

    A node doing work (a conv) went down its chain to the kernel named after a later member (onnxruntime names
    a conv+batchnorm+relu after the relu); any other went into its producer's kernel (the relu after a conv),
    and one of several inputs (a residual add) into the producer that ran last, since it runs once both are
    ready; failing that, down its chain too.
    """
    consumers = graph.consumers()
    nodes = [i for i, node in enumerate(graph.nodes) if node.op not in NOT_LAYERS]

    def down(i: int) -> int | None:
        while len(consumers[i]) == 1 and len(graph.nodes[consumers[i][0]].inputs) == 1:
            i = consumers[i][0]
            if i in kernel_of:
                return kernel_of[i]
        return None

    def up(i: int) -> int | None:
        ran = [kernel_of[p] for p in graph.nodes[i].inputs if p in kernel_of and consumers[p] == [i]]
        return max(ran) if ran else None

    for passing, order in ((lambda i: down(i) if graph.node_macs(i) > 0 else None, reversed(nodes)),
                           (up, nodes), (down, reversed(nodes))):
        for i in order:
            if i not in kernel_of and (kernel := passing(i)) is not None:
                kernel_of[i] = kernel
    for i in nodes:
        if i not in kernel_of:
            kernel_of[i] = len(times)
            times.append(0.0)


def _lead(graph: ComputationGraph, members: Sequence[int]) -> int:
    """The member a kernel's time is booked to: the one doing the most work, the first of equals."""
    return max(members, key=lambda i: (graph.node_macs(i), -i))


def profiled_layer_times(profiled: Iterable[Profiled]) -> dict[str, float]:
    """Each layer's time (ms, by ``Layer.key``): the median over its occurrences in the profiled networks of the
    time booked to it (its kernel's when it led one, else 0)."""
    occurrences: dict[str, list[float]] = {}
    for graph, op_profile in profiled:
        graph = graph.canonical()
        kernels, _ = profile_kernels(graph, op_profile)
        booked = {_lead(graph, k.members): k.time_ms for k in kernels}
        for i, node in enumerate(graph.nodes):
            if node.op not in NOT_LAYERS:
                occurrences.setdefault(layer_at(graph, i).key, []).append(booked.get(i, 0.0))
    return {key: statistics.median(times) for key, times in occurrences.items()}


def profiled_layer_sums(graphs: Sequence[ComputationGraph], times: Mapping[str, float]) -> np.ndarray:
    """Each graph's sum of its layers' profiled times; ValueError naming a layer no profile saw."""
    sums = np.zeros(len(graphs))
    for k, graph in enumerate(graphs):
        graph = graph.canonical()
        for i, node in enumerate(graph.nodes):
            if node.op in NOT_LAYERS:
                continue
            key = layer_at(graph, i).key
            if key not in times:
                raise ValueError(f"no op profile holds layer {key}: measure networks that contain it with op "
                                 "profiles, or learn from kernels, which predict unseen layers")
            sums[k] += times[key]
    return sums


@dataclass
class KernelView:
    """nn-Meter's kernel view of one device: which op pairs its runtime fuses, and each kernel type's cost."""

    fuses: frozenset[tuple[str, str]]  # (producer op, consumer op) pairs fused in most profiled occurrences
    model: KernelModel

    @classmethod
    def learn(cls, profiled: Iterable[Profiled]) -> KernelView:
        fused, seen = Counter(), Counter()
        types, features, times = [], [], []
        for graph, op_profile in profiled:
            graph = graph.canonical()
            kernels, _ = profile_kernels(graph, op_profile)
            kernel_of = {i: k for k, kernel in enumerate(kernels) for i in kernel.members}
            for producer, consumer in _fusable_edges(graph):
                pair = (graph.nodes[producer].op, graph.nodes[consumer].op)
                seen[pair] += 1
                fused[pair] += kernel_of[producer] == kernel_of[consumer]
            for kernel in kernels:
                types.append(kernel_type(graph, kernel.members))
                features.append(kernel_features(graph, kernel.members))
                times.append(kernel.time_ms)
        if not types:
            raise ValueError("no op profiles to learn kernels from: measure networks with op profiles first")
        return cls(frozenset(pair for pair, n in seen.items() if fused[pair] * 2 > n),
                   KernelModel().fit(types, np.array(features), np.array(times)))

    def kernels(self, graph: ComputationGraph) -> list[tuple[int, ...]]:
        """``graph`` (canonical) cut into kernels by the fusions learnt: members of each, in order."""
        graph = graph.canonical()
        group = {i: i for i, node in enumerate(graph.nodes) if node.op not in NOT_LAYERS}
        for producer, consumer in _fusable_edges(graph):  # in graph order: a chain joins its head's kernel, and
            if (graph.nodes[producer].op, graph.nodes[consumer].op) in self.fuses:  # an add its last producer's
                group[consumer] = group[producer]
        members: dict[int, list[int]] = {}
        for i, head in sorted(group.items()):
            members.setdefault(head, []).append(i)
        return [tuple(nodes) for nodes in members.values()]

    def sums(self, graphs: Sequence[ComputationGraph]) -> np.ndarray:
        """Each graph's sum of its kernels' predicted times (ms)."""
        out = np.zeros(len(graphs))
        for k, graph in enumerate(graphs):
            graph = graph.canonical()
            cut = self.kernels(graph)
            out[k] = self.model.predict([kernel_type(graph, m) for m in cut],
                                        np.array([kernel_features(graph, m) for m in cut])).sum()
        return out


def _fusable_edges(graph: ComputationGraph) -> list[tuple[int, int]]:
    """Edges a runtime can fuse along, in graph order: the producer feeds only the consumer (which may read
    others too, as a residual add does)."""
    consumers = graph.consumers()
    return [(p, i) for i, node in enumerate(graph.nodes) if node.op not in NOT_LAYERS
            for p in sorted(set(node.inputs)) if consumers[p] == [i] and graph.nodes[p].op not in NOT_LAYERS]


def kernel_type(graph: ComputationGraph, members: Sequence[int]) -> str:
    return "+".join(graph.nodes[i].op for i in members)


def kernel_features(graph: ComputationGraph, members: Sequence[int]) -> list[float]:
    """``hwnas.predictors.kernel_model.FEATURES``: millions of MACs, MB moved (inputs from outside the kernel, the
    outputs it hands on and its parameters, at 4 bytes), and 1."""
    inside = set(members)
    consumers = graph.consumers()
    elements = 0
    for i in members:
        node = graph.nodes[i]
        elements += sum(int(np.prod(graph.nodes[j].out_shape)) for j in node.inputs if j not in inside)
        if i in graph.outputs or any(c not in inside for c in consumers[i]):
            elements += int(np.prod(node.out_shape))
        elements += _params(graph, i)
    return [sum(graph.node_macs(i) for i in members) / 1e6, elements * 4 / 1e6, 1.0]


def _params(graph: ComputationGraph, index: int) -> int:
    from hwnas.controller.graph.ops import OPS

    node = graph.nodes[index]
    return OPS[node.op].params(graph.in_shapes(index), node.out_shape, node.attrs)
