"""Figures of merit of a latency predictor, in both accuracy definitions found in the literature.

- BRP-NAS (Table 1): the share of models whose *measured* latency lies within +-k of the prediction,
  |t - p| <= k * p.
- nn-Meter: the share with relative error |p - t| / t <= k.
Plus MAPE, MAE and RMSE (units of the target), the rank correlations Spearman rho and Kendall tau, and NDCG@10:
how good the 10 architectures the predictor ranks best really are (what a search picking by the predictor gets).
"""

from __future__ import annotations

import numpy as np
from scipy import stats

MIN_HELD_OUT = 20  # fewer held-out samples give figures that mean nothing (Spearman 1.000 from 2 points)
BOUNDS = (0.01, 0.05, 0.10)


def within_brpnas(pred: np.ndarray, true: np.ndarray, k: float) -> float:
    return float(np.mean(np.abs(true - pred) <= k * np.abs(pred)))


def within_nnmeter(pred: np.ndarray, true: np.ndarray, k: float) -> float:
    return float(np.mean(np.abs(pred - true) <= k * np.abs(true)))


def ndcg_at(pred: np.ndarray, true: np.ndarray, k: int = 10, higher_is_better: bool = False) -> float:
    """Normalised discounted cumulative gain of the predictor's top ``k``: relevance is the true value scaled to
    [0, 1] (1 = the best architecture of the set), the predictor's top ``k`` in its order against the ideal."""
    sign = 1.0 if higher_is_better else -1.0
    score, value = sign * pred, sign * true
    spread = value.max() - value.min()
    relevance = (value - value.min()) / spread if spread > 0 else np.ones_like(value)
    k = min(k, len(true))
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = float(np.sum(relevance[np.argsort(-score, kind="stable")[:k]] * discount))
    ideal = float(np.sum(np.sort(relevance)[::-1][:k] * discount))
    return dcg / ideal if ideal > 0 else 1.0


def evaluate(pred: np.ndarray, true: np.ndarray, higher_is_better: bool = False) -> dict[str, float]:
    """Every metric, accuracies as fractions (0.36 = 36 %). ``higher_is_better``: the target is a score to
    maximise (accuracy), not a cost (latency); only NDCG@10 depends on it."""
    pred, true = np.asarray(pred, dtype=np.float64), np.asarray(true, dtype=np.float64)
    if pred.shape != true.shape or pred.ndim != 1 or len(pred) < 2:
        raise ValueError(f"need two equal-length vectors of >= 2 values, got {pred.shape} and {true.shape}")
    out = {}
    for k in BOUNDS:
        out[f"brpnas_within_{round(k * 100)}pct"] = within_brpnas(pred, true, k)
        out[f"nnmeter_within_{round(k * 100)}pct"] = within_nnmeter(pred, true, k)
    out["mape"] = float(np.mean(np.abs(pred - true) / np.abs(true)))
    out["mae"] = float(np.mean(np.abs(pred - true)))
    out["rmse"] = float(np.sqrt(np.mean((pred - true) ** 2)))
    out["spearman"] = float(stats.spearmanr(pred, true).statistic)
    out["kendall_tau"] = float(stats.kendalltau(pred, true).statistic)
    out["ndcg_at_10"] = ndcg_at(pred, true, 10, higher_is_better)
    return out
