"""Per-kernel latency regressors, nn-Meter's kernel view: a network's latency as the sum of its kernels'.

A *kernel* is what a runtime executes as one unit (a conv with the batchnorm and activation fused into it).
nn-Meter fits one regressor per kernel type on the kernel's configuration. Here a configuration seen in
training is predicted by its median time (what nn-Meter's random forests do for one they were fitted on), and
an unseen one by a non-negative linear model of its type on the work it does and the memory it moves (MACs,
bytes, a constant), which keeps growing with a kernel larger than any fitted on, where a forest stays flat. A
type with fewer than ``MIN_CONFIGS`` distinct configurations has no model of its own: the one fitted on every
kernel predicts it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

MIN_CONFIGS = 3  # distinct configurations a type needs before it gets a linear model of its own
FEATURES = ("mmacs", "mbytes", "one")  # the columns of a kernel's features, scaled to comparable magnitudes
ANY = "*"


class KernelModel:
    """Latency (ms) of a kernel from its type and its features (``FEATURES``), fitted by non-negative least
    squares per type: more work or more bytes never predicts a faster kernel."""

    def __init__(self) -> None:
        self.coefficients: dict[str, np.ndarray] = {}
        self.seen: dict[tuple, float] = {}  # (type, features) -> median time of that configuration

    def fit(self, types: Sequence[str], features: np.ndarray, times_ms: np.ndarray) -> KernelModel:
        from scipy.optimize import nnls

        features, times_ms = np.asarray(features, dtype=np.float64), np.asarray(times_ms, dtype=np.float64)
        if not len(types):
            raise ValueError("no kernels to fit: measure some networks with op profiles first")
        if features.shape != (len(types), len(FEATURES)) or times_ms.shape != (len(types),):
            raise ValueError(f"{len(types)} kernel types need ({len(types)}, {len(FEATURES)}) features and "
                             f"{len(types)} times, got {features.shape} and {times_ms.shape}")
        times: dict[tuple, list[float]] = {}
        for kind, row, t in zip(types, features, times_ms, strict=True):
            times.setdefault(_config(kind, row), []).append(float(t))
        self.seen = {config: float(np.median(values)) for config, values in times.items()}
        # each configuration counts once, at its median: the many repeats of one layer do not outweigh the rest
        configs = list(self.seen)
        rows = np.array([config[1] for config in configs])
        medians = np.array([self.seen[config] for config in configs])
        kinds = np.array([config[0] for config in configs], dtype=object)
        self.coefficients = {ANY: nnls(rows, medians)[0]}
        for kind in dict.fromkeys(kinds):
            mine = kinds == kind
            if mine.sum() >= MIN_CONFIGS:
                self.coefficients[kind] = nnls(rows[mine], medians[mine])[0]
        return self

    def predict(self, types: Sequence[str], features: np.ndarray) -> np.ndarray:
        features = np.asarray(features, dtype=np.float64).reshape(len(types), len(FEATURES))
        out = np.empty(len(types))
        for k, kind in enumerate(types):
            seen = self.seen.get(_config(kind, features[k]))
            out[k] = seen if seen is not None else features[k] @ self.coefficients.get(kind, self.coefficients[ANY])
        return out

    def own_types(self) -> list[str]:
        """The kernel types with a model of their own."""
        return [kind for kind in self.coefficients if kind != ANY]


def _config(kind: str, row: np.ndarray) -> tuple:
    return kind, tuple(round(float(v), 9) for v in row)
