"""Few-shot predictors for a new device from other devices' latencies (transfer), and their learning curves.

Two ways to transfer, each compared with the same model fitted from scratch on the same n target samples:
- ``gcn-transfer`` (vs ``gcn``): a GCN is first fitted on the source devices' measurements of the same
  architectures (each source's log-latency standardised on its own, so a 2 ms and a 200 ms device teach
  the same shape), then fitted again on the n target measurements starting from those weights;
- ``sources`` (vs ``ridge``): the sources' ridge predictors recombined for the target
  (``predictors.source_transfer``).
``curve`` measures them for several n and seeds, on one held-out test set per seed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from predictors.base import get_predictor
from predictors.metrics import evaluate
from predictors.samples import Samples

if TYPE_CHECKING:  # the GCN (torch) is imported only when a GCN method is asked for
    from predictors.gcn import GcnPredictor


@dataclass(frozen=True)
class CurvePoint:
    n: int
    seed: int
    method: str  # one of METHODS
    spearman: float
    within_10pct: float  # BRP-NAS definition
    ndcg_at_10: float  # of the 10 fastest, as ranked


METHODS = ("ridge", "sources", "sources-log", "gcn", "gcn-transfer")  # sources-log: its log designs only


def pretrain(sources: Sequence[Samples], config: dict) -> GcnPredictor:
    """One GCN on all sources together, each source's target mapped to exp(standardised log) first."""
    parts = []
    for source in sources:
        log_y = np.log(source.y)
        parts.append(source.with_y(np.exp((log_y - log_y.mean()) / (log_y.std() or 1.0))))
    pooled = Samples(adjacency=np.concatenate([p.adjacency for p in parts]),
                     node_features=np.concatenate([p.node_features for p in parts]),
                     y=np.concatenate([p.y for p in parts]))
    return get_predictor("gcn", **config).fit(pooled)


def curve(target: Samples, sources: Sequence[Samples], sizes: Sequence[int], seeds: Sequence[int],
          methods: Sequence[str] = ("ridge", "sources"), n_test: int = 2000, pretrain_samples: int = 2000,
          config: dict | None = None, progress: Callable[[str], None] = lambda what: None) -> list[CurvePoint]:
    """Spearman and +-10 % accuracy vs target samples n for each method (``METHODS``).

    ``target`` and every source hold the same architectures in the same order. Per seed, ``n_test`` of
    them are the test set; the sources are fitted on up to ``pretrain_samples`` of the others, and the n
    target samples are drawn from the others too, so no test architecture is ever trained on.
    ``config`` goes to the GCNs.
    """
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise ValueError(f"unknown transfer method(s) {unknown}; known: {', '.join(METHODS)}")
    config = config or {}
    points = []
    for seed in seeds:
        order = np.random.default_rng(seed).permutation(len(target))
        test, pool = order[:n_test], order[n_test:]
        if max(sizes) > len(pool):
            raise ValueError(f"n = {max(sizes)} exceeds the {len(pool)} architectures outside the test set")
        seen = [s.take(pool[:pretrain_samples]) for s in sources]
        source_net = None
        if "gcn-transfer" in methods:
            progress(f"seed {seed}: pretraining a GCN on {len(sources)} source device(s)")
            source_net = pretrain(seen, {**config, "seed": seed})
        held_out = target.take(test)
        for n in sizes:
            train = target.take(pool[:n])
            for method in methods:
                progress(f"seed {seed}: n = {n}, {method}")
                predicted = _fit(method, seen, source_net, {**config, "seed": seed}).fit(train).predict(held_out)
                m = evaluate(predicted, held_out.y)
                points.append(CurvePoint(n, seed, method, m["spearman"], m["brpnas_within_10pct"], m["ndcg_at_10"]))
    return points


def _fit(method: str, sources: Sequence[Samples], source_net: GcnPredictor | None, gcn_config: dict):
    """An unfitted predictor of ``method``, already given what it transfers from."""
    if method in ("sources", "sources-log"):
        return get_predictor("sources", designs="all" if method == "sources" else "log").use_sources(sources)
    if method == "ridge":
        return get_predictor("ridge")
    predictor = get_predictor("gcn", **gcn_config)
    return predictor.initialise_from(source_net) if method == "gcn-transfer" else predictor


def as_rows(points: Sequence[CurvePoint]) -> list[tuple[str, ...]]:
    """n, then the mean Spearman of each method over seeds, then the mean +-10 % and NDCG@10 of each."""
    methods = list(dict.fromkeys(p.method for p in points))
    rows = [("n", *(f"Spearman {m}" for m in methods), *(f"±10% {m}" for m in methods),
             *(f"NDCG@10 {m}" for m in methods))]
    for n in sorted({p.n for p in points}):
        rows.append((str(n), *(_mean(points, n, m, "spearman") for m in methods),
                     *(_mean(points, n, m, "within_10pct") for m in methods),
                     *(_mean(points, n, m, "ndcg_at_10") for m in methods)))
    return rows


def _mean(points: Sequence[CurvePoint], n: int, method: str, field: str) -> str:
    value = float(np.mean([getattr(p, field) for p in points if p.n == n and p.method == method]))
    return f"{value * 100:.1f}%" if field == "within_10pct" else f"{value:.3f}"
