"""GENNAPE's soft clusters (Mills et al. 2023, Eqs. 2-4) and its FLOPs transform of the target (Eq. 5).

Fuzzy C-Means runs on the training family's embeddings once: each graph's 128-value embedding with its
standardised log FLOPs appended, reduced to 32 values by PCA (the supplement's recipe). A new family's
memberships come from the training centroids (Eq. 2), never from re-clustering, so a network of an unseen
family is handled by the heads whose region of the embedding space it lies nearest.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from skfuzzy.cluster import cmeans, cmeans_predict

EPSILON = 1e-9  # Eq. 4's stopping threshold on the largest membership change
MAX_ITERATIONS = 10_000


@dataclass
class SoftClusters:
    """Everything Eq. 2 needs for new graphs: the standardisations, the PCA basis and the centroids."""

    flops_scale: np.ndarray  # (2,) mean and std of the training family's log10 FLOPs
    pca_mean: np.ndarray  # (d,)
    pca_basis: np.ndarray  # (k, d)
    centroids: np.ndarray  # (C, k)
    fuzziness: float  # m > 1

    @classmethod
    def fit(cls, embeddings: np.ndarray, log_flops: np.ndarray, clusters: int, fuzziness: float,
            components: int = 32, seed: int = 0) -> SoftClusters:
        flops_scale = np.array([log_flops.mean(), log_flops.std() or 1.0])
        features = _features(embeddings, log_flops, flops_scale)
        mean = features.mean(axis=0)
        _, _, vt = np.linalg.svd(features - mean, full_matrices=False)
        basis = vt[:min(components, len(vt))]
        reduced = (features - mean) @ basis.T
        centroids, *_ = cmeans(reduced.T, clusters, fuzziness, error=EPSILON, maxiter=MAX_ITERATIONS, seed=seed)
        return cls(flops_scale, mean, basis, centroids, float(fuzziness))

    def memberships(self, embeddings: np.ndarray, log_flops: np.ndarray) -> np.ndarray:
        """(N, C) memberships, each row summing to 1 (Eq. 2 against the training centroids)."""
        reduced = (_features(embeddings, log_flops, self.flops_scale) - self.pca_mean) @ self.pca_basis.T
        u, *_ = cmeans_predict(reduced.T, self.centroids, self.fuzziness, error=EPSILON, maxiter=MAX_ITERATIONS)
        return u.T

    def state(self, prefix: str) -> dict[str, np.ndarray]:
        return {f"{prefix}.flops_scale": self.flops_scale, f"{prefix}.pca_mean": self.pca_mean,
                f"{prefix}.pca_basis": self.pca_basis, f"{prefix}.centroids": self.centroids,
                f"{prefix}.fuzziness": np.array([self.fuzziness])}

    @classmethod
    def from_state(cls, arrays, prefix: str) -> SoftClusters:
        return cls(arrays[f"{prefix}.flops_scale"], arrays[f"{prefix}.pca_mean"], arrays[f"{prefix}.pca_basis"],
                   arrays[f"{prefix}.centroids"], float(arrays[f"{prefix}.fuzziness"][0]))


def _features(embeddings: np.ndarray, log_flops: np.ndarray, flops_scale: np.ndarray) -> np.ndarray:
    return np.concatenate([embeddings, ((log_flops - flops_scale[0]) / flops_scale[1])[:, None]], axis=1)


def giga_flops(macs: np.ndarray) -> np.ndarray:
    """GFLOPs of networks from their multiply-accumulates (one MAC is two floating-point operations)."""
    return 2.0 * np.asarray(macs, dtype=np.float64) / 1e9


@dataclass
class FlopsTransform:
    """Eq. 5: ``y = Z(A / (log10(F + 1) + 1))``, F in GFLOPs, Z the training family's z-score. A fine-tuned
    family keeps the training family's standardisation (the paper's choice), so the heads' scale holds."""

    scale: np.ndarray  # (2,) mean and std of the training family's ratio

    @staticmethod
    def _divisor(macs: np.ndarray) -> np.ndarray:
        return np.log10(giga_flops(macs) + 1.0) + 1.0

    @classmethod
    def fit(cls, accuracy: np.ndarray, macs: np.ndarray) -> FlopsTransform:
        ratio = np.asarray(accuracy, dtype=np.float64) / cls._divisor(macs)
        return cls(np.array([ratio.mean(), ratio.std() or 1.0]))

    def forward(self, accuracy: np.ndarray, macs: np.ndarray) -> np.ndarray:
        return (np.asarray(accuracy, dtype=np.float64) / self._divisor(macs) - self.scale[0]) / self.scale[1]

    def inverse(self, y: np.ndarray, macs: np.ndarray) -> np.ndarray:
        return (np.asarray(y, dtype=np.float64) * self.scale[1] + self.scale[0]) * self._divisor(macs)
