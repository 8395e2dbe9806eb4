"""Labelled families of networks as GENNAPE reads them: whole computation graphs, FLOPs and accuracy.

A family is named three ways: a space with a packaged accuracy table (``nb201``, ``nb101``, ...), a packaged
table by name (``naslib-nb101``), or a folder of ONNX files with a labels CSV (``file,accuracy``): any lab's own
networks, imported through ``hwnas graph import``'s path. Networks are read one per distinct network (a table
that repeats a network under several keys would leak it between fine-tuning and test).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hwnas.controller.graph.ir import ComputationGraph
from hwnas.controller.learning.data import cg_graph, read_space_table
from hwnas.predictors.samples import Samples, graph_array

LABELS = "labels.csv"


@dataclass
class Family:
    name: str
    samples: Samples  # graphs, flops (MACs), y (accuracy %), family
    proxies: dict[str, np.ndarray] = field(default_factory=dict)  # zero-cost proxy scores, one per network
    dropped: int = 0  # table rows left out (no network, no accuracy, a copy of an earlier network)


def graph_samples(graphs: Sequence[ComputationGraph], family: str | None, y: np.ndarray | None = None) -> Samples:
    """The views GENNAPE and the whole-graph GNNs read, for any CGs. ``family`` None: the graphs belong to
    no named family (AutoGO's mutants), so only their features say whether they lie outside a predictor's
    training domain."""
    return Samples(graphs=graph_array([cg_graph(g) for g in graphs]),
                   flops=np.array([g.macs() for g in graphs], dtype=np.float64),
                   y=None if y is None else np.asarray(y, dtype=np.float64),
                   family=None if family is None else np.full(len(graphs), family, dtype=object))


def pooled(families: Sequence[Family]) -> Samples:
    """Several families' networks as one training set (each keeps its family name)."""
    parts = [f.samples for f in families]
    return Samples(graphs=np.concatenate([p.graphs for p in parts]), flops=np.concatenate([p.flops for p in parts]),
                   y=np.concatenate([p.y for p in parts]), family=np.concatenate([p.family for p in parts]))


def load_family(spec: str, max_networks: int = 0, seed: int = 0) -> Family:
    """``spec``: a folder, a packaged table name or a space name; ``max_networks`` > 0 keeps a random subset."""
    from hwnas.controller.data import TABLES

    if Path(spec).is_dir():
        return folder_family(Path(spec), max_networks, seed)
    if spec in TABLES:
        return table_family(spec, max_networks, seed)
    from hwnas.controller.spaces import SPACES, get_space

    if spec in SPACES:
        table = get_space(spec).accuracy_table
        if not table:
            raise ValueError(f"space {spec!r} has no packaged accuracy table; give a folder of ONNX files with "
                             f"{LABELS} instead")
        return table_family(table, max_networks, seed)
    with_accuracy = sorted(name for name, t in TABLES.items() if t.accuracy)
    raise ValueError(f"family {spec!r}: not a folder, a packaged accuracy table ({', '.join(with_accuracy)}) or a "
                     "space with one")


def _subset(n: int, max_networks: int, seed: int) -> np.ndarray:
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[:max_networks]) if 0 < max_networks < n else np.arange(n)


def table_family(name: str, max_networks: int = 0, seed: int = 0) -> Family:
    from hwnas.controller.data import TABLES, table_path
    from hwnas.controller.spaces import get_space

    table = TABLES[name]
    if not table.accuracy:
        raise ValueError(f"table {name!r} has no accuracy column")
    space = get_space(table.space)
    rows = read_space_table(table_path(name), table.accuracy, space, one_per_network=True)
    keep = _subset(len(rows.encodings), max_networks, seed)
    encodings = [rows.encodings[i] for i in keep]
    proxies = {}
    for column in table.proxies:
        scored = read_space_table(table_path(name), column, space, one_per_network=True)
        by_network = {space.network_key(x): v for x, v in zip(scored.encodings, scored.y, strict=True)}
        proxies[column] = np.array([by_network.get(space.network_key(x), np.nan) for x in encodings])
    proxies = {k: v for k, v in proxies.items() if np.all(np.isfinite(v))}
    dropped = rows.dropped_unconnected + rows.dropped_missing + rows.dropped_copies
    return Family(name, graph_samples([space.to_graph(x) for x in encodings], table.space, rows.y[keep]), proxies,
                  dropped)


def folder_family(folder: Path, max_networks: int = 0, seed: int = 0) -> Family:
    """ONNX files of a folder with ``labels.csv`` (columns ``file,accuracy``, accuracy in %). Every problem is
    found before anything is returned: the line of a bad label, the files that are missing, and every op the
    graph IR cannot read, by name, with the files that use it."""
    from hwnas.controller.graph.onnx_import import UnsupportedOpsError, from_onnx

    labels = folder / LABELS
    if not labels.is_file():
        raise ValueError(f"{folder}: no {LABELS} (columns file,accuracy) beside the ONNX files")
    with open(labels, newline="") as handle:
        reader = csv.DictReader(handle)
        missing_columns = {"file", "accuracy"} - set(reader.fieldnames or [])
        if missing_columns:
            raise ValueError(f"{labels}: needs columns file,accuracy; missing {sorted(missing_columns)}")
        entries = []
        for line, row in enumerate(reader, start=2):
            try:
                accuracy = float(row["accuracy"])
            except (TypeError, ValueError):
                raise ValueError(f"{labels}, line {line}: accuracy {row['accuracy']!r} is not a number") from None
            if not 0.0 <= accuracy <= 100.0:
                raise ValueError(f"{labels}, line {line}: accuracy {accuracy} is not a percentage in 0-100")
            entries.append((row["file"], accuracy))
    if len(entries) < 2:
        raise ValueError(f"{labels}: needs at least 2 labelled networks, has {len(entries)}")
    entries = [entries[i] for i in _subset(len(entries), max_networks, seed)]
    absent = [name for name, _ in entries if not (folder / name).is_file()]
    if absent:
        raise ValueError(f"{labels} names files that are not in {folder}: {', '.join(absent[:10])}")
    graphs, unsupported, broken = [], {}, []
    for name, _ in entries:
        try:
            graphs.append(from_onnx(folder / name))
        except UnsupportedOpsError as exc:
            for op in exc.ops:
                unsupported.setdefault(op, []).append(name)
        except ValueError as exc:
            broken.append(f"{name}: {exc}")
    if unsupported:
        listed = "; ".join(f"{op} (in {len(files)} file(s), e.g. {files[0]})"
                           for op, files in sorted(unsupported.items()))
        raise ValueError(f"{folder}: the graph IR cannot read these ONNX ops: {listed}")
    if broken:
        raise ValueError(f"{folder}: cannot import {len(broken)} file(s): " + "; ".join(broken[:5]))
    return Family(folder.name, graph_samples(graphs, folder.name, np.array([a for _, a in entries])))
