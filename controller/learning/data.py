"""Architectures -> the numeric views predictors eat (``predictors.Samples``), and tables -> architectures.

NB-201 cells get all four views: the one-hot encoding (6 edges x 5 ops), FLOPs (MACs of the network's
CG), and the BRP-NAS cell graph (S.M. S1.1): one node per edge op plus input, output and a global node;
``none`` ops are detached, ``skip_connect`` ops are bypassed (their predecessors feed their successors)
and detached, op nodes left off every input->output path are detached; detached nodes keep a zero
feature vector. Every node has a self loop and feeds the global node.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import gzip
import re
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hwnas.controller.errors import SettingError
from hwnas.controller.graph import ComputationGraph
from hwnas.controller.graph.ops import OPS as GRAPH_OPS
from hwnas.controller.spaces import SearchSpace
from hwnas.controller.spaces.nb201 import EDGES, OPS, NasBench201
from hwnas.predictors import Samples
from hwnas.predictors.samples import graph_array

NODE_TYPES = ("nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3", "input", "output", "global")
N_NODES = len(EDGES) + 3
INPUT, OUTPUT, GLOBAL = 0, N_NODES - 2, N_NODES - 1  # node indices of the graph
CELL_OUTPUT = 3  # the NB-201 cell node that is the cell's output


def nb201_cell_graph(encoding: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """(adjacency, node_features) of one cell; ``adjacency[i, j] = 1`` when node j feeds node i."""
    ops = [OPS[op] for op in encoding]
    feeds: set[tuple[int, int]] = set()  # (from, to) over nodes: input 0, op k -> k + 1, output, global
    for k, (to, src) in enumerate(EDGES):
        sources = [INPUT] if src == 0 else [m + 1 for m, (t, _) in enumerate(EDGES) if t == src]
        feeds.update((s, k + 1) for s in sources)
        if to == CELL_OUTPUT:
            feeds.add((k + 1, OUTPUT))
    alive = set(range(N_NODES - 1))
    for k, op in enumerate(ops):  # detach "none"
        if op == "none":
            alive.discard(k + 1)
            feeds = {(a, b) for a, b in feeds if k + 1 not in (a, b)}
    for k, op in enumerate(ops):  # bypass, then detach, "skip_connect" (EDGES are in topological order)
        if op == "skip_connect":
            node = k + 1
            before = [a for a, b in feeds if b == node]
            after = [b for a, b in feeds if a == node]
            feeds = {(a, b) for a, b in feeds if node not in (a, b)} | {(a, b) for a in before for b in after}
            alive.discard(node)
    reach_forward, reach_back = {INPUT}, {OUTPUT}
    for _ in range(N_NODES):
        reach_forward |= {b for a, b in feeds if a in reach_forward}
        reach_back |= {a for a, b in feeds if b in reach_back}
    on_path = reach_forward & reach_back
    feeds = {(a, b) for a, b in feeds if a in on_path and b in on_path}
    alive &= on_path | {INPUT, OUTPUT}
    adjacency = np.eye(N_NODES, dtype=np.float32)
    for a, b in feeds:
        adjacency[b, a] = 1.0
    adjacency[GLOBAL, :] = 1.0
    features = np.zeros((N_NODES, len(NODE_TYPES)), dtype=np.float32)
    for node in alive:
        kind = "input" if node == INPUT else "output" if node == OUTPUT else ops[node - 1]
        features[node, NODE_TYPES.index(kind)] = 1.0
    features[GLOBAL, NODE_TYPES.index("global")] = 1.0
    return adjacency, features


FULL_NODE_TYPES = (*OPS, "input", "output", "global")


def nb201_full_cell_graph(encoding: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """The cell as NB-201's reference code runs it: every edge op is a node, ``none`` and ``skip_connect``
    and ops off every input->output path included (that code computes them all). HW-NAS-Bench timed its
    models this way, so on its columns cells with the same pruned network differ in latency; this view
    keeps what the pruned one (``nb201_cell_graph``) drops."""
    feeds: set[tuple[int, int]] = set()
    for k, (to, src) in enumerate(EDGES):
        sources = [INPUT] if src == 0 else [m + 1 for m, (t, _) in enumerate(EDGES) if t == src]
        feeds.update((s, k + 1) for s in sources)
        if to == CELL_OUTPUT:
            feeds.add((k + 1, OUTPUT))
    adjacency = np.eye(N_NODES, dtype=np.float32)
    for a, b in feeds:
        adjacency[b, a] = 1.0
    adjacency[GLOBAL, :] = 1.0
    features = np.zeros((N_NODES, len(FULL_NODE_TYPES)), dtype=np.float32)
    features[np.arange(len(EDGES)) + 1, list(encoding)] = 1.0
    for node, kind in ((INPUT, "input"), (OUTPUT, "output"), (GLOBAL, "global")):
        features[node, FULL_NODE_TYPES.index(kind)] = 1.0
    return adjacency, features


CG_OPS = tuple(sorted(GRAPH_OPS))  # the op one-hot of every GNN's nodes; a new op changes FEATURE_VERSION's meaning
CG_NUMERIC = ("log2_channels_in", "log2_channels_out", "log2_height", "log2_width", "kernel", "stride",
              "log2_groups", "log10_macs", "log10_params")


def cg_graph(graph: ComputationGraph) -> tuple[np.ndarray, np.ndarray]:
    """The featurisation every GNN reads, for any CG (a space's network or an ONNX import): one node per
    primitive op with its op one-hot, then ``CG_NUMERIC`` (channels in and out, spatial size of its output,
    kernel, stride, groups, its MACs and parameters, log-scaled), and data edges (2, e) in forward order."""
    x = np.zeros((len(graph.nodes), len(CG_OPS) + len(CG_NUMERIC)), dtype=np.float32)
    sources, targets = [], []
    for i, node in enumerate(graph.nodes):
        x[i, CG_OPS.index(node.op)] = 1.0
        out = list(node.out_shape[1:]) + [1, 1]
        ins = graph.in_shapes(i)
        c_in = ins[0][1] if ins and len(ins[0]) > 1 else out[0]
        kernel, stride = node.attrs.get("kernel", (0, 0)), node.attrs.get("stride", (0, 0))
        x[i, len(CG_OPS):] = (np.log2(c_in), np.log2(out[0]), np.log2(out[1]), np.log2(out[2]), kernel[0],
                              stride[0], np.log2(node.attrs.get("groups", 1)), np.log10(1 + graph.node_macs(i)),
                              np.log10(1 + GRAPH_OPS[node.op].params(ins, node.out_shape, node.attrs)))
        sources += list(node.inputs)
        targets += [i] * len(node.inputs)
    return x, np.array([sources, targets], dtype=np.int64).reshape(2, -1)


def one_hot(encoding: Sequence[int]) -> np.ndarray:
    out = np.zeros((len(EDGES), len(OPS)), dtype=np.float32)
    out[np.arange(len(EDGES)), list(encoding)] = 1.0
    return out.ravel()


@functools.cache
def _macs(encoding: tuple[int, ...]) -> int:
    return NasBench201().to_graph(encoding).macs()


CELL_GRAPHS = {"pruned": nb201_cell_graph, "full": nb201_full_cell_graph}


def nb201_samples(encodings: Sequence[Sequence[int]], y: Sequence[float] | None = None,
                  flops: bool = True, graphs: bool = False, cell_graph: str = "pruned", cells: bool = True
                  ) -> Samples:
    """Views of connected NB-201 cells. ``flops`` and ``graphs`` (the whole CG, for the GNNs) need each
    cell's CG, ~3 ms to build; the encoding and (``cells``) the cell graph (``pruned``: BRP-NAS's, the
    default; ``full``: as NB-201's reference code runs the cell) take well under a millisecond. With ``full``
    the whole CG is the reference network too (``NasBench201.reference_graph``); FLOPs stay the network's."""
    if cell_graph not in CELL_GRAPHS:
        raise ValueError(f"cell graph must be one of {', '.join(CELL_GRAPHS)}, got {cell_graph!r}")
    built = [CELL_GRAPHS[cell_graph](x) for x in encodings] if cells else []
    space = NasBench201()
    network = space.reference_graph if cell_graph == "full" else space.to_graph  # the whole CG, likewise
    return Samples(
        encoding=np.stack([one_hot(x) for x in encodings]),
        flops=np.array([_macs(tuple(x)) for x in encodings], dtype=np.float64) if flops else None,
        adjacency=np.stack([a for a, _ in built]) if cells else None,
        node_features=np.stack([f for _, f in built]) if cells else None,
        graphs=graph_array([cg_graph(network(x)) for x in encodings]) if graphs else None,
        y=None if y is None else np.asarray(y, dtype=np.float64),
        family=np.full(len(encodings), space.name, dtype=object),
    )


@dataclass(frozen=True)
class Table:
    """Architectures of a table with their target; what was left out, and why, is counted."""

    encodings: list[list[int]]
    y: np.ndarray
    target: str
    dropped_unconnected: int  # encodings with no network (NB-201's unconnected cells)
    dropped_missing: int  # rows without a numeric target
    dropped_copies: int = 0  # rows of a network an earlier row already gave (one_per_network)
    resolutions: list[int] | None = None  # each row's input size, where the table has a resolution column


def _table_rows(path: Path) -> tuple[list[str], list[dict[str, Any]]]:
    """Columns and rows of a CSV (plain or .gz) or a Parquet file (this project's export)."""
    try:
        if path.suffix == ".parquet":
            import pyarrow.parquet as pq

            table = pq.read_table(path)
            return table.column_names, table.to_pylist()
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", newline="") as handle:
            reader = csv.DictReader(handle)
            return list(reader.fieldnames or []), list(reader)
    except (OSError, UnicodeDecodeError, csv.Error, ValueError) as exc:
        raise ValueError(f"cannot read {path}: {exc}") from None


def read_nb201_table(path: Path, target: str, device_key: str | None = None) -> Table:
    """``read_space_table`` for NB-201, which also reads a public table's ``nb201_index`` column."""
    return read_space_table(path, target, NasBench201(), device_key)


def _arch_columns(space: SearchSpace, columns: Sequence[str]) -> tuple[str, ...] | None:
    """The column(s) naming the architecture: this project's export (``arch``), else a packaged table's key."""
    from hwnas.controller.data import TABLES

    if "arch" in columns and "space" in columns:
        return ("arch",)
    for table in TABLES.values():
        if table.space == space.name and all(c in columns for c in table.key):
            return table.key
    if "arch" in columns:
        return ("arch",)
    if "nb201_index" in columns and hasattr(space, "from_index"):
        return ("nb201_index",)
    return None


_COST = re.compile(r"(^|_)(lat|latency|energy|power)(_|$)|_(ms|us|s|mj|j|w)$")


def is_measured_cost(column: str) -> bool:
    """A column of latencies, energies or powers (``lat_ms_pixel3``, ``energy_per_inference_mj``): a figure a
    meter gives, so it is > 0; accuracies and zero-cost scores may be anything finite."""
    return bool(_COST.search(column.lower()))


def read_space_table(path: Path, target: str, space: SearchSpace, device_key: str | None = None,
                     one_per_network: bool = False) -> Table:
    """A table of ``space``'s architectures with the ``target`` column: a packaged or public table (its
    architecture column(s) as ``hwnas.controller.data.TABLES`` registers them), or this project's export (CSV or
    Parquet; ``arch`` with ``space``, one device key or ``device_key`` naming which).

    Architectures with no network and rows without a numeric target are left out; ``one_per_network`` keeps
    only the first row of each network (``space.network_key``), for tables that copy one network's numbers
    to several keys (a random split of them would leak); a table with a ``resolution`` column (HELP's OFA
    latencies) keeps one row per network and resolution. A row that does not decode names its line.
    """
    columns, rows = _table_rows(path)
    if target not in columns:
        raise ValueError(f"{path} has no column {target!r}; columns: {', '.join(columns)}")
    arch_columns = _arch_columns(space, columns)
    if arch_columns is None:
        raise ValueError(f"{path} has no column naming {space.name} architectures (arch, or the packaged table's "
                         "key columns)")
    if "space" in columns:
        other = sorted({str(r["space"]) for r in rows} - {space.name})
        if other:
            raise ValueError(f"{path} holds architectures of {other}, not only of {space.name!r}")
    if "device_key" in columns:
        keys = sorted({str(r["device_key"]) for r in rows})
        if device_key is None and len(keys) > 1:
            raise SettingError("device", f"is needed: {path} holds several device keys {keys}")
        if device_key is not None:
            if device_key not in keys:
                raise ValueError(f"{path} has no rows of device key {device_key!r}; it has {keys}")
            rows = [r for r in rows if r["device_key"] == device_key]
    elif device_key is not None:
        raise SettingError("device", f": {path} has no device_key column")
    encodings, ys, unconnected, missing, copies = [], [], 0, 0, 0
    sizes: list[int] | None = [] if "resolution" in columns else None
    seen: set[tuple] = set()
    for number, row in enumerate(rows, start=2):
        try:
            if arch_columns == ("nb201_index",):
                x = space.from_index(int(row["nb201_index"]))  # type: ignore[attr-defined]
            else:
                x = space.from_string(",".join(str(row[c]) for c in arch_columns))
        except (ValueError, IndexError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}, line {number}: not a {space.name} architecture: {exc}") from None
        if not space.has_network(x):
            unconnected += 1
            continue
        try:
            value = float(row[target])
        except (TypeError, ValueError):
            value = float("nan")
        if not np.isfinite(value):
            missing += 1
            continue
        if value <= 0 and is_measured_cost(target):
            raise ValueError(f"{path}, line {number}: {target} {value:g} cannot be measured (a latency, energy or "
                             "power is > 0); fix or remove that row")
        size = None
        if sizes is not None:
            try:
                size = int(row["resolution"])
            except (TypeError, ValueError):
                raise ValueError(f"{path}, line {number}: resolution {row['resolution']!r} is not an integer") from None
        if one_per_network:
            key = (size, space.network_key(x))
            if key in seen:
                copies += 1
                continue
            seen.add(key)
        encodings.append(x)
        ys.append(value)
        if sizes is not None:
            sizes.append(size)
    if not encodings:
        raise ValueError(f"{path}: no {space.name} architecture has a numeric {target!r}")
    return Table(encodings, np.array(ys), target, unconnected, missing, copies, sizes)


def table_samples(space: SearchSpace, encodings: Sequence[Sequence[int]], y: Sequence[float] | None = None,
                  flops: bool = False, graphs: bool = False) -> Samples:
    """The space's predictor views (``space_samples``) plus, on request, FLOPs and the whole CG of each
    architecture (``cg_graph``, for the k-GNN): those build each network's CG."""
    base = space_samples(space, encodings, y)
    built = [space.to_graph(x) for x in encodings] if flops or graphs else []
    extra: dict[str, Any] = {}
    if flops:
        extra["flops"] = np.array([g.macs() for g in built], dtype=np.float64)
    if graphs:
        extra["graphs"] = graph_array([cg_graph(g) for g in built])
    return dataclasses.replace(base, **extra)


def space_samples(space: SearchSpace, encodings: Sequence[Sequence[int]], y: Sequence[float] | None = None,
                  views: Collection[str] | None = None) -> Samples:
    """The views a search's predictors get, as the space declares (``SearchSpace.predictor_features``).

    ``views`` (the predictors' ``needs``), where given, limits the work to what they read: LINAS's inner
    search asks for thousands of encodings, and its ridge reads only the encoding.
    """
    try:
        features = SPACE_FEATURES[space.predictor_features]
    except KeyError:
        raise ValueError(f"space {space.name!r} declares predictor features {space.predictor_features!r}; known: "
                         f"{sorted(SPACE_FEATURES)}") from None
    return dataclasses.replace(features(space, encodings, y, views),
                               family=np.full(len(encodings), space.name, dtype=object))


def _one_hot_samples(space: SearchSpace, encodings: Sequence[Sequence[int]], y: Sequence[float] | None,
                     views: Collection[str] | None) -> Samples:
    """The one-hot of each variable (what LINAS's ridge and SVR use)."""
    low, high = space.bounds()
    offsets = np.concatenate([[0], np.cumsum(high - low + 1)])
    x = np.asarray(encodings, dtype=np.int64).reshape(len(encodings), space.n_var)
    encoding = np.zeros((len(x), int(offsets[-1])), dtype=np.float32)
    encoding[np.arange(len(x))[:, None], offsets[:-1] + x - low] = 1.0
    return Samples(encoding=encoding, y=None if y is None else np.asarray(y, dtype=np.float64))


def _nb201_cell_samples(space: SearchSpace, encodings: Sequence[Sequence[int]], y: Sequence[float] | None,
                        views: Collection[str] | None) -> Samples:
    """NB-201 cells: the one-hot and, unless no predictor reads it, the cell graph too, so the GCN works."""
    cells = views is None or not {"adjacency", "node_features"}.isdisjoint(views)
    return nb201_samples(encodings, y, flops=False, cells=cells)


def _one_hot_and_cg_samples(space: SearchSpace, encodings: Sequence[Sequence[int]], y: Sequence[float] | None,
                            views: Collection[str] | None) -> Samples:
    """The one-hot and, unless no predictor reads it, each network's whole CG (``cg_graph``), so the
    whole-CG GNNs work on a space with no cell graph of its own (the elastic transformer)."""
    base = _one_hot_samples(space, encodings, y, views)
    if views is not None and "graphs" not in views:
        return base
    return dataclasses.replace(base, graphs=graph_array([cg_graph(space.to_graph(x)) for x in encodings]))


SPACE_FEATURES: dict[str, Callable[[SearchSpace, Sequence[Sequence[int]], Sequence[float] | None,
                                    Collection[str] | None], Samples]] = {
    "one-hot": _one_hot_samples,
    "nb201-cell": _nb201_cell_samples,
    "one-hot+cg": _one_hot_and_cg_samples,
}
