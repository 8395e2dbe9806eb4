"""Summary statistics of per-inference latency samples."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

NS_PER_MS = 1_000_000


@dataclass(frozen=True)
class LatencyStats:
    count: int
    min_ms: float
    mean_ms: float
    median_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    std_ms: float


def summarize(samples_ns: Sequence[int]) -> LatencyStats:
    """Statistics of raw samples; std is the sample standard deviation (ddof=1)."""
    if len(samples_ns) == 0:
        raise ValueError("no samples to summarize")
    ms = np.asarray(samples_ns, dtype=np.float64) / NS_PER_MS
    return LatencyStats(
        count=int(ms.size),
        min_ms=float(ms.min()),
        mean_ms=float(ms.mean()),
        median_ms=float(np.median(ms)),
        p90_ms=float(np.percentile(ms, 90)),
        p99_ms=float(np.percentile(ms, 99)),
        max_ms=float(ms.max()),
        std_ms=float(ms.std(ddof=1)) if ms.size > 1 else 0.0,
    )


def iqr_trimmed_mean(values: Sequence[float]) -> float:
    """Mean of the values lying in [P25, P75] (inclusive), as LatBench trims."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0:
        raise ValueError("no values to trim")
    lo, hi = np.percentile(arr, [25, 75])
    kept = arr[(arr >= lo) & (arr <= hi)]
    return float(kept.mean())


def trimmed_mean_se(values: Sequence[float]) -> tuple[float, float, int]:
    """The IQR-trimmed mean, its standard error and the count kept (Tukey and McLaughlin 1963).

    The SE of a mean trimmed 25 % at each end is the standard deviation of the sample *winsorized* at the
    same points, divided by (1 - 2 x 0.25) sqrt(n): outliers move the estimate little, and the error
    shrinks with every sample rather than with every block. Confidence intervals use a Student t with
    (count kept - 1) degrees of freedom.
    """
    arr = np.asarray(values, dtype=np.float64)
    if arr.size < 2:
        raise ValueError("a standard error needs two or more values")
    lo, hi = np.percentile(arr, [25, 75])
    kept = arr[(arr >= lo) & (arr <= hi)]
    winsorized = np.clip(arr, lo, hi)
    return float(kept.mean()), float(winsorized.std(ddof=1) / (0.5 * np.sqrt(arr.size))), int(kept.size)
