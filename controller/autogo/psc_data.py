"""Training and evaluating the PSC predictor: CGs with accuracy labels -> {P, S, C} decompositions.

A network segmented with the database's full vocabulary has one decomposition per segment (that segment as
S, the nodes before it as P, after it as C); all of them carry the network's label. Evaluation follows
AutoGO (A.2.2): the test set is split into folds, each holding one decomposition of every test network, so
ties in the labels do not inflate Spearman's rho; the folds' rho are averaged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np

from hwnas.controller.autogo.database import SegmentDatabase
from hwnas.controller.graph.ir import ComputationGraph
from hwnas.controller.learning.data import cg_graph
from hwnas.predictors import Samples
from hwnas.predictors.samples import graph_array


def partitioned(graph: ComputationGraph, part: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``partitioned`` view of one decomposition: CG node features, edges within a part, parts."""
    x, edges = cg_graph(graph)
    keep = part[edges[0]] == part[edges[1]]
    return x, np.ascontiguousarray(edges[:, keep]), part


def decompositions(database: SegmentDatabase, graph: ComputationGraph) -> list[np.ndarray]:
    """One part array (0 P, 1 S, 2 C per node) for every segment of ``graph`` (in its own node order)."""
    out = []
    for where in database.segment(graph):
        part = np.full(len(graph.nodes), 2, dtype=np.int64)
        part[: where.nodes[0]] = 0
        part[where.nodes[0]: where.nodes[-1] + 1] = 1
        out.append(part)
    return out


def psc_samples(database: SegmentDatabase, graphs: Sequence[ComputationGraph], y: Sequence[float],
                per_graph: int | None, rng: np.random.Generator,
                progress: Callable[[Iterable], Iterable] = lambda it: it) -> Samples:
    """Decompositions of every graph (``per_graph`` drawn at random, or all of them when None), labelled."""
    views, labels = [], []
    for graph, value in progress(list(zip(graphs, y, strict=True))):
        parts = decompositions(database, graph)
        if per_graph is not None and len(parts) > per_graph:
            parts = [parts[k] for k in sorted(rng.choice(len(parts), per_graph, replace=False))]
        views += [partitioned(graph, part) for part in parts]
        labels += [value] * len(parts)
    return Samples(partitioned=graph_array(views), y=np.asarray(labels, dtype=np.float64))


def fold_samples(database: SegmentDatabase, graphs: Sequence[ComputationGraph], max_folds: int = 10
                 ) -> list[Samples]:
    """AutoGO's test folds: fold f holds decomposition f of every graph; as many folds as the graph with the
    fewest segments has, at most ``max_folds``."""
    parts = [decompositions(database, g) for g in graphs]
    folds = min(max_folds, min(len(p) for p in parts))
    return [Samples(partitioned=graph_array([partitioned(g, p[f]) for g, p in zip(graphs, parts, strict=True)]))
            for f in range(folds)]


def whole_graph_samples(graphs: Sequence[ComputationGraph], y: Sequence[float] | None = None) -> Samples:
    """The whole-graph baseline's view (AutoGO's 'GNN': a k-GNN on the unpartitioned CG)."""
    return Samples(graphs=graph_array([cg_graph(g) for g in graphs]),
                   y=None if y is None else np.asarray(y, dtype=np.float64))
