"""Few-shot predictors for a new device from other devices' latencies (transfer), and their learning curves.

Two ways to transfer, each compared with the same model fitted from scratch on the same n target samples:
- ``gcn-transfer`` (vs ``gcn``): a GCN is first fitted on the source devices' measurements of the same
  architectures (each source's log-latency standardised on its own, so a 2 ms and a 200 ms device teach
  the same shape), then fitted again on the n target measurements starting from those weights;
- ``sources`` (vs ``ridge``): the sources' ridge predictors recombined for the target
  (``hwnas.predictors.source_transfer``).
``curve`` measures them for several n and seeds, on one held-out test set per seed, with the n target
samples drawn at random or chosen by ``hwnas.predictors.selection`` (``active``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from hwnas.predictors.base import get_predictor
from hwnas.predictors.metrics import evaluate
from hwnas.predictors.samples import Samples

if TYPE_CHECKING:  # the GCN (torch) is imported only when a GCN method is asked for
    from hwnas.predictors.gcn import GcnPredictor


@dataclass(frozen=True)
class CurvePoint:
    n: int
    seed: int
    method: str  # one of METHODS
    spearman: float
    within_10pct: float  # BRP-NAS definition
    ndcg_at_10: float  # of the 10 fastest, as ranked
    selection: str = "random"  # one of SELECTIONS: how the n target samples were picked

    @property
    def label(self) -> str:
        return self.method if self.selection == "random" else f"{self.method} {self.selection}"


METHODS = ("ridge", "sources", "sources-log", "gcn", "gcn-transfer")  # sources-log: its log designs only
SELECTIONS = ("random", "active")


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
          config: dict | None = None, progress: Callable[[str], None] = lambda what: None,
          selections: Sequence[str] = ("random",)) -> list[CurvePoint]:
    """Spearman and +-10 % accuracy vs target samples n for each method (``METHODS``) and way of picking
    the n samples (``SELECTIONS``).

    ``target`` and every source hold the same architectures in the same order. Per seed, ``n_test`` of
    them are the test set; the sources are fitted on up to ``pretrain_samples`` of the others, and the n
    target samples are drawn from the others too (``active``: chosen among them, in the order
    ``hwnas.predictors.selection`` would have a lab measure them), so no test architecture is ever trained on.
    ``config`` goes to the GCNs. ``progress`` hears of each step before it starts (``steps`` counts them).
    """
    unknown = [m for m in methods if m not in METHODS] + [s for s in selections if s not in SELECTIONS]
    if unknown or not methods or not selections:
        raise ValueError(f"unknown transfer method(s) or selection(s) {unknown}; known: {', '.join(METHODS)}; "
                         f"{', '.join(SELECTIONS)}")
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
        orders = {selection: _picks(selection, pool, target, seen, max(sizes), pretrain_samples)
                  for selection in selections}
        for n in sizes:
            for selection, picked in orders.items():
                train = target.take(picked[:n])
                for method in methods:
                    progress(f"seed {seed}: n = {n}, {method}" + ("" if selection == "random" else f", {selection}"))
                    model = _fit(method, seen, source_net, {**config, "seed": seed})
                    m = evaluate(model.fit(train).predict(held_out), held_out.y)
                    points.append(CurvePoint(n, seed, method, m["spearman"], m["brpnas_within_10pct"],
                                             m["ndcg_at_10"], selection))
    return points


def steps(sizes: Sequence[int], seeds: Sequence[int], methods: Sequence[str],
          selections: Sequence[str] = ("random",)) -> int:
    """How many times ``curve`` calls its ``progress`` (for a progress bar's total)."""
    per_seed = len(sizes) * len(methods) * len(selections) + ("gcn-transfer" in methods)
    return len(seeds) * per_seed


def _picks(selection: str, pool: np.ndarray, target: Samples, sources: Sequence[Samples], count: int,
           candidates: int) -> np.ndarray:
    """The target rows a lab would measure, in order: the pool's first (random), or the most informative of
    its first ``candidates`` (active; the sources' measured architectures in this benchmark)."""
    if selection == "random":
        return pool
    from hwnas.predictors.selection import next_to_measure

    pool = pool[:max(candidates, count)]
    encoding = target.take(pool).encoding
    logs = get_predictor("sources").use_sources(sources).log_predictions(encoding)
    return pool[next_to_measure(encoding, logs, count)]


def _fit(method: str, sources: Sequence[Samples], source_net: GcnPredictor | None, gcn_config: dict):
    """An unfitted predictor of ``method``, already given what it transfers from."""
    if method in ("sources", "sources-log"):
        return get_predictor("sources", designs="all" if method == "sources" else "log").use_sources(sources)
    if method == "ridge":
        return get_predictor("ridge")
    predictor = get_predictor("gcn", **gcn_config)
    return predictor.initialise_from(source_net) if method == "gcn-transfer" else predictor


def as_rows(points: Sequence[CurvePoint]) -> list[tuple[str, ...]]:
    """n, then the mean Spearman of each method (and selection) over seeds, then the mean +-10 % and NDCG@10."""
    methods = list(dict.fromkeys(p.label for p in points))
    rows = [("n", *(f"Spearman {m}" for m in methods), *(f"±10% {m}" for m in methods),
             *(f"NDCG@10 {m}" for m in methods))]
    for n in sorted({p.n for p in points}):
        rows.append((str(n), *(_mean(points, n, m, "spearman") for m in methods),
                     *(_mean(points, n, m, "within_10pct") for m in methods),
                     *(_mean(points, n, m, "ndcg_at_10") for m in methods)))
    return rows


def _mean(points: Sequence[CurvePoint], n: int, method: str, field: str) -> str:
    value = float(np.mean([getattr(p, field) for p in points if p.n == n and p.label == method]))
    return f"{value * 100:.1f}%" if field == "within_10pct" else f"{value:.3f}"
