"""Few-shot predictors for a new device from other devices' latencies (transfer).

A GCN is first fitted on the source devices' measurements of the same architectures (each source's
log-latency standardised on its own, so a 2 ms and a 200 ms device teach the same shape), then fitted
again on n target measurements starting from those weights. ``curve`` compares that with a GCN trained
from scratch on the same n, for several n and seeds, on one held-out test set per seed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from predictors.base import get_predictor
from predictors.gcn import GcnPredictor
from predictors.metrics import evaluate
from predictors.samples import Samples


@dataclass(frozen=True)
class CurvePoint:
    n: int
    seed: int
    method: str  # "scratch" or "transfer"
    spearman: float
    within_10pct: float  # BRP-NAS definition


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
          n_test: int = 2000, pretrain_samples: int = 2000, config: dict | None = None,
          progress: Callable[[str], None] = lambda what: None) -> list[CurvePoint]:
    """Spearman and +-10 % accuracy vs target samples n, from scratch and from the sources' GCN.

    ``target`` and every source hold the same architectures in the same order. Per seed, ``n_test`` of
    them are the test set; the sources are pretrained on up to ``pretrain_samples`` of the others, and
    the n target samples are drawn from the others too, so no test architecture is ever trained on.
    """
    config = config or {}
    points = []
    for seed in seeds:
        order = np.random.default_rng(seed).permutation(len(target))
        test, pool = order[:n_test], order[n_test:]
        if max(sizes) > len(pool):
            raise ValueError(f"n = {max(sizes)} exceeds the {len(pool)} architectures outside the test set")
        progress(f"seed {seed}: pretraining on {len(sources)} source device(s)")
        source_net = pretrain([s.take(pool[:pretrain_samples]) for s in sources], {**config, "seed": seed})
        held_out = target.take(test)
        for n in sizes:
            train = target.take(pool[:n])
            for method in ("scratch", "transfer"):
                progress(f"seed {seed}: n = {n}, {method}")
                predictor = get_predictor("gcn", **{**config, "seed": seed})
                if method == "transfer":
                    predictor.initialise_from(source_net)
                predicted = predictor.fit(train).predict(held_out)
                m = evaluate(predicted, held_out.y)
                points.append(CurvePoint(n, seed, method, m["spearman"], m["brpnas_within_10pct"]))
    return points


def as_rows(points: Sequence[CurvePoint]) -> list[tuple[str, ...]]:
    """n, then mean Spearman and +-10 % of each method over seeds."""
    rows = [("n", "Spearman scratch", "Spearman transfer", "±10% scratch", "±10% transfer")]
    for n in sorted({p.n for p in points}):
        rows.append((str(n), *(_mean(points, n, m, "spearman") for m in ("scratch", "transfer")),
                     *(_mean(points, n, m, "within_10pct") for m in ("scratch", "transfer"))))
    return rows


def _mean(points: Sequence[CurvePoint], n: int, method: str, field: str) -> str:
    value = float(np.mean([getattr(p, field) for p in points if p.n == n and p.method == method]))
    return f"{value * 100:.1f}%" if field == "within_10pct" else f"{value:.3f}"

