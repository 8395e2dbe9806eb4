"""AutoGO's segment mutation: segment a parent, pick source runs, swap in database segments, resolve shapes.

One round on a parent: BPE-segment it with a random sparse sub-vocabulary; pick source runs of 1-3
contiguous segments (half of them the lowest-FLOPs runs, half at random); for each, try replacements with
as many input and output ports, mapping ports at random; resolution propagation (a MILP) sets channels and
strides; the child is stitched as Predecessor (nodes before the run) + replacement + suCcessor (nodes after
it, parallel branches going by topological index) and every shape is inferred again. Children that fail
any step are dropped, never repaired by hand.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from hwnas.controller.autogo.database import SegmentDatabase
from hwnas.controller.autogo.resolution import Resolution, resolve
from hwnas.controller.autogo.segment import (
    BODY_OPS,
    TOKEN_OPS,
    Region,
    Segment,
    TemplateNode,
    channels,
    domain_of,
    op_token,
    region,
)
from hwnas.controller.graph.ir import ComputationGraph, Node
from hwnas.controller.graph.ops import ShapeError, op_spec

DEPTHWISE = "dwconv"  # the op-whitelist name of a depthwise convolution


@dataclass(frozen=True)
class Mutation:
    """A child: the parent's source run replaced by a database segment, nodes ordered P, S*, C."""

    parent: ComputationGraph
    child: ComputationGraph
    source: Region  # in the parent
    segment: int  # index into the database
    span: tuple[int, int]  # [start, stop): the replacement's nodes in the child
    changes: int  # resolution propagation's changes to the segment template

    def parts(self) -> np.ndarray:
        """0 / 1 / 2 per child node: Predecessor, Segment, suCcessor (what the PSC predictor reads)."""
        part = np.full(len(self.child.nodes), 2, dtype=np.int64)
        part[: self.span[0]] = 0
        part[self.span[0]: self.span[1]] = 1
        return part


def op_classes(graph: ComputationGraph) -> set[str]:
    """Op names of a graph, a depthwise conv counted as ``dwconv`` (the op whitelist's vocabulary)."""
    out = set()
    for node in graph.nodes:
        token = op_token(node, graph.nodes[node.inputs[0]].out_shape[1] if node.inputs else None)
        out.add(DEPTHWISE if token.endswith("dw") else node.op)
    return out


def segment_classes(segment: Segment) -> set[str]:
    return {DEPTHWISE if n.depthwise else n.op for n in segment.nodes}


def _node_attrs(template: TemplateNode, channels: int, stride: int, in_channels: int) -> dict:
    """A template node's attributes as resolved: stride, 'same' padding, channels and groups filled in."""
    attrs = dict(template.attrs)
    if "kernel" in attrs:
        k = attrs["kernel"][0]
        attrs["stride"] = (stride, stride)
        attrs["padding"] = (0,) * 4 if k % 2 == 0 else ((k - 1) // 2,) * 4
    if "ceil_mode" in attrs:
        attrs["ceil_mode"] = False
    if template.op == "conv":
        attrs["out_channels"] = in_channels if template.depthwise else channels
        attrs["groups"] = in_channels if template.depthwise else 1
    if template.op == "linear":
        attrs["out_features"] = channels
    return attrs


def stitch(parent: ComputationGraph, source: Region, segment: Segment, in_map: Sequence[int],
           out_map: Sequence[int], resolution: Resolution) -> ComputationGraph | None:
    """The child graph, or None where any shape disagrees with the parent's successor.

    ``in_map[p]``: which of the source's input tensors feeds port p; ``out_map[i]``: which output port of the
    segment replaces the source's i-th output.
    """
    start, stop = source.nodes[0], source.nodes[-1] + 1
    nodes: list[Node] = list(parent.nodes[:start])
    for j, template in enumerate(segment.nodes):
        refs = [source.inputs[in_map[-r - 1]] if r < 0 else start + r for r in template.inputs]
        in_channels = channels(nodes[refs[0]].out_shape[1:])
        attrs = _node_attrs(template, resolution.channels[j], resolution.strides[j], in_channels)
        try:
            shape = tuple(op_spec(template.op).infer([nodes[r].out_shape for r in refs], attrs))
        except ShapeError:
            return None
        nodes.append(Node(template.op, tuple(refs), shape, attrs))
    moved = {old: start + segment.outputs[out_map[i]] for i, old in enumerate(source.outputs)}
    if any(nodes[new].out_shape != parent.nodes[old].out_shape for old, new in moved.items()):
        return None
    shift = len(segment.nodes) - (stop - start)

    def new_index(old: int) -> int:
        return old if old < start else moved[old] if old < stop else old + shift

    for node in parent.nodes[stop:]:
        nodes.append(Node(node.op, tuple(new_index(i) for i in node.inputs), node.out_shape, node.attrs))
    try:
        return ComputationGraph(nodes, [new_index(o) for o in parent.outputs])
    except ValueError:  # a segment node that leads to no output, or a shape the successor cannot take
        return None


def run_domain(graph: ComputationGraph, nodes: Iterable[int]) -> str | None:
    """``map`` or ``tokens`` where every node of the run can be replaced within that one domain, else None."""
    domains = {domain_of(graph.nodes[k]) for k in nodes}
    return next(iter(domains)) if len(domains) == 1 else None


def coverage(graph: ComputationGraph, database: SegmentDatabase) -> dict:
    """What AutoGO can mutate in ``graph``: its nodes that can sit in a source run (body ops on NCHW feature
    maps, token ops on (B, T, D) sequences: resolution propagation solves channels and strides of those only),
    the rest by op and reason, and how many of the graph's segments (full vocabulary) the database holds a
    mutable replacement for, in their domain."""
    graph = graph.canonical()
    frozen: dict[str, int] = {}
    mutable = 0
    for node in graph.nodes[1:]:
        if domain_of(node) is not None:
            mutable += 1
            continue
        known = node.op in BODY_OPS or node.op in TOKEN_OPS
        reason = "not on a feature map or token sequence" if known else "an op segments do not replace"
        key = f"{node.op} ({reason})"
        frozen[key] = frozen.get(key, 0) + 1
    body = [r for r in database.segment(graph) if run_domain(graph, r.nodes) is not None]
    replaceable = [r for r in body if r.inputs and r.outputs
                   and database.replacements(len(r.inputs), len(r.outputs), run_domain(graph, r.nodes))]
    return {"nodes": len(graph.nodes) - 1, "mutable_nodes": mutable,
            "frozen": dict(sorted(frozen.items(), key=lambda item: -item[1])),
            "segments": len(database.segment(graph)), "body_segments": len(body),
            "replaceable_segments": len(replaceable)}


class Mutator:
    """Mutation rounds of one parent against a segment database."""

    def __init__(self, database: SegmentDatabase, rng: np.random.Generator, allowed_ops: Iterable[str] | None = None,
                 keep_multi: float = 0.5, sources: int = 10, tries_per_source: int = 30,
                 max_run: int = 3) -> None:
        self.db, self.rng = database, rng
        self.allowed_ops = set(allowed_ops) if allowed_ops is not None else None
        self.keep_multi, self.sources, self.tries, self.max_run = keep_multi, sources, tries_per_source, max_run
        self.solve_seconds: list[float] = []  # wall time of every resolution MILP (run.json and benchmarks)

    def source_runs(self, parent: ComputationGraph) -> list[Region]:
        """Runs of 1..max_run contiguous segments of a fresh sparse segmentation that a mutation may replace."""
        regions = self.db.segment(parent, self.db.sub_vocabulary(self.rng, self.keep_multi))
        users = parent.consumers()
        runs = []
        for first in range(len(regions)):
            for length in range(1, self.max_run + 1):
                if first + length > len(regions):
                    break
                start, stop = regions[first].nodes[0], regions[first + length - 1].nodes[-1] + 1
                if run_domain(parent, range(start, stop)) is not None:
                    run = region(parent, start, stop, users)
                    if run.inputs and run.outputs:
                        runs.append(run)
        return runs

    def pick_sources(self, parent: ComputationGraph, runs: Sequence[Region]) -> list[Region]:
        """Half the lowest-FLOPs runs, half drawn at random from the rest (AutoGO A.5.5)."""
        if len(runs) <= self.sources:
            return list(runs)
        by_macs = sorted(range(len(runs)), key=lambda i: (sum(parent.node_macs(k) for k in runs[i].nodes), i))
        cheap = by_macs[: self.sources // 2]
        rest = [i for i in range(len(runs)) if i not in set(cheap)]
        drawn = self.rng.choice(rest, size=self.sources - len(cheap), replace=False).tolist()
        return [runs[i] for i in cheap + drawn]

    def mutate(self, parent: ComputationGraph, limit: int = 100) -> list[Mutation]:
        """Up to ``limit`` distinct valid children of ``parent`` (which must be in topological order).

        Every source gets an equal share of ``limit``: the cheapest runs (often BN/ReLU/add, whose every
        replacement adds FLOPs) must not use up the round before the random ones, which hold the convs,
        get a turn.
        """
        out: list[Mutation] = []
        seen = {parent.arch_id}
        sources = self.pick_sources(parent, self.source_runs(parent))
        quota = -(-limit // max(1, len(sources)))
        for source in sources:
            domain = run_domain(parent, source.nodes)
            candidates = [k for k in self.db.replacements(len(source.inputs), len(source.outputs), domain)
                          if self.allowed_ops is None or segment_classes(self.db.segments[k]) <= self.allowed_ops]
            if not candidates:
                continue
            found = 0
            for k in self.rng.choice(candidates, size=min(self.tries, len(candidates)), replace=False).tolist():
                mutation = self.try_segment(parent, source, int(k))
                if mutation is not None and mutation.child.arch_id not in seen:
                    seen.add(mutation.child.arch_id)
                    out.append(mutation)
                    found += 1
                    if len(out) >= limit:
                        return out
                    if found >= quota:
                        break
        return out

    def try_segment(self, parent: ComputationGraph, source: Region, k: int) -> Mutation | None:
        segment = self.db.segments[k]
        in_map = self.rng.permutation(segment.n_inputs).tolist()
        out_map = self.rng.permutation(segment.n_outputs).tolist()
        in_shapes = [parent.nodes[source.inputs[in_map[p]]].out_shape[1:] for p in range(segment.n_inputs)]
        out_shapes = [None] * segment.n_outputs
        for i, old in enumerate(source.outputs):
            out_shapes[out_map[i]] = parent.nodes[old].out_shape[1:]
        started = time.perf_counter()
        resolution = resolve(segment, in_shapes, out_shapes)
        self.solve_seconds.append(time.perf_counter() - started)
        if resolution is None:
            return None
        child = stitch(parent, source, segment, in_map, out_map, resolution)
        if child is None:
            return None
        start = source.nodes[0]
        return Mutation(parent, child, source, k, (start, start + len(segment.nodes)), resolution.changes)
