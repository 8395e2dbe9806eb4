"""NAS-Bench-201: a 4-node cell with 6 edges, 5 ops each (15,625 cells) in a fixed macro skeleton.

Encoding: the 6 edge ops in arch-string order (1<-0), (2<-0), (2<-1), (3<-0), (3<-1), (3<-2), each an
index into ``OPS`` - exactly the Eagle/BRP-NAS "arch vector". The NB-201 index is the row of the
benchmark's table (packaged in ``controller/data/nb201``), which is not a formula of the encoding.

CG: 3x3 conv stem (16 ch) + BN; three stages of 5 cells at C = 16/32/64 joined by residual reduction
blocks; BN-ReLU; global pool; linear. In the cell, ``none`` edges are removed, ``skip_connect`` edges
are identity ops, convolutions are ReLU-Conv-BN, and nodes no longer on an input->output path are
pruned, as LatBench did. The 341 cells with no such path compute nothing and have no CG.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterator, Mapping, Sequence

import numpy as np

from hwnas.controller.data import nb201_table
from hwnas.controller.graph import ComputationGraph, GraphBuilder
from hwnas.controller.spaces.base import SearchSpace

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
EDGES = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))  # (to, from) in arch-string order
STAGE_CHANNELS = (16, 32, 64)
CELLS_PER_STAGE = 5


def parse_arch_str(text: str) -> list[int]:
    """'|op~0|+|op~0|op~1|+|op~0|op~1|op~2|' -> 6 op indices; errors name the bad part."""
    nodes = text.strip().split("+")
    if len(nodes) != 3:
        raise ValueError(f"NB-201 arch string must have 3 '+'-separated nodes, got {len(nodes)}: {text!r}")
    encoding = []
    for node_index, node in enumerate(nodes, start=1):
        if not (node.startswith("|") and node.endswith("|")):
            raise ValueError(f"NB-201 node {node_index} must be wrapped in '|': {node!r}")
        edges = node[1:-1].split("|")
        if len(edges) != node_index:
            raise ValueError(f"NB-201 node {node_index} must have {node_index} edge(s), got {len(edges)}: {node!r}")
        for source, edge in enumerate(edges):
            op, sep, origin = edge.partition("~")
            if op not in OPS:
                raise ValueError(f"NB-201 edge {node_index}<-{source}: unknown op {op!r}; allowed: {list(OPS)}")
            if not sep or origin != str(source):
                raise ValueError(f"NB-201 edge {edge!r} of node {node_index} must read from node {source}")
            encoding.append(OPS.index(op))
    return encoding


def format_arch_str(encoding: Sequence[int]) -> str:
    ops = [OPS[i] for i in encoding]
    return "|{}~0|+|{}~0|{}~1|+|{}~0|{}~1|{}~2|".format(*ops)


def live_edges(encoding: Sequence[int]) -> list[tuple[int, int, str]]:
    """(to, from, op) of the edges on some input->output path, 'none' edges removed."""
    edges = [(to, src, OPS[op]) for (to, src), op in zip(EDGES, encoding, strict=True) if OPS[op] != "none"]
    forward = {0}
    for to, src, _ in edges:  # EDGES are in topological order of 'to'
        if src in forward:
            forward.add(to)
    backward = {3}
    for to, src, _ in reversed(edges):
        if to in backward:
            backward.add(src)
    on_path = forward & backward
    return [(to, src, op) for to, src, op in edges if src in on_path and to in on_path]


@functools.cache
def _index_of() -> dict[str, int]:
    return {row["arch_str"]: int(row["nb201_index"]) for row in nb201_table()}


class NasBench201(SearchSpace):
    name = "nb201"
    description = "NAS-Bench-201 cells (15,625) in the CIFAR skeleton; 32x32 input"
    predictor_features = "nb201-cell"
    accuracy_table = "nb201"
    label_table = "nb201"

    def __init__(self, num_classes: int = 10, resolution: int = 32, batch_size: int = 1) -> None:
        if num_classes not in (10, 100, 120):
            raise ValueError(f"num_classes must be 10 (CIFAR-10), 100 (CIFAR-100) or 120 (ImageNet16-120), "
                             f"got {num_classes}")
        self.num_classes, self.resolution, self.batch_size = num_classes, resolution, batch_size

    @property
    def n_var(self) -> int:
        return 6

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return np.zeros(6, dtype=int), np.full(6, len(OPS) - 1, dtype=int)

    def variable_name(self, i: int) -> str:
        to, src = EDGES[i]
        return f"edge {to}<-{src}"

    def validate(self, x: Sequence[int]) -> list[int]:
        return self._check_length(x)

    def decode(self, x: Sequence[int]) -> dict[str, list[str]]:
        """{'ops': the 6 edge ops by name, in arch-string order}."""
        return {"ops": [OPS[v] for v in self.validate(x)]}

    def encode(self, arch: Mapping[str, Sequence[str]]) -> list[int]:
        ops = list(arch.get("ops", ()))
        if len(ops) != 6 or any(op not in OPS for op in ops):
            raise ValueError(f"NB-201 'ops' must be 6 op names from {list(OPS)}, got {ops}")
        return [OPS.index(op) for op in ops]

    def size(self) -> int:
        return len(OPS) ** 6

    def enumerate(self) -> Iterator[list[int]]:
        for combo in itertools.product(range(len(OPS)), repeat=6):
            yield list(combo)

    def to_string(self, x: Sequence[int]) -> str:
        return format_arch_str(self.validate(x))

    def from_string(self, text: str) -> list[int]:
        return parse_arch_str(text)

    def is_connected(self, x: Sequence[int]) -> bool:
        return bool(live_edges(self.validate(x)))

    has_network = is_connected

    def sample(self, rng: np.random.Generator) -> list[int]:
        """A uniformly random connected cell (unconnected cells have no network)."""
        while True:
            x = super().sample(rng)
            if self.is_connected(x):
                return x

    # -- NB-201 index and Eagle vector -------------------------------------------------------------
    def to_index(self, x: Sequence[int]) -> int:
        return _index_of()[self.to_string(x)]

    def from_index(self, index: int) -> list[int]:
        table = nb201_table()
        if not 0 <= int(index) < len(table):
            raise ValueError(f"NB-201 index must be in [0, {len(table) - 1}], got {index}")
        return parse_arch_str(table[int(index)]["arch_str"])

    def to_eagle_vector(self, x: Sequence[int]) -> list[int]:
        """Eagle/BRP-NAS arch vector: identical to this encoding (none=0, skip=1, 1x1=2, 3x3=3, pool=4)."""
        return self.validate(x)

    def from_eagle_vector(self, vector: Sequence[int]) -> list[int]:
        return self.validate(vector)

    # -- CG ----------------------------------------------------------------------------------------
    def _cell(self, b: GraphBuilder, x: int, channels: int, edges: list[tuple[int, int, str]],
              dead_ends: list[int] | None = None) -> int:
        """The cell's output node. ``edges`` are live ones for the network; all non-``none`` ones for the
        reference network, where a node nothing feeds holds zeros of the input's shape (its ops read ``x``
        here) and, with ``dead_ends``, nodes whose result feeds nothing are collected there."""
        nodes = {0: x}
        for target in (1, 2, 3):
            terms = []
            for to, src, op in edges:
                if to != target:
                    continue
                inp = nodes.get(src, x)
                if op == "skip_connect":
                    terms.append(b.op("identity", inp))
                elif op == "avg_pool_3x3":
                    terms.append(b.pool("avgpool", inp, 3, 1, 1, count_include_pad=False))
                else:
                    kernel = 3 if op == "nor_conv_3x3" else 1
                    terms.append(b.op("batchnorm", b.conv(b.op("relu", inp), channels, kernel)))
            if terms:
                total = terms[0]
                for term in terms[1:]:
                    total = b.op("add", total, term)
                nodes[target] = total
        if dead_ends is not None:
            read = {src for _, src, _ in edges}
            dead_ends += [nodes[n] for n in (1, 2) if n in nodes and n not in read]
        return nodes[3]

    def _reduction(self, b: GraphBuilder, x: int, cin: int, cout: int) -> int:
        """NB-201's ResNet basic block with stride 2: two ReLU-Conv-BN, avg-pool + 1x1 conv shortcut."""
        y = b.op("batchnorm", b.conv(b.op("relu", x), cout, 3, stride=2))
        y = b.op("batchnorm", b.conv(b.op("relu", y), cout, 3))
        shortcut = b.conv(b.pool("avgpool", x, 2, 2, 0), cout, 1)
        return b.op("add", shortcut, y)

    def network_key(self, x: Sequence[int]) -> tuple[int, ...]:
        """Edges off every input->output path are pruned from the network, so they are 'none' in the key:
        the cells that prune to one network (28-42 % of a search's evaluations were such twins) share it."""
        x = self.validate(x)
        live = {(to, src) for to, src, _ in live_edges(x)}
        return tuple(op if edge in live else 0 for edge, op in zip(EDGES, x, strict=True))

    def to_graph(self, x: Sequence[int]) -> ComputationGraph:
        x = self.validate(x)
        return self._network(x, live_edges(x), None)

    def reference_graph(self, x: Sequence[int]) -> ComputationGraph:
        """The network as NB-201's reference code runs it, to featurise what devices timed that way
        (HW-NAS-Bench's columns): every non-``none`` edge op, also those off every input-output path (on a
        node nothing feeds, which holds zeros, they read the cell input: the same shapes, the same work),
        nodes whose result feeds nothing kept as extra outputs. A featurisation only; the network a campaign
        exports and names is ``to_graph``'s, with those ops pruned."""
        x = self.validate(x)
        edges = [(to, src, OPS[op]) for (to, src), op in zip(EDGES, x, strict=True) if OPS[op] != "none"]
        return self._network(x, edges, [])

    def _network(self, x: list[int], edges: list[tuple[int, int, str]], dead_ends: list[int] | None
                 ) -> ComputationGraph:
        if not live_edges(x):
            raise ValueError(f"NB-201 cell {format_arch_str(x)} has no path from input to output: it computes "
                             "nothing (one of the 341 unconnected cells LatBench leaves out)")
        b = GraphBuilder((self.batch_size, 3, self.resolution, self.resolution))
        h = b.op("batchnorm", b.conv(b.input, STAGE_CHANNELS[0], 3))
        for stage, channels in enumerate(STAGE_CHANNELS):
            if stage:
                h = self._reduction(b, h, STAGE_CHANNELS[stage - 1], channels)
            for _ in range(CELLS_PER_STAGE):
                h = self._cell(b, h, channels, edges, dead_ends)
        h = b.op("relu", b.op("batchnorm", h))
        h = b.op("flatten", b.op("global_avgpool", h))
        logits = b.linear(h, self.num_classes)
        return b.build(logits, *(dead_ends or ()))
