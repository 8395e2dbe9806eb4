"""Per-layer latencies measured on a device, for the layer-wise predictor (BRP-NAS §3.1's baseline).

A *layer* is one CG node as the device sees it: its op, its attributes and the shapes of its inputs. Each
distinct layer becomes a small graph of its own (an input and that op) and is measured by the device's
agents like any model, stored under the space ``layers``. A network's layer sum is the sum of its layers'
latencies; the layer-wise predictor only fits one scale factor on top (``hwnas.predictors.linear``).

A layer whose extra inputs have another shape than its first (a concat of unequal channel counts, the
channel-wise ``mul`` of a squeeze-excite block) needs helper ops to make those inputs from the one graph
input. The helpers are layers too: they are measured on their own and subtracted.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from hwnas.controller.graph import ComputationGraph
from hwnas.controller.graph.builder import GraphBuilder
from hwnas.controller.graph.ops import Shape
from hwnas.controller.spaces import Candidate

LAYER_SPACE = "layers"  # the store's space name for single-layer graphs
NOT_LAYERS = ("input",)  # nodes that run nothing on the device


@dataclass(frozen=True)
class Layer:
    op: str
    attrs_json: str  # canonical JSON of the attributes: hashable, and the same for equal attributes
    in_shapes: tuple[Shape, ...]

    @property
    def key(self) -> str:
        """The layer's name in the store (its ``arch`` there) and in a layer table."""
        shapes = ";".join("x".join(map(str, s)) for s in self.in_shapes)
        return f"{self.op}{self.attrs_json}@{shapes}"

    def graph(self) -> tuple[ComputationGraph, list[Layer]]:
        """A graph that runs this layer once on its own, and the helper layers inside it to subtract."""
        builder = GraphBuilder(self.in_shapes[0])
        first = builder.input
        inputs, helpers = [first], []
        for shape in self.in_shapes[1:]:
            index, made_by = _make_input(builder, first, shape)
            inputs.append(index)
            helpers += made_by
        out = builder.add_node(self.op, inputs, **json.loads(self.attrs_json))
        return builder.build(out), helpers


def _make_input(builder: GraphBuilder, source: int, shape: Shape) -> tuple[int, list[Layer]]:
    """A node of ``shape`` computed from ``source`` (pooling to the size, a 1x1 conv to the channels)."""
    have = builder.shape(source)
    if tuple(have) == tuple(shape):
        return source, []
    if len(have) != 4 or len(shape) != 4 or have[0] != shape[0]:
        raise ValueError(f"cannot make a {list(shape)} input from a {list(have)} one to isolate a layer")
    index, made_by = source, []
    if tuple(shape[2:]) == (1, 1) and tuple(have[2:]) != (1, 1):
        index = _helper(builder, made_by, index, builder.op("global_avgpool", index))
    elif tuple(shape[2:]) != tuple(have[2:]):
        factor = have[2] // shape[2]
        if factor < 1 or have[2] != shape[2] * factor or have[3] != shape[3] * factor:
            raise ValueError(f"cannot pool a {list(have)} input to {list(shape)} to isolate a layer")
        index = _helper(builder, made_by, index, builder.pool("avgpool", index, factor))
    if shape[1] != builder.shape(index)[1]:
        index = _helper(builder, made_by, index, builder.conv(index, shape[1], 1))
    return index, made_by


def _helper(builder: GraphBuilder, made_by: list[Layer], source: int, made: int) -> int:
    """Record the node ``made`` from ``source`` as a helper layer; returns ``made``."""
    made_by.append(Layer(builder.node(made).op, _attrs_json(builder.node(made).attrs), (builder.shape(source),)))
    return made


def _attrs_json(attrs: Mapping) -> str:
    return json.dumps(dict(attrs), sort_keys=True, separators=(",", ":"))


def layer_at(graph: ComputationGraph, index: int) -> Layer:
    """Node ``index`` of ``graph`` as a layer."""
    node = graph.nodes[index]
    return Layer(node.op, _attrs_json(node.attrs), tuple(graph.in_shapes(index)))


def layers_of(graph: ComputationGraph) -> list[Layer]:
    """Every node that runs on the device, as a layer, in graph order (repeats included: they add up)."""
    return [layer_at(graph, i) for i, node in enumerate(graph.nodes) if node.op not in NOT_LAYERS]


def distinct_layers(graphs: Iterable[ComputationGraph]) -> list[Layer]:
    """The layers to measure for these graphs: each distinct one once, with the helpers they need."""
    seen: dict[str, Layer] = {}
    for graph in graphs:
        for layer in layers_of(graph):
            if layer.key not in seen:
                seen[layer.key] = layer
                for helper in layer.graph()[1]:
                    seen.setdefault(helper.key, helper)
    return list(seen.values())


def layer_ms(layer: Layer, graph_ms: Mapping[str, float]) -> float:
    """A layer's own latency: its graph's measured latency (by key) less its helpers'; never < 0."""
    missing = [k for k in (layer.key, *(h.key for h in layer.graph()[1])) if k not in graph_ms]
    if missing:
        raise ValueError(f"no measured latency for layer {missing[0]}: measure the device's layers with "
                         "`hwnas predictor layers`")
    return max(0.0, graph_ms[layer.key] - sum(graph_ms[h.key] for h in layer.graph()[1]))


def layer_sums(graphs: Sequence[ComputationGraph], graph_ms: Mapping[str, float]) -> np.ndarray:
    """Each graph's sum of its layers' own latencies, from the layer graphs' measured latencies by key."""
    own: dict[str, float] = {}
    sums = np.zeros(len(graphs))
    for k, graph in enumerate(graphs):
        for layer in layers_of(graph):
            if layer.key not in own:
                own[layer.key] = layer_ms(layer, graph_ms)
            sums[k] += own[layer.key]
    return sums


def measured_layers(store, device_key: str) -> dict[str, float]:
    """The latest measured latency of each layer graph on a device key, by layer key."""
    return {r["arch"]: float(r["latency_ms"]) for r in store.measurements(device_key) if r["space"] == LAYER_SPACE}


def layer_jobs(layers: Sequence[Layer]) -> list[Candidate]:
    """Candidates for the evaluator (``hwnas predictor layers``): the layer key names the graph."""
    return [Candidate.of_graph(LAYER_SPACE, layer.key, layer.graph()[0]) for layer in layers]
