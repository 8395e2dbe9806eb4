"""Figures of merit of a latency predictor, in both accuracy definitions found in the literature.

- BRP-NAS (Table 1): the share of models whose *measured* latency lies within +-k of the prediction,
  |t - p| <= k * p.
- nn-Meter: the share with relative error |p - t| / t <= k.
Plus MAPE and RMSE (units of the target) and the rank correlations Spearman rho and Kendall tau.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

BOUNDS = (0.01, 0.05, 0.10)


def within_brpnas(pred: np.ndarray, true: np.ndarray, k: float) -> float:
    return float(np.mean(np.abs(true - pred) <= k * np.abs(pred)))


def within_nnmeter(pred: np.ndarray, true: np.ndarray, k: float) -> float:
    return float(np.mean(np.abs(pred - true) <= k * np.abs(true)))


def evaluate(pred: np.ndarray, true: np.ndarray) -> dict[str, float]:
    """Every metric, accuracies as fractions (0.36 = 36 %)."""
    pred, true = np.asarray(pred, dtype=np.float64), np.asarray(true, dtype=np.float64)
    if pred.shape != true.shape or pred.ndim != 1 or len(pred) < 2:
        raise ValueError(f"need two equal-length vectors of >= 2 values, got {pred.shape} and {true.shape}")
    out = {}
    for k in BOUNDS:
        out[f"brpnas_within_{round(k * 100)}pct"] = within_brpnas(pred, true, k)
        out[f"nnmeter_within_{round(k * 100)}pct"] = within_nnmeter(pred, true, k)
    out["mape"] = float(np.mean(np.abs(pred - true) / np.abs(true)))
    out["rmse"] = float(np.sqrt(np.mean((pred - true) ** 2)))
    out["spearman"] = float(stats.spearmanr(pred, true).statistic)
    out["kendall_tau"] = float(stats.kendalltau(pred, true).statistic)
    return out
