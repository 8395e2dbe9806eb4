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
