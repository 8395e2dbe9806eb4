"""NAS-Bench-101 (Ying et al. 2019): a cell of up to 7 vertices (input, 5 interior ops, output), stacked 3 x 3.

Encoding: the 21 upper-triangular bits of the 7x7 adjacency (row-major: 0->1 .. 0->6, 1->2 .. 1->6, ...,
5->6), then the op of interior vertices 1-5 (0 ``conv3x3-bn-relu``, 1 ``conv1x1-bn-relu``, 2 ``maxpool3x3``).
String form: the adjacency rows joined by "/" and the 7 vertex labels joined by "|", separated by "," (the
packaged NASLib sample table's ``adjacency`` and ``ops`` columns). A cell is a network when some path joins
input to output and, after NB-101's pruning (vertices off every input->output path removed), it keeps at most
9 edges. ``network_key`` is NB-101's isomorphism-invariant cell hash, so the 500 table rows are 292 networks.

Network (NB-101's ``model_builder``): stem conv 3x3 -> 128 + BN + ReLU; three stacks of three cells at 128,
256, 512 channels, a 2x2 max-pool before the second and third stacks; global average pool; linear 10. In a
cell, vertices feeding the output share its channels (``vertex_channels``), the others take the widest of what
they feed; a vertex's inputs are summed: other vertices' outputs truncated to its channels (the first ones
kept), and the cell input projected by conv 1x1 + BN + ReLU; the output concatenates the vertices that feed it
and adds the projected input if the input feeds it too.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

import numpy as np

from hwnas.controller.graph import ComputationGraph, GraphBuilder
from hwnas.controller.spaces.base import SearchSpace

OPS = ("conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3")
VERTICES = 7
EDGES = tuple((i, j) for i in range(VERTICES) for j in range(i + 1, VERTICES))  # 21, row-major
MAX_EDGES = 9
STEM_CHANNELS = 128
STACKS, CELLS_PER_STACK = 3, 3


def _matrix(x: Sequence[int]) -> np.ndarray:
    matrix = np.zeros((VERTICES, VERTICES), dtype=np.int64)
    for (i, j), bit in zip(EDGES, x[:len(EDGES)], strict=True):
        matrix[i, j] = bit
    return matrix


def prune(matrix: np.ndarray, ops: list[str]) -> tuple[np.ndarray, list[str]] | None:
    """NB-101's ``ModelSpec._prune``: drop vertices off every input->output path; None if no such path."""
    n = len(matrix)
    forward, frontier = {0}, [0]
    while frontier:
        v = frontier.pop()
        for w in range(v + 1, n):
            if matrix[v, w] and w not in forward:
                forward.add(w)
                frontier.append(w)
    backward, frontier = {n - 1}, [n - 1]
    while frontier:
        v = frontier.pop()
        for w in range(v):
            if matrix[w, v] and w not in backward:
                backward.add(w)
                frontier.append(w)
    keep = sorted(forward & backward)
    if n - 1 not in forward:
        return None
    return matrix[np.ix_(keep, keep)], [ops[k] for k in keep]


def cell_hash(matrix: np.ndarray, ops: Sequence[str]) -> str:
    """NB-101's ``hash_module`` (labels: input -1, the op's index in OPS, output -2) of a pruned cell."""
    labels = [-1] + [OPS.index(op) for op in ops[1:-1]] + [-2]
    n = len(matrix)
    in_edges, out_edges = matrix.sum(axis=0).tolist(), matrix.sum(axis=1).tolist()
    hashes = [hashlib.md5(str(h).encode()).hexdigest() for h in zip(out_edges, in_edges, labels, strict=True)]
    for _ in range(n):
        hashes = [hashlib.md5(("".join(sorted(hashes[w] for w in range(n) if matrix[w, v])) + "|"
                               + "".join(sorted(hashes[w] for w in range(n) if matrix[v, w])) + "|"
                               + hashes[v]).encode()).hexdigest() for v in range(n)]
    return hashlib.md5(str(sorted(hashes)).encode()).hexdigest()


def vertex_channels(in_channels: int, out_channels: int, matrix: np.ndarray) -> list[int]:
    """NB-101's ``compute_vertex_channels``."""
    n = len(matrix)
    channels = [0] * n
    channels[0], channels[n - 1] = in_channels, out_channels
    if n == 2:
        return channels
    in_degree = matrix[1:].sum(axis=0)
    interior, correction = divmod(out_channels, int(in_degree[n - 1]))
    for v in range(1, n - 1):
        if matrix[v, n - 1]:
            channels[v] = interior + (1 if correction else 0)
            correction = max(0, correction - 1)
    for v in range(n - 3, 0, -1):
        if not matrix[v, n - 1]:
            for dst in range(v + 1, n - 1):
                if matrix[v, dst]:
                    channels[v] = max(channels[v], channels[dst])
    return channels


class NasBench101(SearchSpace):
    name = "nb101"
    description = "NAS-Bench-101: 7-vertex cells (21 edges, 5 ops of conv3x3/conv1x1/maxpool), 3x3 stacked, CIFAR-10"
    accuracy_table = "naslib-nb101"
    label_table = "naslib-nb101"

    def __init__(self, num_classes: int = 10, resolution: int = 32) -> None:
        self.num_classes, self.resolution = num_classes, resolution

    @property
    def n_var(self) -> int:
        return len(EDGES) + VERTICES - 2

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return (np.zeros(self.n_var, dtype=int),
                np.array([1] * len(EDGES) + [len(OPS) - 1] * (VERTICES - 2), dtype=int))

    def variable_name(self, i: int) -> str:
        if i < len(EDGES):
            return f"edge {EDGES[i][0]}->{EDGES[i][1]}"
        return f"op of vertex {i - len(EDGES) + 1}"

    def validate(self, x: Sequence[int]) -> list[int]:
        return self._check_length(x)

    def decode(self, x: Sequence[int]) -> dict[str, list]:
        x = self.validate(x)
        return {"matrix": _matrix(x).tolist(), "ops": ["input", *[OPS[v] for v in x[len(EDGES):]], "output"]}

    def encode(self, arch: Mapping[str, Sequence]) -> list[int]:
        matrix = np.asarray(arch["matrix"], dtype=np.int64)
        ops = list(arch["ops"])
        if matrix.shape != (VERTICES, VERTICES) or len(ops) != VERTICES:
            raise ValueError(f"an nb101 cell is a {VERTICES}x{VERTICES} adjacency and {VERTICES} vertex labels")
        if np.tril(matrix).any():
            raise ValueError("an nb101 adjacency is upper-triangular (edges go from lower to higher vertices)")
        if ops[0] != "input" or ops[-1] != "output" or any(op not in OPS for op in ops[1:-1]):
            raise ValueError(f"nb101 vertex labels: input, then ops of {list(OPS)}, then output; got {ops}")
        return self.validate([int(matrix[i, j]) for i, j in EDGES] + [OPS.index(op) for op in ops[1:-1]])

    def to_string(self, x: Sequence[int]) -> str:
        arch = self.decode(x)
        return "/".join("".join(map(str, row)) for row in arch["matrix"]) + "," + "|".join(arch["ops"])

    def from_string(self, text: str) -> list[int]:
        rows_text, sep, ops_text = text.strip().partition(",")
        rows = rows_text.split("/")
        if not sep or len(rows) != VERTICES or any(len(r) != VERTICES or set(r) - {"0", "1"} for r in rows):
            raise ValueError(f"an nb101 cell is written '0111101/0000011/.../0000000,input|maxpool3x3|...|output' "
                             f"(7 rows of 7 bits, then 7 labels), got {text!r}")
        return self.encode({"matrix": [[int(c) for c in r] for r in rows], "ops": ops_text.split("|")})

    def size(self) -> int:
        return 2 ** len(EDGES) * len(OPS) ** (VERTICES - 2)

    def pruned(self, x: Sequence[int]) -> tuple[np.ndarray, list[str]] | None:
        arch = self.decode(x)
        return prune(np.asarray(arch["matrix"]), arch["ops"])

    def has_network(self, x: Sequence[int]) -> bool:
        cell = self.pruned(x)
        return cell is not None and int(cell[0].sum()) <= MAX_EDGES

    def network_key(self, x: Sequence[int]) -> tuple[int, ...]:
        cell = self.pruned(x)
        if cell is None:
            return tuple(self.canonical(x))
        return tuple(bytes.fromhex(cell_hash(*cell)))

    def enumerate(self):
        raise NotImplementedError(f"nb101 has {self.size():.3g} encodings: too many to enumerate")

    def to_graph(self, x: Sequence[int]) -> ComputationGraph:
        cell = self.pruned(x)
        if cell is None:
            raise ValueError(f"nb101 cell {self.to_string(x)} has no input->output path: no network")
        matrix, ops = cell
        b = GraphBuilder((1, 3, self.resolution, self.resolution))
        h, channels = b.conv_bn_act(b.input, STEM_CHANNELS, 3), STEM_CHANNELS
        for stack in range(STACKS):
            if stack:
                h = b.pool("maxpool", h, 2, 2)
                channels *= 2
            for _ in range(CELLS_PER_STACK):
                h = self._cell(b, h, channels, matrix, ops)
        h = b.op("flatten", b.op("global_avgpool", h))
        return b.build(b.linear(h, self.num_classes))

    @staticmethod
    def _cell(b: GraphBuilder, x: int, channels: int, matrix: np.ndarray, ops: list[str]) -> int:
        n = len(matrix)
        width = vertex_channels(b.shape(x)[1], channels, matrix)
        tensors, concat = [x], []
        for t in range(1, n - 1):
            summed = [b.slice_channels(tensors[src], width[t]) if b.shape(tensors[src])[1] > width[t]
                      else tensors[src] for src in range(1, t) if matrix[src, t]]
            if matrix[0, t]:
                summed.append(b.conv_bn_act(x, width[t], 1))
            y = summed[0]
            for other in summed[1:]:
                y = b.op("add", y, other)
            if ops[t] == "maxpool3x3":
                y = b.pool("maxpool", y, 3, 1, 1)
            else:
                y = b.conv_bn_act(y, width[t], 3 if ops[t] == "conv3x3-bn-relu" else 1)
            tensors.append(y)
            if matrix[t, n - 1]:
                concat.append(y)
        if not concat:
            return b.conv_bn_act(x, channels, 1)
        out = concat[0] if len(concat) == 1 else b.op("concat", *concat)
        return b.op("add", out, b.conv_bn_act(x, channels, 1)) if matrix[0, n - 1] else out



