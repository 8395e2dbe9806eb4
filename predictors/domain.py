"""What a predictor was trained on, and whether an architecture lies outside it.

A predictor fitted on one family (NB-201 cells) says nothing trustworthy about another (ResNet-50): GENNAPE's
point, and AutoGO's PSC predicting 102 % for ResNet-50's children. At fit time the card records the
training domain: the families (``Samples.family``), the target's range, and for each view the predictor
reads the range of every feature column (for whole graphs, over all nodes; and the graph sizes). An
architecture is *outside* when its family was not trained on, or any of its features leaves the recorded
range (an op never seen in training lights a one-hot column that was always 0; a wider layer, a larger
image or a larger graph leaves a range). Outside is not wrong, but it is unvouched for: predictions say so.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from hwnas.predictors.samples import Samples

TOLERANCE = 1e-6  # float noise on recorded feature bounds


def _rows(samples: Samples, view: str) -> list[np.ndarray]:
    """Each architecture's feature rows of a view: (n_i, f) for graph views, (1, f) for vectors."""
    value = getattr(samples, view)
    if view in ("graphs", "partitioned", "sequence"):
        return [np.asarray(graph[0], dtype=np.float64) for graph in value]
    if view == "node_features":
        return [np.asarray(v, dtype=np.float64) for v in value]
    return [np.asarray(v, dtype=np.float64).reshape(1, -1) for v in value]


def learn(samples: Samples, views: Sequence[str]) -> dict[str, Any]:
    """The training domain, JSON-ready, for the views a predictor reads."""
    domain: dict[str, Any] = {"y": [float(np.min(samples.y)), float(np.max(samples.y))] if samples.y is not None
                              else None,
                              "families": sorted(set(samples.family)) if samples.family is not None else []}
    for view in views:
        if view in ("y", "family") or getattr(samples, view) is None:
            continue
        rows = _rows(samples, view)
        stacked = np.concatenate(rows)
        domain[view] = {"low": stacked.min(axis=0).tolist(), "high": stacked.max(axis=0).tolist(),
                        "rows": [min(len(r) for r in rows), max(len(r) for r in rows)]}
    return domain


def outside(domain: dict[str, Any], samples: Samples) -> list[str]:
    """For each architecture, why it lies outside the training domain ("" when inside). Vector views are
    checked in one array operation (a search asks this of thousands of candidates at a time)."""
    reasons = [""] * len(samples)
    if domain.get("families") and samples.family is not None:
        for k in np.flatnonzero(~np.isin(samples.family.astype(str), domain["families"])):
            reasons[k] = f"family {samples.family[k]!r} (trained on {', '.join(domain['families'])})"
    for view, box in domain.items():
        if view in ("y", "families") or getattr(samples, view, None) is None:
            continue
        low, high = np.asarray(box["low"]) - TOLERANCE, np.asarray(box["high"]) + TOLERANCE
        if view in ("graphs", "partitioned", "sequence", "node_features"):
            for k, rows in enumerate(_rows(samples, view)):
                if not reasons[k]:
                    reasons[k] = _graph_reason(view, rows, low, high, box["rows"])
            continue
        values = np.asarray(getattr(samples, view), dtype=np.float64).reshape(len(samples), -1)
        if values.shape[1] != len(low):
            return [reason or f"{view} has {values.shape[1]} features, trained on {len(low)}" for reason in reasons]
        for k in np.flatnonzero(((values < low) | (values > high)).any(axis=1)):
            if not reasons[k]:
                off = np.flatnonzero((values[k] < low) | (values[k] > high))
                reasons[k] = f"{view} feature(s) {off[:5].tolist()} outside the trained range"
    return reasons


def _graph_reason(view: str, rows: np.ndarray, low: np.ndarray, high: np.ndarray, sizes: list[int]) -> str:
    if rows.shape[1] != len(low):
        return f"{view} has {rows.shape[1]} features, trained on {len(low)}"
    if not sizes[0] <= len(rows) <= sizes[1] and view != "node_features":
        return f"{len(rows)} graph nodes (trained on {sizes[0]}-{sizes[1]})"
    off = np.flatnonzero((rows < low).any(axis=0) | (rows > high).any(axis=0))
    return f"{view} feature(s) {off[:5].tolist()} outside the trained range" if len(off) else ""


def merge(first: dict[str, Any], second: dict[str, Any]) -> dict[str, Any]:
    """A domain covering both (a predictor fine-tuned on a second family vouches for both): families united,
    every range widened to hold both."""
    out: dict[str, Any] = {"families": sorted(set(first.get("families", [])) | set(second.get("families", [])))}
    ys = [d["y"] for d in (first, second) if d.get("y")]
    out["y"] = [min(y[0] for y in ys), max(y[1] for y in ys)] if ys else None
    for view in (set(first) | set(second)) - {"y", "families"}:
        boxes = [d[view] for d in (first, second) if view in d]
        if len(boxes) == 1 or len(boxes[0]["low"]) != len(boxes[1]["low"]):
            out[view] = boxes[-1]
            continue
        out[view] = {"low": np.minimum(boxes[0]["low"], boxes[1]["low"]).tolist(),
                     "high": np.maximum(boxes[0]["high"], boxes[1]["high"]).tolist(),
                     "rows": [min(b["rows"][0] for b in boxes), max(b["rows"][1] for b in boxes)]}
    return out
