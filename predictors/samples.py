"""What predictors eat: numeric views of a set of architectures, one row (or graph) per architecture.

The controller turns architectures into these arrays (``controller/learning/data.py``); predictors only
see numbers. Each view is optional, and each predictor names the views it needs, so a space without a
cell graph can still use the encoding-based predictors.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, fields, replace

import numpy as np

FEATURE_VERSION = 3  # bump when the meaning of any view below changes; saved in every model card


@dataclass(frozen=True)
class Samples:
    """N architectures. ``encoding``: (N, d) fixed-length vector (one-hot ops for NB-201).
    ``flops``: (N,) multiply-accumulates. ``layer_sum``: (N,) the sum of the target device's measured latencies of
    each architecture's layers, in the target's unit. ``adjacency``: (N, n, n) with ``adjacency[k, i, j] = 1`` when node
    j feeds node i (self loops and the global node included). ``node_features``: (N, n, f) one-hot node
    types. ``graphs``: (N,) object array of whole computation graphs of any size, each a pair
    ``(node_features (n_i, f) float32, edges (2, e_i) int64 rows source, target)``. ``partitioned``: (N,)
    object array of computation graphs split in three, AutoGO's Predecessor / Segment / suCcessor, each a
    triple ``(node_features, edges, part (n_i,) int64 in {0, 1, 2})`` whose edges stay within a part.
    ``sequence``: (N,) object array of layer-sequence graphs (AutoBuild), each a pair ``(codes (n_i, c) int64,
    edges (2, e_i) int64)``: one node per layer, one column per feature category (an index into its values),
    edges forward along the network.
    ``y``: (N,) the target, e.g. latency in ms; None when only predicting. ``family``: (N,) object array naming
    each architecture's family (its space, or where an imported graph came from): what a predictor's card
    records as trained on, so a prediction for another family is flagged."""

    encoding: np.ndarray | None = None
    flops: np.ndarray | None = None
    layer_sum: np.ndarray | None = None
    adjacency: np.ndarray | None = None
    node_features: np.ndarray | None = None
    graphs: np.ndarray | None = None
    partitioned: np.ndarray | None = None
    sequence: np.ndarray | None = None
    y: np.ndarray | None = None
    family: np.ndarray | None = None

    def __post_init__(self) -> None:
        sizes = {f.name: len(getattr(self, f.name)) for f in fields(self) if getattr(self, f.name) is not None}
        if len(set(sizes.values())) > 1:
            raise ValueError(f"views disagree on the number of architectures: {sizes}")

    def __len__(self) -> int:
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None:
                return len(value)
        return 0

    def take(self, index: np.ndarray) -> Samples:
        return replace(self, **{f.name: getattr(self, f.name)[index] for f in fields(self)
                                if getattr(self, f.name) is not None})

    def with_y(self, y: np.ndarray) -> Samples:
        return replace(self, y=np.asarray(y, dtype=np.float64))

    def require(self, *views: str) -> None:
        missing = [v for v in views if getattr(self, v) is None]
        if missing:
            raise ValueError(f"this predictor needs the {', '.join(missing)} view(s) of the architectures")
        if "y" in views and not np.all(np.isfinite(self.y)):
            raise ValueError("the target has NaN or infinite values")

    def fingerprint(self) -> str:
        """sha256 over every view: the model card says exactly which data a predictor saw."""
        digest = hashlib.sha256()
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            digest.update(f.name.encode())
            if f.name == "family":
                digest.update("\n".join(map(str, value)).encode())
                continue
            parts = [a for graph in value for a in graph] if value.dtype == object else [value]
            for part in parts:
                digest.update(np.ascontiguousarray(part, dtype=np.float64).tobytes())
        return digest.hexdigest()


def graph_array(graphs: list[tuple[np.ndarray, ...]]) -> np.ndarray:
    """The ``graphs`` (or ``partitioned``) view from a list of (node_features, edges[, part]) tuples."""
    out = np.empty(len(graphs), dtype=object)
    for k, graph in enumerate(graphs):
        out[k] = graph
    return out
