"""Which networks a new device should measure next: the most uncertain under the transfer's linear model.

A new device's predictor (``hwnas.predictors.source_transfer``) is a ridge on the other devices' predictions,
with the architecture encoding added once there are enough samples. For a linear model the variance of a
prediction at x, after measuring the rows X, is proportional to x' (X'X + I)^-1 x: large far from what was
measured (diversity) and where the fitted weights are least pinned down (uncertainty). Measuring, greedily,
the candidate of largest variance is the classic D-optimal design, and it is what ``next_to_measure`` does,
in two stages that follow the predictor's designs:

- the first s + 1 networks (s sources; at most ``REFERENCE``) in the space of the sources' standardised log
  predictions: as many as the mix of the sources has weights, so they pin it down;
- after them, in that space and the encoding together, for the design with the encoding.

The first ``REFERENCE`` networks chosen before a device is measured at all are its space's fixed reference
set: their latencies are the device's hardware embedding. Staying in the sources' space longer than s + 1
networks piles the choices onto its extremes: on NB-201 with 3 sources, 10 such picks ranked a left-out
device worse at 10 samples than random ones (0.878 vs 0.897); s + 1 then the encoding, 0.910 (measured
leave-one-device-out; the tables are in docs/benchmarks.md).
Without source devices, both stages are the encoding alone.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

REFERENCE = 10  # the reference set's size (HELP's hardware embedding is 10 networks too), the first stage's cap


def next_to_measure(encoding: np.ndarray, source_logs: np.ndarray | None, count: int,
                    measured: Sequence[int] = ()) -> list[int]:
    """Indices of ``count`` candidate rows to measure next, in the order to measure them.

    ``encoding`` (N, d) and ``source_logs`` (N, s; the source devices' predicted log latencies, or None)
    describe the candidates; ``measured`` are rows already measured on the device, which count as chosen.
    Deterministic: ties go to the lower index.
    """
    encoding = np.asarray(encoding, dtype=np.float64)
    n = len(encoding)
    done = sorted({int(i) for i in measured})
    if any(i < 0 or i >= n for i in done):
        raise ValueError(f"measured rows must index the {n} candidates")
    if count < 0 or count > n - len(done):
        raise ValueError(f"cannot choose {count} of {n - len(done)} unmeasured candidates")
    embedding = _standardised(encoding)
    has_sources = source_logs is not None and np.size(source_logs) > 0
    stages = [_standardised(np.asarray(source_logs, dtype=np.float64).reshape(n, -1)) if has_sources
              else embedding]
    stages.append(np.column_stack([stages[0], embedding]) if has_sources else embedding)
    first = min(REFERENCE, stages[0].shape[1] + 1) if has_sources else 0
    chosen = list(done)
    while len(chosen) < len(done) + count:
        features = stages[0] if len(chosen) < first else stages[1]
        chosen.append(_most_uncertain(features, chosen))
    return chosen[len(done):]


def _standardised(values: np.ndarray) -> np.ndarray:
    spread = values.std(axis=0)
    return (values - values.mean(axis=0)) / np.where(spread > 0, spread, 1.0)


def _most_uncertain(features: np.ndarray, chosen: Sequence[int]) -> int:
    """The row of largest x'(X'X + I)^-1 x given the chosen rows X (with an intercept column)."""
    design = np.column_stack([np.ones(len(features)), features])
    rows = design[list(chosen)]
    inverse = np.linalg.inv(rows.T @ rows + np.eye(design.shape[1]))
    variance = np.sum((design @ inverse) * design, axis=1)
    variance[list(chosen)] = -np.inf
    return int(np.argmax(variance))
